"""The two ways a target goes wrong before any case judges it.

``TargetError``: a declaration (target.yaml, expected.yaml, an ad-hoc option) is invalid; the run
cannot start. ``TargetUnavailable``: a valid target cannot be started or reached here; the cases are
ERROR (the environment's fault, never the target's FAIL). Both live below every other module of the
package so the schema, the runners and the session can raise them without importing each other.
"""

from __future__ import annotations


class TargetError(ValueError):
    """A target declaration is invalid (file:field: message)."""


class TargetUnavailable(RuntimeError):
    """The target could not be started or reached: the environment's fault, reported as ERROR."""
