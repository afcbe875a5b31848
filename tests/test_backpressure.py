"""Backpressure and resource bounds: the flood, the sampler, the figures and how they are graded.

The integration tests run the repository's own cases against the deliberately broken server: without
a defect it reads no more while its echoes cannot leave (bounded: PASS); with ``unbounded-queue`` it
reads everything into memory (INFORMATIONAL, with the figure); with ``drop-under-load`` or
``reorder-under-load`` it loses or swaps echoes (FAIL). A test runs one case three times to show
that the graded figures are reproducible, and one measures the peer's own push rate, so that a
figure is never the harness's limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bench.peer_flood import measure
from harness.engine import CaseResult, run_case
from harness.model.loader import Case
from harness.model.schema import STEP, FloodSpec, ResourcesExpect
from harness.observed import Observed
from harness.outcome import Outcome
from harness.peer.connection import PeerConnection
from harness.peer.context import CaseContext
from harness.peer.flood import COUNTER, MessageFactory, run_flood
from harness.peer.trace import Trace
from harness.sampling import Ratios, Sample, downsample, tcp_queues
from harness.targets.runners.process import ProcessClientLauncher
from harness.targets.session import TargetSession, open_session
from harness.targets.spec import Policies, RoleSpec, TargetSpec
from harness.wire.frames import FrameParser
from tests.conftest import CASES, ROOT, broken_session

MIB = 2**20
SLOW_READER = "backpressure-slow-reader-64kib"


def _run(case: Case, session: TargetSession) -> CaseResult:
    try:
        return run_case(case, session, data_dir=CASES / "data")
    finally:
        session.stop()


# -- the case language ----------------------------------------------------------------------------


def test_sizes_read_like_powers_of_two() -> None:
    spec = FloodSpec(bytes="64Mi", size="64Ki")  # type: ignore[arg-type]
    assert (spec.bytes, spec.size) == (64 * MIB, 65536)
    assert ResourcesExpect(max_growth="1Gi").max_growth == 2**30  # type: ignore[arg-type]
    assert FloodSpec(count=1, size="max_message_size+1").size == "max_message_size+1"
    with pytest.raises(ValidationError, match="Ki, Mi or Gi"):
        FloodSpec(bytes="64MB")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="exactly one of count"):
        FloodSpec(count=2, bytes=100)
    with pytest.raises(ValidationError, match="exactly one of count"):
        FloodSpec()


def test_load_steps_parse_without_a_body() -> None:
    assert STEP.validate_python({"pause_reading": None}).kind == "pause_reading"
    assert STEP.validate_python({"resume_reading": None}).kind == "resume_reading"
    assert STEP.validate_python({"flood": {"count": 3, "opcode": "text"}}).opcode == 1


def test_policy_sizes_come_from_the_target() -> None:
    ctx = CaseContext(policies={"max_message_size": 1000})
    assert ctx.policy_size("max_message_size") == 1000
    assert ctx.policy_size("max_message_size+1") == 1001
    assert ctx.policy_size("max_message_size-10") == 990
    with pytest.raises(ValueError, match="declared max_message_size"):
        CaseContext().policy_size("max_message_size")


# -- frames, sampling, figures ----------------------------------------------------------------------


def test_flood_frames_parse_back_with_their_digests() -> None:
    for size in (0, 5, 16, 125, 126, 65536, 70000):
        factory = MessageFactory(size, 2, mask=True)
        frames = [factory.build(seq, bytes([seq, 1, 2, 3])) for seq in range(3)]
        parsed = FrameParser(expect_masked=True).feed(b"".join(f for f, _ in frames))
        assert [len(f.payload) for f in parsed] == [size] * 3
        for frame, (_, digest) in zip(parsed, frames, strict=True):
            assert not frame.violations
            assert hashlib.sha256(frame.payload).hexdigest() == digest
        if size >= COUNTER:
            assert len({f.payload for f in parsed}) == 3  # every message unique: loss and reordering show


async def _flood_into_recorder(count: int, size: int) -> tuple[bytes, list[str]]:
    received = bytearray()
    done = asyncio.Event()

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1 << 20):
            received.extend(data)
        done.set()
        writer.close()

    server = await asyncio.start_server(sink, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = PeerConnection(reader, writer, Trace(), Observed(), we_mask=True)
    conn.set_budget(30)
    digests: list[str] = []
    stats = await run_flood(
        conn, size=size, opcode=1, count=count, stall_after=2, record=lambda _op, _n, d: digests.append(d)
    )
    assert stats.stopped == "done" and stats.messages == count
    writer.close()
    await asyncio.wait_for(done.wait(), 10)
    server.close()
    return bytes(received), digests


def test_flood_masks_every_frame_with_a_fresh_key() -> None:
    data, digests = asyncio.run(_flood_into_recorder(2000, 100))
    frames = FrameParser(expect_masked=True).feed(data)
    assert len(frames) == len(digests) == 2000
    keys = set()
    for i, (frame, digest) in enumerate(zip(frames, digests, strict=True)):
        start = sum(2 + 4 + 100 for _ in range(i))
        keys.add(data[start + 2 : start + 6])
        assert frame.opcode == 1 and frame.payload.decode("ascii")  # text floods are valid UTF-8
        assert hashlib.sha256(frame.payload).hexdigest() == digest
    assert len(keys) > 1990  # RFC 6455 §5.3: a fresh masking key per frame (4 random bytes each)


def test_peer_pushes_fast_enough_not_to_be_the_bottleneck() -> None:
    """The issue asks for ~200 MiB/s; measured 310 MiB/s on the project's 2-core machine under load.

    The assertion keeps headroom for a machine shared with other jobs; the figure is printed.
    """
    mib_s, _ = asyncio.run(measure(128 * MIB, 65536))
    print(f"peer flood: {mib_s:.0f} MiB/s")
    assert mib_s > 150, f"the peer pushes only {mib_s:.0f} MiB/s"


def test_downsample_keeps_the_limit_the_ends_and_the_peaks() -> None:
    samples = [Sample(i * 0.05, 1000 + (5000 if i == 333 else 0), i * 10, 0) for i in range(1000)]
    samples[777] = Sample(777 * 0.05, 1000, 10**9, 0)
    kept = downsample(samples, 200)
    assert len(kept) <= 200
    assert kept[0] is samples[0] and kept[-1] is samples[-1]
    assert samples[333] in kept and samples[777] in kept
    assert [s.t for s in kept] == sorted(s.t for s in kept)


def test_held_is_in_flight_minus_the_kernel_queues() -> None:
    s = Sample(0.0, None, sent=1000, received=100, kernel_out=500, kernel_back=200)
    assert s.in_flight == 900
    assert s.held(Ratios(out=0.5, back=1.0)) == 900 - 250 - 200
    assert Sample(0.0, None, 10, 0).held(Ratios()) is None  # no kernel figures: unknown, not zero


def test_kernel_queues_of_both_ends_of_a_loopback_connection() -> None:
    import socket

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        with socket.create_connection(srv.getsockname()) as c:
            a, _ = srv.accept()
            with a:
                c.sendall(b"x" * 50000)
                for _ in range(100):
                    queues = tcp_queues(a.getsockname(), a.getpeername())
                    if queues and queues[0] == 50000:
                        break
                assert queues == (50000, 0)  # unread by the accepting side


# -- grading against the broken server ------------------------------------------------------------


def test_bounded_server_passes_with_figures_and_samples(repo_cases: dict[str, Case], tmp_path: Path) -> None:
    result = _run(repo_cases[SLOW_READER], broken_session(tmp_path, None))
    assert result.outcome is Outcome.PASS, result.reason
    assert result.reason.startswith("bounded:")
    f = result.figures
    assert f is not None and f["stalled"] is True
    assert f["held_bytes"] < 4 * MIB and f["peak_rss_growth"] < 16 * MIB
    assert f["messages_received"] == f["messages_sent"] < 1024  # it stopped reading: the flood stalled
    assert f["interval_s"] == 0.05 and f["drain_s"] is not None
    assert f["peer_sndbuf"] <= 256 * 1024  # the peer's own kernel buffers are kept small
    record = json.loads(json.dumps(result.record()))
    samples = record["samples"]
    assert 5 <= len(samples) <= 200 and {"t", "rss", "bytes_in_flight"} <= set(samples[0])
    steps = [b["t"] - a["t"] for a, b in itertools.pairwise(samples)]
    assert statistics.median(steps) == pytest.approx(0.05, abs=0.01)  # taken at the known interval
    assert record["figures"]["absorbed_bytes"] == f["absorbed_bytes"]


def test_unbounded_server_is_informational_with_its_figure(
    repo_cases: dict[str, Case], tmp_path: Path
) -> None:
    result = _run(repo_cases[SLOW_READER], broken_session(tmp_path, "unbounded-queue"))
    assert result.outcome is Outcome.INFORMATIONAL, result.reason
    assert result.reason.startswith("unbounded") and "data intact" in result.reason
    f = result.figures
    assert f is not None and not f["stalled"]
    assert f["absorbed_bytes"] > 63 * MIB  # it took the whole flood (less a header being read back)
    assert f["held_bytes"] > 40 * MIB and f["peak_rss_growth"] > 40 * MIB
    assert f["messages_received"] == 1024


@pytest.mark.parametrize(
    ("defect", "case_id", "words"),
    [
        # a dropped echo shows as a missing message, or as the next message in its place (sha256)
        ("drop-under-load", SLOW_READER, "binary of 65536 bytes"),
        ("reorder-under-load", "backpressure-burst-then-drain", "sha256"),
    ],
)
def test_lost_or_reordered_echoes_under_load_fail(
    repo_cases: dict[str, Case], tmp_path: Path, defect: str, case_id: str, words: str
) -> None:
    case = repo_cases[case_id]
    result = run_case(case, broken_session(tmp_path, defect), data_dir=CASES / "data", timeout_scale=0.3)
    assert result.outcome is Outcome.FAIL, result.reason
    assert words in result.reason
    assert result.figures is not None  # the figures come with the FAIL


def test_figures_are_reproducible_within_20_percent(repo_cases: dict[str, Case], tmp_path: Path) -> None:
    """Three runs of the slow-reader case each, against a bounded and an unbounded server.

    Graded figures only: what the target holds and its RSS growth. ``absorbed_bytes`` includes the
    kernel's TCP buffers, which autotuning sizes differently from run to run (±30% seen).
    """
    case = repo_cases[SLOW_READER]
    targets = {
        "websockets": lambda: open_session(
            "websockets", targets_root=ROOT / "targets", log_dir=tmp_path / "logs"
        ),
        "unbounded": lambda: broken_session(tmp_path, "unbounded-queue"),
    }
    for name, make in targets.items():
        session = make()
        try:
            runs = [run_case(case, session, data_dir=CASES / "data").figures or {} for _ in range(3)]
        finally:
            session.stop()
        keys = ["held_bytes"] + (["peak_rss_growth", "absorbed_bytes"] if name == "unbounded" else [])
        for key in keys:
            values = [r[key] for r in runs]
            mid = statistics.median(values)
            assert all(abs(v - mid) <= 0.2 * mid for v in values), f"{name} {key}: {values}"


# -- client role ----------------------------------------------------------------------------------

UNBOUNDED_CLIENT = """
import asyncio, hashlib, json, os, sys
from websockets.asyncio.client import connect

