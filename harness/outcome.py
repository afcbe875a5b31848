"""The outcome vocabulary (Autobahn|Testsuite's, plus ERROR for the harness's own failures).

It sits at the bottom of the layers because everything speaks it: the target schema (expected.yaml
entries name an outcome), the verdict that decides one, the results file and the reports.
"""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    PASS = "PASS"
    NON_STRICT = "NON-STRICT"
    INFORMATIONAL = "INFORMATIONAL"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    FAIL = "FAIL"
    ERROR = "ERROR"

    @property
    def failed(self) -> bool:
        return self in (Outcome.FAIL, Outcome.ERROR)
