"""Target images: content-addressed tags, built once, the old ones pruned.

**An unchanged target is never rebuilt.** The tag is a hash of what goes into the image (context files,
Dockerfile, base image id, CA bundle), so "is it built?" is "does the tag exist?", and a file lock per
tag makes pytest-xdist workers wait for one build instead of racing. A failed build is remembered for
the rest of the run, so a target whose image cannot build costs one build, not one per case.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.targets.docker.daemon import (
    BUILD_TIMEOUT,
    LABEL,
    base_image,
    client,
    daemon_problem,
    ensure_base,
    file_lock,
    image_id,
)
from harness.targets.errors import TargetUnavailable
from harness.targets.runners.output import TargetLog
from harness.targets.spec import TargetSpec

CA_FILE = "wsconform-ca.pem"


@dataclasses.dataclass(frozen=True)
class Built:
    tag: str
    seconds: float
    cached: bool


_build_failures: dict[str, str] = {}


def ca_bundle() -> bytes:
    """The host's CA bundle for package managers inside builds ($PIP_CERT, $SSL_CERT_FILE, Debian's)."""
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"),
                      "/etc/ssl/certs/ca-certificates.crt"):  # fmt: skip
        if candidate and os.path.isfile(candidate):
            with contextlib.suppress(OSError):
                return Path(candidate).read_bytes()
    return b""


def _context_files(folder: Path) -> list[Path]:
    skip = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "node_modules", CA_FILE}
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part in skip for part in rel.parts) or path.suffix == ".pyc" or not path.is_file():
            continue
        out.append(rel)
    return out


def image_name(target: str) -> str:
    return "wsconform/" + (re.sub(r"[^a-z0-9._-]+", "-", target.lower()).strip("-._") or "target")


def image_tag(target: str, folder: Path, dockerfile: str, base_id: str, ca: bytes) -> str:
    """``wsconform/<target>:<12 hex>`` over everything that goes into the image."""
    h = hashlib.sha256()
    for rel in _context_files(folder):
        data = (folder / rel).read_bytes()
        h.update(b"file\0" + rel.as_posix().encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    h.update(b"dockerfile\0" + dockerfile.encode() + b"\0")
    h.update(b"base\0" + base_id.encode() + b"\0")
    h.update(b"ca\0" + ca)
    return f"{image_name(target)}:{h.hexdigest()[:12]}"


def _tag_for(name: str, folder: Path, dockerfile: str, base: str | None, ca: bytes) -> str:
    return image_tag(name, folder, dockerfile, (base and image_id(base)) or base or "default", ca)


def built_image(spec: TargetSpec, dockerfile: str) -> str | None:
    """The tag of the target's current image if it is built (nothing is built or pulled here)."""
    if spec.directory is None or not (spec.directory / dockerfile).is_file():
        return None
    tag = _tag_for(spec.name, spec.directory, dockerfile, base_image(), ca_bundle())
    return tag if image_id(tag) else None


def dockerfiles(spec: TargetSpec) -> list[str]:
    """The Dockerfiles the target's roles build from."""
    return sorted({rs.docker.dockerfile for rs in spec.roles.values() if rs.docker is not None})


def ensure_image(spec: TargetSpec, dockerfile: str, log_path: Path) -> Built:
    """Build the target's image unless its tag already exists; a failure raises TargetUnavailable
    with the end of the build output (and is remembered, so a run does not rebuild per case)."""
    folder = spec.directory
    if folder is None or not (folder / dockerfile).is_file():
        raise TargetUnavailable(f"docker: {spec.name} has no {dockerfile} in {folder}")
    problem = daemon_problem()
    if problem:
        raise TargetUnavailable(f"docker: {problem}")
    target_log = TargetLog.for_path(log_path)

    def log(text: str) -> None:
        target_log.write(text.encode("utf-8", "replace"))

    base = ensure_base(log)
    ca = ca_bundle()
    tag = _tag_for(spec.name, folder, dockerfile, base, ca)
    if tag in _build_failures:
        raise TargetUnavailable(_build_failures[tag])
    if image_id(tag):
        return Built(tag, 0.0, True)
    with file_lock(tag):
        if image_id(tag):  # another worker built it while we waited
            return Built(tag, 0.0, True)
        started = time.monotonic()
        log(f"\n--- docker build {tag} (BASE_IMAGE={base or 'Dockerfile default'})\n")
        try:
            _build(folder, dockerfile, tag, base, ca, spec.name, log)
        except TargetUnavailable as exc:
            first, _, rest = str(exc).partition("\n")
            _build_failures[tag] = f"{first} (log: {log_path})\n{rest}"
            raise TargetUnavailable(_build_failures[tag]) from None
        _prune_older(tag)
        return Built(tag, time.monotonic() - started, False)


def _prune_older(tag: str) -> None:
    """Drop this target's images of older contents (hash tags only; a hand-made ``:dev`` stays).
    An image a container still uses is kept: the daemon refuses, and that is fine."""
    repo, _, keep = tag.rpartition(":")
    for image in client().images.list(name=repo):
        for old in image.tags:
            name, _, ref = old.rpartition(":")
            if name == repo and ref != keep and re.fullmatch(r"[0-9a-f]{12}", ref):
                with contextlib.suppress(Exception):
                    client().images.remove(old)


def _build(
    folder: Path, dockerfile: str, tag: str, base: str | None, ca: bytes, name: str,
    log: Callable[[str], None],
) -> None:  # fmt: skip
    tail: list[str] = []
    error: str | None = None
    with tempfile.TemporaryDirectory(prefix="wsconform-ctx-") as tmp:
        ctx = Path(tmp) / "context"
        shutil.copytree(folder, ctx, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules"))
        (ctx / CA_FILE).write_bytes(ca)
        try:
            stream = client().api.build(
                path=str(ctx), tag=tag, dockerfile=dockerfile, buildargs={"BASE_IMAGE": base} if base else {},
                network_mode="host", rm=True, forcerm=True, decode=True, timeout=int(BUILD_TIMEOUT),
                labels={LABEL: "1", f"{LABEL}.target": name},
            )  # fmt: skip
            for chunk in stream:
                text = str(chunk.get("stream") or chunk.get("status") or "")
                if "error" in chunk:
                    error = str(chunk.get("error"))
                    text += error + "\n"
                if text:
                    log(text)
                    tail = (tail + text.splitlines())[-20:]
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log(error + "\n")
    if error is not None:
        lines = "\n".join(tail[-20:])
        raise TargetUnavailable(f"docker: build of {tag} failed: {error.strip()}\n{lines}")
