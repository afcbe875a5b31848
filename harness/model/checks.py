"""Load-time checks a schema cannot express: what a case asks must be playable in its role.

Each problem comes back with the path of the field at fault (relative to the case), so the loader
reports it as ``file:line: field: message``, before anything runs, instead of an ERROR with a
misleading message halfway through a run.
"""

from __future__ import annotations

from collections.abc import Iterator

from harness.model.payloads import payload_size
from harness.model.schema import (
    Batch,
    CaseModel,
    FloodSpec,
    HandshakeSpec,
    Repeat,
    ResponseSpec,
    SendMessage,
    Step,
)

Loc = tuple[str | int, ...]


def _walk(steps: list[Step], loc: Loc) -> Iterator[tuple[Step, Loc, bool]]:
    """Every step with its path, and whether it is a top-level step."""
    for i, step in enumerate(steps):
        here = (*loc, i, step.kind)
        yield step, here, len(loc) == 1
        if isinstance(step, Batch | Repeat):
            for inner, where, _ in _walk(step.steps, (*here, "steps")):
                yield inner, where, False
        if isinstance(step, HandshakeSpec | ResponseSpec):
            for inner, where, _ in _walk(step.with_frames, (*here, "with_frames")):
                yield inner, where, False


def problems(case: CaseModel) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    for step, loc, top in _walk(case.steps, ("steps",)):
        index = loc[1]
        if isinstance(step, HandshakeSpec):
            if case.role != "server":
                out.append(
                    (
                        loc,
                        f"a handshake step sets the peer's request; this case has role {case.role} "
                        "(client-role cases answer with a response step)",
                    )
                )
            elif not top or index != 0:
                out.append((loc, "handshake must be the first step"))
        if isinstance(step, ResponseSpec):
            if case.role != "client":
                out.append(
                    (
                        loc,
                        f"a response step sets the peer's handshake response; this case has role "
                        f"{case.role} (server-role cases change the request with a handshake step)",
                    )
                )
            elif not top or index != 0:
                out.append((loc, "response must be the first step"))
        if isinstance(step, SendMessage) and isinstance(step.fragments, list):
            size = payload_size(step.payload)
            if size is not None and sum(step.fragments) > size:
                out.append(
                    (
                        (*loc, "fragments"),
                        f"fragment sizes {step.fragments} add up to "
                        f"{sum(step.fragments)}, more than the {size}-byte payload",
                    )
                )
        if isinstance(step, FloodSpec) and step.policy_sized and not case.requires.max_message_size:
            out.append(
                (
                    (*loc, "size"),
                    f"size {step.size} reads the target's declared maximum: add "
                    "requires: {max_message_size: true} so targets without one are "
                    "UNIMPLEMENTED, not ERROR",
                )
            )
    return out
