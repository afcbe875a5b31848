"""What a case needs from a target's declared policies, and how to declare it when it is missing.

A case that needs a subprotocol, permessage-deflate or a declared maximum message size cannot be
judged against a target that declares none: the outcome is UNIMPLEMENTED, never FAIL. The reason
names both ways to declare it (the target.yaml field and the ad-hoc option), because the person
reading it is often a library maintainer running ``--target-cmd`` from their own CI.
"""

from __future__ import annotations

from harness.model.loader import Case
from harness.targets.spec import Policies


def unmet_requirements(case: Case, policies: Policies) -> str | None:
    """Why the target's declared policies cannot support this case (UNIMPLEMENTED), or None."""
    req = case.model.requires
    lacking = [p for p in req.subprotocols if p not in policies.subprotocols]
    if lacking:
        wanted = ",".join(dict.fromkeys([*policies.subprotocols, *lacking]))
        return (
            f"target declares no support for subprotocol(s) {', '.join(lacking)} "
            f"(target.yaml policies.subprotocols, or --subprotocols {wanted})"
        )
    if req.permessage_deflate and not policies.permessage_deflate:
        return (
            "target does not enable permessage-deflate "
            "(target.yaml policies.permessage_deflate: true, or --permessage-deflate)"
        )
    if req.max_message_size and policies.max_message_size is None:
        return (
            "target declares no maximum message size "
            "(target.yaml policies.max_message_size, or --max-message-size N)"
        )
    return None
