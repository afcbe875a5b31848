"""Which cases a command works on: the folders they come from and the selection options.

Both front ends and every ``wsconform`` command read cases through here, so "where are the cases"
has one answer: the suite bundled with the installation (``harness.bundled``), unless ``--cases DIR``
replaces it; ``--extra-cases DIR`` (repeatable) adds a folder of one's own cases on top. Every
problem is a ``CatalogError`` whose message says what was looked for and where, because a command
that silently finds nothing (and exits 0) is the worst outcome in a CI job.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import bundled
from harness.model.citations import CiteQuery
from harness.model.loader import Case, CaseError, iter_case_files, load_all


class CatalogError(Exception):
    """A usage problem (exit status 2): a missing folder, broken case files, an empty selection."""

    def __init__(self, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)


@dataclass
class Catalog:
    """Cases with the folder each came from (its ``data/`` holds the payload files it names)."""

    roots: list[Path]
    cases: list[Case] = field(default_factory=list)
    root_of: dict[str, Path] = field(default_factory=dict)  # case id -> cases folder

    def describe(self) -> str:
        return " + ".join(str(r) for r in self.roots)


def case_roots(cases: Path | None, extra: Sequence[Path] = ()) -> list[Path]:
    """``--cases`` (or the bundled suite) then every ``--extra-cases``, each checked to exist."""
    try:
        base = cases if cases is not None else bundled.cases_dir()
    except bundled.BundleMissing as exc:
        raise CatalogError(f"{exc}; pass --cases DIR") from exc
    roots: list[Path] = []
    for root, option in [(base, "--cases"), *((p, "--extra-cases") for p in extra)]:
        resolved = root.resolve()
        if not resolved.is_dir():
            what = "does not exist" if not resolved.exists() else "is not a folder"
            shown = str(root) if str(root) == str(resolved) else f"{root} ({resolved})"
            raise CatalogError(f"cases folder {shown} {what} ({option})")
        if not any(iter_case_files(resolved)):
            raise CatalogError(f"cases folder {resolved} holds no case files (*.yaml in family folders)")
        if resolved not in roots:
            roots.append(resolved)
    return roots


def load(roots: Sequence[Path]) -> Catalog:
    """Every case of every root; broken files and ids defined twice (across roots too) are errors."""
    catalog = Catalog(list(roots))
    errors: list[str] = []
    for root in roots:
        cases, problems = load_all(root)
        errors += [f"{root}/{e}" if isinstance(e, CaseError) else str(e) for e in problems]
        for case in cases:
            prior = catalog.root_of.get(case.id)
            if prior is not None:
                where = f"{root}/{case.file}:{case.line}"
                errors.append(f"{where}: case id {case.id!r} is also defined in {prior}")
                continue
            catalog.root_of[case.id] = root
            catalog.cases.append(case)
    if errors:
        raise CatalogError(f"{len(errors)} problem(s) in the case files", errors)
    return catalog


@dataclass(frozen=True)
class Filter:
    """The selection options shared by run, serve and cases list."""

    patterns: Sequence[str] = ()
    families: Sequence[str] = ()
    tags: Sequence[str] = ()
    autobahn: bool = False
    cites: Sequence[str] = ()

    def describe(self) -> str:
        parts = [f"-k {p}" for p in self.patterns] + [f"--family {f}" for f in self.families]
        parts += [f"--tag {t}" for t in self.tags] + [f"--cites {c!r}" for c in self.cites]
        parts += ["--autobahn"] if self.autobahn else []
        return " ".join(parts) or "(no filter)"

    def apply(self, cases: Sequence[Case]) -> list[Case]:
        try:
            queries = [CiteQuery(c) for c in self.cites]
        except ValueError as exc:
            raise CatalogError(str(exc)) from exc
        out = [c for c in cases if c.model.autobahn] if self.autobahn else list(cases)
        if self.families:
            out = [c for c in out if c.family in self.families]
        if self.tags:
            out = [c for c in out if set(self.tags) & set(c.model.tags)]
        if self.patterns:
            out = [c for c in out if any(fnmatch.fnmatch(c.id, p) or p in c.id for p in self.patterns)]
        if queries:
            out = [c for c in out if any(q.matches(c.model.spec) for q in queries)]
        return out


def select(catalog: Catalog, flt: Filter, *, allow_empty: bool = False) -> list[Case]:
    """The cases the filter keeps; none at all is a CatalogError that names the filter and the folders
    (unless ``allow_empty``)."""
    chosen = flt.apply(catalog.cases)
    if not chosen and not allow_empty:
        details = []
        families = sorted({c.family for c in catalog.cases})
        unknown = [f for f in flt.families if f not in families]
        if unknown:
            details.append(f"unknown famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}; "
                           f"families: {', '.join(families)}")  # fmt: skip
        raise CatalogError(
            f"no case matches {flt.describe()} among the {len(catalog.cases)} cases in {catalog.describe()}",
            details,
        )
    return chosen
