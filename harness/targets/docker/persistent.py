"""A persistent client adapter in a container: one ``docker run -i`` for many cases.

Why the docker CLI and not the SDK: the adapter reads its cases on stdin, and the CLI's ``-i`` gives a
plain pipe to the container's stdin with the same process and reader thread a local persistent
adapter has (``harness.targets.runners.persistent``). A container costs 0.5-1 s to start, so a client
family in per-case mode pays that 300 times; here once per worker. Without the CLI (only the SDK's
socket), the session falls back to one container per case (``DockerClientLauncher``).

The container is named and tracked like every other container of the run (removed at exit and on
SIGTERM, swept after a killed harness), and removed by name whenever its adapter is discarded:
killing the CLI process alone would leave the container running.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from harness.targets.docker.containers import container_name, labels, remove_by_name, track
from harness.targets.docker.images import ensure_image
from harness.targets.errors import TargetUnavailable
from harness.targets.runners.base import render_argv
from harness.targets.runners.persistent import PersistentAdapter, PersistentClientLauncher

if TYPE_CHECKING:
    from harness.targets.spec import TargetSpec

PLACEHOLDERS = ("host",)


def docker_cli() -> str | None:
    """The docker command, if this machine has one."""
    return shutil.which("docker")


class DockerPersistentClientLauncher(PersistentClientLauncher):
    """A persistent client adapter run in the target's image on the host network."""

    kind = "docker"
    measurable = False  # the CLI's process tree is not the container's (as per-case containers: None)

    def __init__(
        self, spec: TargetSpec, argv: list[str], *, dockerfile: str, log_path: Path,
        env: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(argv, cwd=None, log_path=log_path, env=env, placeholders=PLACEHOLDERS)
        self.spec = spec
        self.dockerfile = dockerfile
        self.image: str | None = None

    def replica(self, index: int) -> DockerPersistentClientLauncher:
        log = self.log_path.with_name(f"{self.log_path.stem}.{index}{self.log_path.suffix}")
        twin = DockerPersistentClientLauncher(
            self.spec, self.argv_template, dockerfile=self.dockerfile, log_path=log, env=self.env
        )
        twin.image = self.image
        return twin

    def start(self) -> None:
        """Before the first case (outside any case deadline): make sure the image exists."""
        super().start()
        if self.image is None:
            self.image = ensure_image(self.spec, self.dockerfile, self.log_path).tag

    def command(self) -> tuple[list[str], dict[str, str], str]:
        cli = docker_cli()
        if self.image is None or cli is None:
            raise TargetUnavailable(f"docker: the image of {self.spec.name} is not built")
        argv = render_argv(self.argv_template, {"host": "127.0.0.1"}, what="persistent docker argv")
        name = container_name(self.spec.name)
        track(name)
        marks = [f"--label={k}={v}" for k, v in labels(self.spec.name).items()]
        env = [f"--env={k}={v}" for k, v in {**self.env, "WSCONFORM_PERSISTENT": "1"}.items()]
        wrapped = [cli, "run", "--rm", "-i", "--network=host", f"--name={name}", *marks, *env,
                   self.image, *argv]  # fmt: skip
        return wrapped, {}, name

    def discarded(self, adapter: PersistentAdapter) -> None:
        if adapter.container:
            remove_by_name(adapter.container)
