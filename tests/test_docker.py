"""The Docker runner: cached images, crash and readiness handling, and nothing left behind.

Tiny throwaway targets are written into tmp_path (the base image has no Python: a shell command is
enough for "never ready" and "exits at once"); the real servers and clients come from
targets/websockets, whose image layers the crash target shares. Everything is skipped, with the
reason in the summary, when the Docker daemon cannot be used here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.engine import run_case
from harness.model.loader import Case
from harness.outcome import Outcome
from harness.targets.docker import containers, daemon, images
from harness.targets.errors import TargetUnavailable
from harness.targets.session import TargetSession, open_session
from harness.targets.spec import load_target
from tests.conftest import CASES, ROOT

_PROBLEM = daemon.docker_problem()
pytestmark = pytest.mark.skipif(_PROBLEM is not None, reason=f"Docker not usable here: {_PROBLEM}")

TINY_DOCKERFILE = """\
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
COPY wsconform-ca.pem /usr/local/share/wsconform/ca.pem
COPY nonce.txt /nonce.txt
"""

CRASH_SERVER = """\
import argparse, asyncio, os, sys

async def main(port):
    async def on_connect(reader, writer):
        await reader.read(1)  # the readiness probe connects and sends nothing: only a request crashes us
        print("crashing on request", file=sys.stderr, flush=True)
        os._exit(3)
    server = await asyncio.start_server(on_connect, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int)
