"""The only place an outcome is decided.

``decide`` is what the engine and ``wsconform serve`` call: the wire judge (``wire``), the probe and
response-time grades (``timing``), resource grades (``resources``), the API-event judge for client
targets (``api``), then the WHATWG binding and the informational grade (``binding``). ``expected``
grades a finished result against expected.yaml.
docs/architecture.md ("Where each verdict is decided") maps every outcome to the function deciding it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.model.schema import CaseModel
from harness.observed import ClientReport, Observed
from harness.outcome import Outcome
from harness.verdict.api import judge_api
from harness.verdict.base import Verdict
from harness.verdict.binding import apply_binding, apply_grade
from harness.verdict.resources import judge_resources
from harness.verdict.timing import judge_probe, judge_response_time
from harness.verdict.wire import judge_wire

__all__ = ["Outcome", "Verdict", "decide", "judge_api", "judge_wire"]


def decide(
    case: CaseModel,
    obs: Observed,
    data_dir: Path,
    *,
    whatwg_api: bool = False,
    figures: dict[str, Any] | None = None,
    client: ClientReport | None = None,
    wire_only: bool = False,
) -> Verdict:
    """One case's verdict from what was observed.

    ``client``: a client target's report (its API events are judged too); ``wire_only``: a client the
    harness did not start (``wsconform serve``), whose API expectations cannot be checked: the reason
    says so rather than claiming more than was judged.
    """
    expect = case.expect
    verdict = judge_wire(expect, obs, data_dir)
    verdict = judge_probe(obs, verdict)
    verdict = judge_response_time(expect, obs, verdict)
    if expect.resources is not None and figures is not None and verdict.outcome is not Outcome.ERROR:
        verdict = judge_resources(expect.resources, figures, verdict)
    # A case the wire side found UNIMPLEMENTED never ran its steps: the client's events say nothing
    # about what the case asks (the peer just closed normally), so they are not judged.
    if client is not None and verdict.outcome is not Outcome.UNIMPLEMENTED:
        api = judge_api(expect, obs, client.events, client.exit_code, client.garbage)
        if api is not None and (api.outcome is Outcome.UNIMPLEMENTED or not verdict.outcome.failed):
            verdict = api
    verdict = apply_binding(verdict, case.binding, whatwg_api)
    verdict = apply_grade(verdict, expect.grade)
    if wire_only:
        verdict = _say_wire_only(case, verdict)
    return verdict


def _say_wire_only(case: CaseModel, verdict: Verdict) -> Verdict:
    expect = case.expect
    if verdict.outcome is Outcome.ERROR:
        return verdict
    skipped = []
    if expect.api is not None:
        fields = ", ".join(f"{k}={v!r}" for k, v in expect.api.model_dump(exclude_none=True).items())
        skipped.append(f"API expectation ({fields})")
    if expect.resources is not None:
        skipped.append("resource bounds")
    if not skipped:
        return verdict
    return verdict.with_reason(
        f"{verdict.reason}; wire only: {' and '.join(skipped)} not checked "
        "(a client the harness does not start reports no API events and cannot be measured)"
    )
