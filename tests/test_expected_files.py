"""Every targets/*/expected.yaml entry names a real case and role, and justifies itself with a citation."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.model.loader import Case
from harness.targets.spec import load_targets

ROOT = Path(__file__).resolve().parents[1]
SPECS = load_targets(ROOT / "targets")


@pytest.mark.parametrize("name", sorted(SPECS))
def test_expected_entries_are_real_and_cited(repo_cases: dict[str, Case], name: str) -> None:
    spec = SPECS[name]
    for key, deviation in spec.expected.items():
        case_id, _, role = key.partition("@")
        assert case_id in repo_cases, f"{name}/expected.yaml: {key!r} names no case"
        case = repo_cases[case_id]
        if role:
            assert role in spec.roles, f"{name}/expected.yaml: {key!r}: the target has no {role} role"
            assert case.model.role in (role, "both"), f"{key!r}: the case does not run in the {role} role"
        else:
            roles = {"both": {"server", "client"}}.get(case.model.role, {case.model.role})
            assert roles & set(spec.roles), f"{name}/expected.yaml: {key!r}: no role of the target runs it"
        text = deviation.reason
        assert any(mark in text for mark in ("§", "RFC", "WHATWG")), f"{name}: {key!r} cites no rule"