asyncio.run(main(parser.parse_args().port))
"""


def _ours() -> list[str]:
    found = daemon.client().containers.list(all=True, filters={"label": f"{daemon.LABEL}.pid={os.getpid()}"})
    return [str(c.name) for c in found]


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    yield
    assert _ours() == [], "a container started by this test process outlived its test"


def _tiny_target(tmp_path: Path, roles: str) -> Path:
    folder = tmp_path / "targets" / "docker-tiny"
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text(TINY_DOCKERFILE)
    (folder / "nonce.txt").write_text(uuid.uuid4().hex)  # a fresh image per test run: a real first build
    (folder / "target.yaml").write_text(
        "name: docker-tiny\nimplementation: none\nlanguage: shell\nroles:\n" + textwrap.indent(roles, "  ")
    )
    return folder


@pytest.fixture
def tiny_images() -> Iterator[list[str]]:
    """Tags built by a test, removed after it (each tiny target has its own nonce, hence its own image)."""
    tags: list[str] = []
    yield tags
    for tag in tags:
        with contextlib.suppress(Exception):
            daemon.client().images.remove(tag, force=True)


def _session(tmp_path: Path, name: str, role: str = "server", root: Path | None = None) -> TargetSession:
    return open_session(
        name, targets_root=root or tmp_path / "targets", log_dir=tmp_path / "logs", role=role, runner="docker"
    )


def _case(repo_cases: dict[str, Case], case_id: str) -> Case:
    return repo_cases[case_id]


def test_image_tag_is_stable_and_an_unchanged_target_is_cached(
    tmp_path: Path, tiny_images: list[str]
) -> None:
    folder = _tiny_target(tmp_path, "server:\n  docker:\n    argv: [sleep, '30']\n")
    spec = load_target(folder)
    log = tmp_path / "build.log"
    first = images.ensure_image(spec, "Dockerfile", log)
    tiny_images.append(first.tag)
    second = images.ensure_image(spec, "Dockerfile", log)
    assert first.tag == second.tag and first.tag.startswith("wsconform/docker-tiny:")
    assert (first.cached, second.cached) == (False, True)
    assert second.seconds == 0.0
    assert "Successfully built" in log.read_text() or "writing image" in log.read_text()
    labels = daemon.client().images.get(first.tag).labels
    assert labels[daemon.LABEL] == "1" and labels[f"{daemon.LABEL}.target"] == "docker-tiny"
    # any change to what goes into the image is a new tag; the base image and the CA bundle count too
    base = daemon.base_image() or "default"
    ca = images.ca_bundle()
    same = images.image_tag(spec.name, folder, "Dockerfile", daemon.image_id(base) or base, ca)
    assert same == first.tag
    assert images.image_tag(spec.name, folder, "Dockerfile", "other-base", ca) != first.tag
    assert (
        images.image_tag(spec.name, folder, "Dockerfile", daemon.image_id(base) or base, ca + b"x")
        != first.tag
    )
    (folder / "nonce.txt").write_text(uuid.uuid4().hex)
    assert images.image_tag(spec.name, folder, "Dockerfile", daemon.image_id(base) or base, ca) != first.tag
    third = images.ensure_image(spec, "Dockerfile", log)
    tiny_images.append(third.tag)
    assert third.tag != first.tag and not third.cached
    assert daemon.image_id(first.tag) is None, "the image of the old contents was not pruned"


def test_build_failure_is_unavailable_with_the_end_of_the_build_output(tmp_path: Path) -> None:
    folder = _tiny_target(tmp_path, "server:\n  docker:\n    argv: [sleep, '30']\n")
    (folder / "Dockerfile").write_text(TINY_DOCKERFILE + "RUN echo build-step-output; exit 9\n")
    with pytest.raises(TargetUnavailable) as info:
        images.ensure_image(load_target(folder), "Dockerfile", tmp_path / "build.log")
    assert "build-step-output" in str(info.value) and "failed" in str(info.value)
    with pytest.raises(TargetUnavailable):  # remembered: a run does not rebuild it for every case
        images.ensure_image(load_target(folder), "Dockerfile", tmp_path / "build.log")


def test_container_that_never_becomes_ready_is_error_with_its_output(
    tmp_path: Path, repo_cases: dict[str, Case], tiny_images: list[str]
) -> None:
    roles = "server:\n  docker:\n    argv: [sh, -c, 'echo waiting-on-{port}; exec sleep 60']\n"
    _tiny_target(tmp_path, roles + "  startup_timeout: 2\n")
    session = _session(tmp_path, "docker-tiny")
    try:
        result = run_case(_case(repo_cases, "text-len-0"), session, data_dir=CASES / "data")
        tiny_images.append(str(session.runner.image))  # type: ignore[attr-defined]
    finally:
        session.stop()
    assert result.outcome is Outcome.ERROR
    assert "not ready" in result.reason
    assert "waiting-on-" in result.log


def test_container_that_exits_at_once_is_error_without_waiting(
    tmp_path: Path, repo_cases: dict[str, Case], tiny_images: list[str]
) -> None:
    roles = "server:\n  docker:\n    argv: [sh, -c, 'echo boom >&2; exit 7']\n"
    _tiny_target(tmp_path, roles + "  startup_timeout: 30\n")
    session = _session(tmp_path, "docker-tiny")
    started = time.monotonic()
    try:
        result = run_case(_case(repo_cases, "text-len-0"), session, data_dir=CASES / "data")
        tiny_images.append(str(session.runner.image))  # type: ignore[attr-defined]
    finally:
        session.stop()
    assert result.outcome is Outcome.ERROR
    assert "exited with code 7" in result.reason and "boom" in result.log
    assert time.monotonic() - started < 20, "the runner waited for the startup timeout"


def _crash_target(tmp_path: Path) -> Path:
    """targets/websockets with a server that dies on the first request (same image layers but the last)."""
    folder = tmp_path / "targets" / "docker-crash"
    folder.mkdir(parents=True)
    src = ROOT / "targets" / "websockets"
    shutil.copy(src / "Dockerfile", folder / "Dockerfile")
    shutil.copy(src / "client.py", folder / "client.py")
    (folder / "server.py").write_text(CRASH_SERVER)
    (folder / "target.yaml").write_text(
        textwrap.dedent("""\
        name: docker-crash
        implementation: a server that exits on the first request
        roles:
          server:
            docker:
              argv: ["/opt/venv/bin/python", "/app/server.py", "--port", "{port}"]
            ready: stdout-line
        """)
    )
    return folder


def test_container_that_exits_during_a_case_fails_it_and_is_restarted(
    tmp_path: Path, repo_cases: dict[str, Case], tiny_images: list[str]
) -> None:
    _crash_target(tmp_path)
    session = _session(tmp_path, "docker-crash")
    try:
        first = run_case(_case(repo_cases, "text-len-0"), session, data_dir=CASES / "data")
        tiny_images.append(str(session.runner.image))  # type: ignore[attr-defined]
        first_container = session.runner.container  # type: ignore[attr-defined]
        second = run_case(_case(repo_cases, "text-len-125"), session, data_dir=CASES / "data")
        assert session.runner.container is not first_container  # type: ignore[attr-defined]
    finally:
        session.stop()
    for result in (first, second):
        assert result.outcome is Outcome.FAIL, result.reason
        assert "crashing on request" in result.log
    assert session.restarts == 1
    assert any("restarted" in n and "status 3" in n for n in second.trace.get("notes", []))


@pytest.mark.parametrize("case_id", ["text-len-125", "client-echo-text-125"])
def test_websockets_in_a_container_gives_the_same_outcome_as_the_process(
    tmp_path: Path, repo_cases: dict[str, Case], case_id: str
) -> None:
    case = _case(repo_cases, case_id)
    role = "client" if case.model.role == "client" else "server"
    outcomes = {}
    for runner in ("process", "docker"):
        session = open_session(
            "websockets", targets_root=ROOT / "targets", log_dir=tmp_path / "logs", role=role, runner=runner
        )
        try:
            outcomes[runner] = run_case(case, session, data_dir=CASES / "data").outcome
        finally:
            session.stop()
    assert outcomes == {"process": Outcome.PASS, "docker": Outcome.PASS}


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_sweep_removes_containers_of_dead_harnesses_only(tmp_path: Path, tiny_images: list[str]) -> None:
    folder = _tiny_target(tmp_path, "server:\n  docker:\n    argv: [sleep, '30']\n")
    tag = images.ensure_image(load_target(folder), "Dockerfile", tmp_path / "build.log").tag
    tiny_images.append(tag)
    cli = daemon.client()
    orphan = cli.containers.run(
        tag, ["sleep", "60"], detach=True, network_mode="host",
        labels={daemon.LABEL: "1", f"{daemon.LABEL}.pid": str(_dead_pid()),
                f"{daemon.LABEL}.target": "docker-tiny"},
    )  # fmt: skip
    mine = containers.run_container(tag, ["sleep", "60"], {}, "docker-tiny")
    try:
        removed = containers.sweep_leftovers()
        assert orphan.name in removed
        assert mine.name not in removed
        assert not cli.containers.list(all=True, filters={"id": orphan.id})
        assert cli.containers.list(all=True, filters={"id": mine.id})
    finally:
        containers.remove(mine)
        with contextlib.suppress(Exception):
            orphan.remove(force=True)


CHILD = """\
import sys, time
from harness.targets.docker import containers
container = containers.run_container(sys.argv[1], ["sleep", "60"], {}, "docker-tiny")
print(container.id, flush=True)
if sys.argv[2] == "exit":
    sys.exit(0)
