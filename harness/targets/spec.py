"""The ``target.yaml`` schema: what an implementation under test is and how to run it.

A target folder is the whole contract with an implementation: its identity (for the report), the
roles it offers and how to start each, and the policies that decide what a correct answer is for it
(its subprotocols, whether permessage-deflate is on, its maximum message size). ``expected.yaml``
beside it lists justified deviations, each with the RFC text that allows it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from harness.outcome import Outcome


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
    argv: list[str]
    env: dict[str, str] = {}


class DockerSpec(_Model):
    """A role run in a container (docs/architecture.md, "Container targets").

    The image is built from ``dockerfile`` in the target folder (the build context, plus the host's CA
    bundle as ``wsconform-ca.pem``); ``argv`` is the full container command with the placeholders of
    process argv except ``{python}``; the container runs on the host network.
    """

    dockerfile: str = "Dockerfile"
    argv: list[str] = []
    env: dict[str, str] = {}


class SetupSpec(_Model):
    """A one-time preparation of the target folder before its first local start (``npm ci``).

    ``creates`` is a path relative to the target folder whose existence means "done", so a run pays
    for the set-up once; ``argv`` runs in the target folder and may use ``{python}``.
    """

    argv: list[str]
    creates: str
    timeout: float = 600.0


class BrowserSpec(_Model):
    """A browser client target: the adapter script a page runs (see harness/targets/browser.py)."""

    script: str = "adapter.js"


class RoleSpec(_Model):
    process: ProcessSpec | None = None
    docker: DockerSpec | None = None
    browser: BrowserSpec | None = None
    ready: Literal["tcp", "stdout-line"] = "tcp"
    startup_timeout: float = 20.0


class Policies(_Model):
    subprotocols: list[str] = []
    permessage_deflate: bool = False
    max_message_size: int | None = None
    whatwg_api: bool = False  # a browser API: rules with `binding: whatwg` bind it (FAIL, not INFORMATIONAL)


class ExpectedDeviation(_Model):
    """A justified deviation. ``intermittent``: the deviation depends on timing the harness cannot
    control (e.g. how the kernel batches writes), so PASS is accepted too; every other outcome still
    fails the run."""

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
    roles: dict[Literal["server", "client"], RoleSpec]
    policies: Policies = Policies()
    notes: list[str] = []
    directory: Path | None = None
    expected: dict[str, ExpectedDeviation] = {}

    def missing(self) -> list[str]:
        """What this machine lacks to run the target as a local process (empty: available)."""
        out = [f"python module {m}" for m in self.requires.python if importlib.util.find_spec(m) is None]
        out += [f"command {c}" for c in self.requires.commands if shutil.which(c) is None]
        if self.setup is not None and self.setup.argv:
            tool = self.setup.argv[0]
            if tool != "{python}" and tool not in self.requires.commands and shutil.which(tool) is None:
                out.append(f"set-up command {tool}")
        return out

    @property
    def available(self) -> bool:
        return not self.missing()

    def runners(self, role: str) -> list[str]:
        """The runners target.yaml declares for ``role`` ("process", "docker"), in preference order."""
        rs = self.roles.get(role)  # type: ignore[call-overload]
        return [r for r in ("process", "docker") if rs is not None and getattr(rs, r) is not None]

    def runner_problem(self, runner: str, *, role: str | None = None) -> str | None:
        """Why this machine cannot run the target (or ``role``) with ``runner``; None when it can."""
        roles = [role] if role else list(self.roles)
        if not any(runner in self.runners(r) for r in roles):
            return f"no {runner} runner in target.yaml"
        if runner == "docker":
            from harness.targets.docker_runner import docker_problem

            return docker_problem()
        missing = self.missing()
        return f"missing {', '.join(missing)}" if missing else None

    def resolved_version(self) -> str:
        v = self.version
        if v.value:
            return v.value
        if v.python_package:
            try:
                return importlib.metadata.version(v.python_package)
            except importlib.metadata.PackageNotFoundError:
                return "not installed"
        if v.command:
            try:
                out = subprocess.run(
                    v.command, capture_output=True, text=True, timeout=10, check=False, cwd=self.directory
                )
                return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "unknown"
            except (OSError, subprocess.TimeoutExpired):
                return "unknown"
        return "unknown"

    def placeholders(self, port: int) -> dict[str, str]:
        pol = self.policies
        return {
            "python": sys.executable,
            "port": str(port),
            "host": "127.0.0.1",
            "url": f"ws://127.0.0.1:{port}/",
            "subprotocols": ",".join(pol.subprotocols),
            "max_message_size": str(pol.max_message_size or 0),
        }


class TargetError(ValueError):
    pass


def load_target(folder: Path) -> TargetSpec:
    path = folder / "target.yaml"
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec = TargetSpec.model_validate({**data, "directory": folder})
    except (OSError, yaml.YAMLError, ValidationError, TypeError) as exc:
        raise TargetError(f"{path}: {exc}") from exc
    expected_path = folder / "expected.yaml"
    if expected_path.exists():
        try:
            raw = yaml.safe_load(expected_path.read_text(encoding="utf-8")) or {}
            spec.expected = {k: ExpectedDeviation.model_validate(v) for k, v in raw.items()}
        except (yaml.YAMLError, ValidationError, AttributeError) as exc:
            raise TargetError(f"{expected_path}: {exc}") from exc
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