async def main(url):
    # max_queue=None: the library reads everything into memory, whatever the consumer does.
    async with connect(url, max_queue=None, compression=None, max_size=None, ping_interval=None) as ws:
        print(json.dumps({"event": "open", "protocol": "", "extensions": ""}), flush=True)
        async for message in ws:
            await asyncio.sleep(int(os.environ.get("WSCONFORM_DELAY_MS", "0")) / 1000)
            await ws.send(message)
        code = ws.protocol.close_rcvd.code
    print(json.dumps({"event": "close", "code": code, "reason": "", "wasClean": True}), flush=True)

asyncio.run(main(sys.argv[1]))
"""


def _client_session(tmp_path: Path, argv: list[str], name: str) -> TargetSession:
    spec = TargetSpec(name=name, implementation=name, roles={"client": RoleSpec()}, policies=Policies())
    return TargetSession(
        name, ProcessClientLauncher(argv, cwd=None, log_path=tmp_path / f"{name}.log"), spec, "client"
    )


def test_slow_client_bounded_and_unbounded(repo_cases: dict[str, Case], tmp_path: Path) -> None:
    case = repo_cases["backpressure-client-slow-reader"]
    adapter = ROOT / "targets" / "websockets" / "client.py"
    bounded = run_case(
        case,
        _client_session(tmp_path, [sys.executable, str(adapter), "--url", "{url}"], "websockets"),
        data_dir=CASES / "data",
    )
    assert bounded.outcome is Outcome.PASS, bounded.reason
    assert bounded.figures is not None and bounded.figures["held_bytes"] < 4 * MIB
    script = tmp_path / "unbounded_client.py"
    script.write_text(UNBOUNDED_CLIENT)
    unbounded = run_case(
        case,
        _client_session(tmp_path, [sys.executable, str(script), "{url}"], "greedy"),
        data_dir=CASES / "data",
    )
    assert unbounded.outcome is Outcome.INFORMATIONAL, unbounded.reason
    assert unbounded.figures is not None and unbounded.figures["held_bytes"] > 8 * MIB


@pytest.mark.parametrize("adapter", ["websockets", "aiohttp", "tornado", "wsproto", "websocket-client"])
def test_client_adapters_know_slow_reader_only(adapter: str) -> None:
    """Any scenario but slow-reader is unsupported (exit 127, before connecting anywhere)."""
    path = ROOT / "targets" / adapter / "client.py"
    env = {"WSCONFORM_SCENARIO": "close-999", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, str(path), "--url", "ws://127.0.0.1:9/"], env=env, capture_output=True, timeout=30
    )
    assert done.returncode == 127
    assert "slow-reader" in path.read_text()
