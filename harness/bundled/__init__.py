"""Where the suite's own files are: the cases, the built-in targets and the documents the CLI reads.

The repository keeps ``cases/``, ``targets/`` and ``docs/`` at its top level (its CI runs
``pytest cases/``), while an installed wheel must carry them inside the package, because a library
maintainer runs ``wsconform`` from their own repository with no checkout of ours. pyproject.toml maps
the packages ``harness.bundled.cases``, ``harness.bundled.targets`` and ``harness.bundled.docs`` onto
those folders (setuptools ``package-dir``), so a wheel holds them as package data under
``harness/bundled/``. In a source checkout, or an editable install (which points at the checkout),
they are not copied anywhere: they are the checkout's own folders next to ``harness/``. Both layouts
are looked up here, wheel first, so nothing else needs to know which one it runs from.

A zipped install cannot work (targets are started as processes with their folder as working
directory), so a location that is not a real directory counts as missing.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import harness

KINDS = ("cases", "targets", "docs")


class BundleMissing(LookupError):
    """The installation carries no such folder (a broken or partial install)."""


def _candidates(kind: str) -> list[Path]:
    out: list[Path] = []
    packaged = importlib.resources.files(__name__) / kind
    if isinstance(packaged, Path):  # a zip import would give a Traversable we cannot run from
        out.append(packaged)
    out.append(Path(harness.__file__).resolve().parent.parent / kind)  # checkout / editable install
    return out


def folder(kind: str) -> Path:
    """The bundled ``cases``, ``targets`` or ``docs`` folder; BundleMissing names every place tried."""
    if kind not in KINDS:
        raise ValueError(f"unknown bundled folder {kind!r}")
    tried = _candidates(kind)
    for path in tried:
        if _looks_like(kind, path):
            return path
    raise BundleMissing(
        f"this wsconform installation has no {kind} folder (looked in {', '.join(map(str, tried))})"
    )


def _looks_like(kind: str, path: Path) -> bool:
    """A sibling ``cases/`` of an installed ``harness`` could be someone else's: check its content."""
    if not path.is_dir():
        return False
    if kind == "cases":
        return any(path.glob("*/*.yaml"))
    if kind == "targets":
        return any(path.glob("*/target.yaml"))
    return (path / "autobahn-case-ids.txt").is_file()


def cases_dir() -> Path:
    return folder("cases")


def targets_dir() -> Path:
    return folder("targets")


def doc(name: str) -> Path:
    """A file of ``docs/`` the CLI reads at run time (the Autobahn id list, the oracle comparison)."""
    return folder("docs") / name
