"""Resource grades: what a target absorbed under load, against a case's bounds (backpressure, limits).

RFC 6455 sets no number (§10.4: implementations "MUST protect themselves against exceeding those
limits"), so beyond a bound the outcome is INFORMATIONAL with the figures, unless a case says
``unbounded: fail`` (a 2^63-1 declared length that made the target allocate). Lost, reordered or
corrupted data is decided by the wire judge before this runs, and stays FAIL.
"""

from __future__ import annotations

from typing import Any

from harness.model.schema import ResourcesExpect
from harness.outcome import Outcome
from harness.verdict.base import Verdict

MIB = 1024 * 1024


def judge_resources(bounds: ResourcesExpect, figures: dict[str, Any], verdict: Verdict) -> Verdict:
    """Grade the figures against the bounds, on top of the wire verdict."""
    numbers = describe(figures)
    over = []
    growth, absorbed = figures.get("peak_rss_growth"), figures.get("absorbed_bytes")
    held = figures.get("held_bytes")
    max_growth, max_held, max_absorbed = (
        _bound(bounds, name, figures) for name in ("max_growth", "max_held", "max_absorbed")
    )
    if max_growth is not None and isinstance(growth, int) and growth > max_growth:
        over.append(f"RSS growth over {max_growth / MIB:g} MiB")
    if max_held is not None and isinstance(held, int) and held > max_held:
        over.append(f"held over {max_held / MIB:g} MiB")
    if max_absorbed is not None and isinstance(absorbed, int) and absorbed > max_absorbed:
        over.append(f"absorbed over {max_absorbed / MIB:g} MiB")
    if verdict.outcome is Outcome.FAIL:
        return verdict.with_reason(f"{verdict.reason} [{numbers}]")
    if over:
        if bounds.unbounded == "fail":
            return Verdict(Outcome.FAIL, f"unbounded ({'; '.join(over)}): {numbers}; RFC 6455 §10.4")
        if verdict.outcome is Outcome.PASS:
            return Verdict(
                Outcome.INFORMATIONAL,
                f"unbounded ({'; '.join(over)}): {numbers}; data intact. RFC 6455 sets no limit "
                "(§10.4: implementations protect themselves)",
            )
        return verdict.with_reason(f"{verdict.reason}; unbounded: {numbers}")
    bounded = (bounds.max_growth, bounds.max_held, bounds.max_absorbed) != (None, None, None)
    if verdict.outcome is Outcome.PASS and bounded:
        return verdict.with_reason(f"bounded: {numbers}; {verdict.reason}")
    return verdict.with_reason(f"{verdict.reason} [{numbers}]")


def _bound(bounds: ResourcesExpect, name: str, figures: dict[str, Any]) -> int | None:
    """A bound in bytes: a number from the case, or its policy-scaled form resolved by the engine
    (``16Mi + max_message_size``, kept in the figures as ``bounds``)."""
    value = getattr(bounds, name)
    if isinstance(value, str):
        resolved = (figures.get("bounds") or {}).get(name)
        return resolved if isinstance(resolved, int) else None
    return value if isinstance(value, int) else None


def describe(figures: dict[str, Any]) -> str:
    """The figures in a verdict line: absorbed, stall, memory growth, drain time."""
    parts = []
    if figures.get("floods"):
        absorbed = f"absorbed {_mib(figures.get('absorbed_bytes'))}"
        if figures.get("stalled"):
            absorbed += f" before the peer's writes stalled (after {figures.get('stall_s')} s)"
        elif figures.get("peer_mib_s") is not None:
            absorbed += f" without stalling the peer (its writes went at {figures['peer_mib_s']} MiB/s)"
        parts.append(absorbed)
        if figures.get("held_bytes") is not None:
            parts.append(f"{_mib(figures['held_bytes'])} of it held by the target, not by kernel buffers")
    growth = figures.get("peak_rss_growth")
    parts.append(f"RSS +{_mib(growth)}" if growth is not None else "memory not measured")
    if figures.get("drain_s") is not None:
        parts.append(f"drained in {figures['drain_s']} s")
    return ", ".join(parts)


def _mib(value: Any) -> str:
    if not isinstance(value, int | float):
        return "?"
    return f"{value / MIB:.1f} MiB"
