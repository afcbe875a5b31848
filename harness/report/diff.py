"""Baseline comparison: what got worse, what got fixed, what is new, between two results documents.

Pairs are matched by (case, target). A *regression* is a pair that was not FAIL/ERROR and now is
(PASS → FAIL is the common one; NON-STRICT → FAIL is just as much a break); a *fix* is the reverse.
Moves within the bad side (FAIL ↔ ERROR) or within the good side (PASS ↔ NON-STRICT) are listed as
other changes and never fail ``wsconform diff``. A target absent from the baseline is reported once,
not as hundreds of new pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.report.model import BAD, page_of

if TYPE_CHECKING:
    from harness.terminal import Out


@dataclass(frozen=True)
class Change:
    case: str
    target: str
    family: str
    old: str | None
    new: str | None
    reason: str
    known: bool = False  # the new outcome is a deviation listed in expected.yaml

    @property
    def page(self) -> str:
        return page_of(self.case, self.target)


@dataclass
class Diff:
    regressions: list[Change] = field(default_factory=list)
    fixes: list[Change] = field(default_factory=list)
    new: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    new_targets: list[str] = field(default_factory=list)
    removed_targets: list[str] = field(default_factory=list)

    @property
    def sections(self) -> list[tuple[str, str, list[Change]]]:
        """(key, heading, changes), in the order people should read them."""
        return [
            ("regressions", "Regressions", self.regressions),
            ("fixes", "Fixes", self.fixes),
            ("new", "New cases", self.new),
            ("changed", "Other outcome changes", self.changed),
            ("removed", "No longer run", self.removed),
        ]


def _pairs(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["case"], r["target"]): r for r in doc["results"]}


INTEROP_SCHEMA = "wsconform.interop/1"


def from_interop(doc: dict[str, Any]) -> dict[str, Any]:
    """An interop matrix (``wsconform.interop/1``) as a results document ``compare`` reads: each run
    is a pair named ``scenario`` / ``client->server``, family ``interop``; a failure listed in
    interop-expected.yaml (not ``unexpected``) counts as known, like an expected.yaml deviation."""
    results = []
    for r in doc.get("results", []):
        known = not r.get("unexpected") and r.get("outcome") in BAD
        side = f" [{r['side']} {r.get('rule') or ''}]" if r.get("side") else ""
        results.append({
            "case": r["scenario"], "target": f"{r['client']}->{r['server']}", "family": "interop",
            "outcome": r["outcome"], "reason": f"{r.get('reason') or ''}{side}",
            "expected": {"outcome": r["outcome"]} if known else None,
        })  # fmt: skip
    return {"results": results}


def compare(old: dict[str, Any], new: dict[str, Any]) -> Diff:
    before, after = _pairs(old), _pairs(new)
    old_targets = {t for _, t in before}
    new_targets = {t for _, t in after}
    diff = Diff(
        new_targets=sorted(new_targets - old_targets), removed_targets=sorted(old_targets - new_targets)
    )
    for key, r in after.items():
        prev = before.get(key)
        listed = (r.get("expected") or {}).get("outcome")
        change = Change(
            r["case"], r["target"], str(r.get("family") or ""),
            prev["outcome"] if prev else None, r["outcome"], str(r.get("reason") or ""),
            known=listed == r["outcome"],
        )  # fmt: skip
        if prev is None:
            if r["target"] not in diff.new_targets:
                diff.new.append(change)
        elif prev["outcome"] == r["outcome"]:
            continue
        elif prev["outcome"] not in BAD and r["outcome"] in BAD:
            diff.regressions.append(change)
        elif prev["outcome"] in BAD and r["outcome"] not in BAD:
            diff.fixes.append(change)
        else:
            diff.changed.append(change)
    for key, r in before.items():
        if key not in after and r["target"] not in diff.removed_targets:
            diff.removed.append(
                Change(r["case"], r["target"], str(r.get("family") or ""), r["outcome"], None, "")
            )
    return diff


STYLE = {"regressions": "bold red", "fixes": "green", "new": "cyan", "changed": "yellow", "removed": "dim"}


def _known_file(change: Change) -> str:
    return "interop-expected.yaml" if change.family == "interop" else "expected.yaml"


def print_diff(diff: Diff, out: Out) -> None:
    """The terminal form of the report's baseline section (plain text when stdout is not a terminal)."""
    from harness.terminal import Column

    columns = [Column(c) for c in ("target", "case", "before", "now", "reason")]
    for key, heading, changes in diff.sections:
        if not changes:
            continue
        rows = [
            [c.target, c.case, c.old or "—", c.new or "—",
             (f"(listed in {_known_file(c)}) " if c.known else "") + c.reason[:200]]
            for c in changes
        ]  # fmt: skip
        out.line((f"{heading} ({len(changes)})", STYLE[key]))
        out.table("", columns, rows)
    for name in diff.new_targets:
        out.line(("new target", "cyan"), f" {name}")
    for name in diff.removed_targets:
        out.line(("target no longer run", "dim"), f" {name}")
    out.line(
        f"{len(diff.regressions)} regression(s), {len(diff.fixes)} fix(es), {len(diff.new)} new, "
        f"{len(diff.changed)} other change(s), {len(diff.removed)} no longer run"
    )