time.sleep(60)
"""


@pytest.mark.parametrize("how", ["exit", "sigterm", "sigkill"])
def test_containers_of_an_ended_harness_are_removed(tmp_path: Path, tiny_images: list[str], how: str) -> None:
    """atexit and SIGTERM remove the harness's containers; after SIGKILL the next run's sweep does."""
    folder = _tiny_target(tmp_path, "server:\n  docker:\n    argv: [sleep, '30']\n")
    tag = images.ensure_image(load_target(folder), "Dockerfile", tmp_path / "build.log").tag
    tiny_images.append(tag)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, tag, how], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert child.stdout is not None
    cid = child.stdout.readline().strip()
    assert cid, "the child did not start its container"
    cli = daemon.client()
    assert cli.containers.list(all=True, filters={"id": cid})
    if how == "sigterm":
        child.send_signal(signal.SIGTERM)
    elif how == "sigkill":
        child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    if how == "sigkill":
        assert cli.containers.list(all=True, filters={"id": cid}), "SIGKILL cannot clean up: the sweep must"
        containers.sweep_leftovers()
    assert not cli.containers.list(all=True, filters={"id": cid})


def test_client_container_that_never_connects_is_killed_and_removed(
    tmp_path: Path, repo_cases: dict[str, Case], tiny_images: list[str]
) -> None:
    argv = "[sh, -c, 'echo will-not-connect-to-{url} >&2; exec sleep 60']"
    _tiny_target(tmp_path, f"client:\n  docker:\n    argv: {argv}\n")
    session = _session(tmp_path, "docker-tiny", role="client")
    try:
        result = run_case(
            _case(repo_cases, "client-echo-text-125"), session, data_dir=CASES / "data", timeout_scale=0.2
        )
        tiny_images.append(str(session.runner.image))  # type: ignore[attr-defined]
    finally:
        session.stop()
    assert result.outcome is Outcome.FAIL, result.reason
    assert "did not connect" in result.reason
    assert "will-not-connect-to-ws://127.0.0.1:" in (tmp_path / "logs" / "docker-tiny.client.log").read_text()


def test_parallel_workers_get_their_own_containers(tmp_path: Path) -> None:
    from harness.scheduler import replicas

    session = open_session(
        "websockets", targets_root=ROOT / "targets", log_dir=tmp_path / "logs", runner="docker"
    )
    workers = replicas(session, 2)
    try:
        for w in workers:
            w.ensure_running()
        ports = {w.runner.address.port for w in workers}
        names = {w.runner.container.name for w in workers}  # type: ignore[attr-defined]
        assert len(ports) == 2 and len(names) == 2
        assert all(w.runner.alive() for w in workers)
    finally:
        for w in workers:
            w.stop()


def test_container_memory_is_measured_for_resource_cases(tmp_path: Path) -> None:
    """Backpressure figures need the container's RSS: read on the host from the container's process tree."""
    session = _session(tmp_path, "websockets", root=ROOT / "targets")
    try:
        session.ensure_running()
        rss = session.runner.memory_bytes()
    finally:
        session.stop()
    assert rss is not None and 5 * 1024 * 1024 < rss < 500 * 1024 * 1024, rss
    assert session.runner.memory_bytes() is None  # stopped: nothing to measure
