"""The ``target.yaml`` schema: what an implementation under test is and how to run it.

A target folder is the whole contract with an implementation: its identity (for the report), the
roles it offers and how to start each, and the policies that decide what a correct answer is for it
(its subprotocols, whether permessage-deflate is on, its maximum message size). ``expected.yaml``
beside it lists justified deviations, each with the RFC text that allows it.

This module is a pure schema: loading and validating declarations only. Whether a declared runner
works on this machine is ``availability``'s question; starting it is the runners'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from harness.outcome import Outcome
from harness.targets.errors import TargetError

Role = Literal["server", "client"]
ROLES: tuple[Role, ...] = get_args(Role)
# How a role is reached: a local process, a container, a page in a browser, or a server somebody else runs.
RunnerKind = Literal["process", "docker", "browser", "url"]
RUNNER_KINDS: tuple[RunnerKind, ...] = get_args(RunnerKind)

__all__ = [
    "ROLES",
    "RUNNER_KINDS",
    "BrowserSpec",
    "DockerSpec",
    "ExpectedDeviation",
    "InteropSpec",
    "Policies",
    "ProcessSpec",
    "Requires",
    "Role",
    "RoleSpec",
    "RunnerKind",
    "SetupSpec",
    "TargetError",
    "TargetSpec",
    "VersionSpec",
    "load_expected",
    "load_target",
    "load_targets",
]


_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: safe and fast

class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VersionSpec(_Model):
    python_package: str | None = None
    command: list[str] | None = None
    value: str | None = None


class Requires(_Model):
    python: list[str] = []
    commands: list[str] = []


class ProcessSpec(_Model):
    """A role run as a local process. ``persistent_argv``: the command of the persistent client mode
    (docs/adapter-protocol.md §1; no ``{url}``, cases arrive on stdin), used only when the role says
    ``persistent: true``; ``argv`` stays the per-case command."""

    argv: list[str]
    env: dict[str, str] = {}
    persistent_argv: list[str] | None = None


class DockerSpec(_Model):
    """A role run in a container (docs/architecture.md, "Container targets").

    The image is built from ``dockerfile`` in the target folder (the build context, plus the host's CA
    bundle as ``wsconform-ca.pem``); ``argv`` is the full container command with the placeholders of
    process argv except ``{python}``; the container runs on the host network.
    """

    dockerfile: str = "Dockerfile"
    argv: list[str] = []
    env: dict[str, str] = {}
    persistent_argv: list[str] | None = None  # as ProcessSpec.persistent_argv


class SetupSpec(_Model):
    """A one-time preparation of the target folder before its first local start (``npm ci``).

    ``creates`` is a path relative to the target folder whose existence means "done", so a run pays
    for the set-up once; ``argv`` runs in the target folder and may use ``{python}``.
    """

    argv: list[str]
    creates: str
    timeout: float = 600.0


class BrowserSpec(_Model):
    """A browser client target: the adapter script a page runs (see harness/targets/runners/browser.py)."""

    script: str = "adapter.js"


class RoleSpec(_Model):
    """How one role runs. ``url``: a server somebody else runs on loopback (never started or
    restarted by the harness), what ``--target-url`` declares."""

    process: ProcessSpec | None = None
    docker: DockerSpec | None = None
    browser: BrowserSpec | None = None
    url: str | None = None
    ready: Literal["tcp", "stdout-line"] = "tcp"
    startup_timeout: float = 20.0
    persistent: bool = False  # a client that runs many cases in one process (docs/adapter-protocol.md §1)

    def runners(self) -> list[RunnerKind]:
        """The runner kinds this role declares, in preference order."""
        return [k for k in RUNNER_KINDS if getattr(self, k) is not None]


class Policies(_Model):
    subprotocols: list[str] = []
    permessage_deflate: bool = False
    max_message_size: int | None = None
    whatwg_api: bool = False  # a browser API: rules with `binding: whatwg` bind it (FAIL, not INFORMATIONAL)


class InteropSpec(_Model):
    """``interop:`` in target.yaml: the interop scenarios (``cases/interop/``) this target cannot play
    in either role, because its API lacks what they need (docs/adapter-protocol.md §2.4)."""

    unsupported: list[str] = []


class ExpectedDeviation(_Model):
    """A justified deviation. ``intermittent``: the deviation depends on timing the harness cannot
    control (e.g. how the kernel batches writes), so the milder ends of the race are accepted too (PASS;
    NON-STRICT for a listed FAIL: ``harness.verdict.expected.MILDER``); every other outcome still fails
    the run."""

    outcome: Outcome
    reason: str
    intermittent: bool = False


class TargetSpec(_Model):
    name: str
    implementation: str
    language: str = "python"
    homepage: str | None = None
    version: VersionSpec = VersionSpec()
    requires: Requires = Requires()
    setup: SetupSpec | None = None
    roles: dict[Role, RoleSpec]
    policies: Policies = Policies()
    interop: InteropSpec = InteropSpec()
    notes: list[str] = []
    directory: Path | None = None
    expected: dict[str, ExpectedDeviation] = {}
    adhoc: bool = False  # declared on the command line (--target-cmd ...), not by a target folder

    def role(self, role: Role) -> RoleSpec | None:
        return self.roles.get(role)

    def runners(self, role: Role) -> list[RunnerKind]:
        """The runners target.yaml declares for ``role`` ("process", "docker"), in preference order.

        Browser and URL roles are reached one way only and are not listed here (see ``RoleSpec.runners``).
        """
        rs = self.roles.get(role)
        return [k for k in rs.runners() if k in ("process", "docker")] if rs is not None else []


def load_expected(path: Path) -> dict[str, ExpectedDeviation]:
    """An expected.yaml: case id (optionally ``@client``/``@server``) -> the justified deviation."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}
        if not isinstance(raw, dict):
            raise TypeError("expected a mapping of case ids to {outcome, reason}")
        return {str(k): ExpectedDeviation.model_validate(v) for k, v in raw.items()}
    except (OSError, yaml.YAMLError, ValidationError, TypeError) as exc:
        raise TargetError(f"{path}: {exc}") from exc


def load_target(folder: Path) -> TargetSpec:
    """A target folder (or its target.yaml): the spec, with expected.yaml beside it when present."""
    if folder.name == "target.yaml" and folder.is_file():
        folder = folder.parent
    path = folder / "target.yaml"
    try:
        data: Any = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
        spec = TargetSpec.model_validate({**data, "directory": folder})
    except (OSError, yaml.YAMLError, ValidationError, TypeError) as exc:
        raise TargetError(f"{path}: {exc}") from exc
    expected_path = folder / "expected.yaml"
    if expected_path.exists():
        spec.expected = load_expected(expected_path)
    return spec


def load_targets(root: Path) -> dict[str, TargetSpec]:
    """Every target folder under ``root`` (a folder with a target.yaml), by name."""
    out: dict[str, TargetSpec] = {}
    if not root.is_dir():
        return out
    for folder in sorted(p for p in root.iterdir() if (p / "target.yaml").is_file()):
        spec = load_target(folder)
        out[spec.name] = spec
    return out
