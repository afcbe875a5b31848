"""Run a case's steps on an open connection.

Each step turns into bytes (through ``wire.frames``) and one write, or several when chopped; a batch
concatenates its steps into one buffer so "all frames in one TCP write" cases put exactly that on the
wire. The runner keeps the peer's own view of what it sent (complete data messages, ping payloads),
which is what ``expect: echo`` and ``pongs`` compare against.
Once the target has failed the connection the remaining steps are skipped and counted: writing into a
connection the target closed would only produce resets that hide what happened.

Load steps (``flood``, ``pause_reading``, ``resume_reading``, ``probe``) take what they need beyond
the wire from the case context the engine sets (``harness.peer.context``): the target's policies and
the sampler of its memory. Reading is always resumed and probes always collected when the script
ends, so the closing handshake and the verdict never depend on a case remembering to.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
from functools import singledispatchmethod
from pathlib import Path
from typing import Any

from harness.model.payloads import resolve
from harness.model.schema import (
    Batch,
    CloseSpec,
    Control,
    Disconnect,
    Expect,
    FloodSpec,
    HandshakeSpec,
    PauseReading,
    Payload,
    Ping,
    Pong,
    ProbeSpec,
    Repeat,
    ResponseSpec,
    ResumeReading,
    SendFrame,
    SendMessage,
    Series,
    Sleep,
    Step,
    WaitSpec,
    WriteRaw,
    fragment_sizes,
)
from harness.observed import Observed, parse_close
from harness.peer import compression, context
from harness.peer.connection import PeerConnection
from harness.peer.flood import run_flood
from harness.peer.probe import probe_echo
from harness.peer.trace import PREVIEW
from harness.wire.frames import Frame, Opcode, apply_mask, build_fragments, build_frame, close_payload

BULK_REPEAT = 1000  # from this many equal continuation frames on, a repeat is built in one pass


def _cut(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` cut into consecutive pieces of the given sizes."""
    out, offset = [], 0
    for size in sizes:
        out.append(data[offset : offset + size])
        offset += size
    return out


def _cyclic(units: bytes | str, start: int, size: int) -> bytes:
    """``size`` units from ``start``, wrapping to the beginning (Autobahn 12.x/13.x messages)."""
    if isinstance(units, str):
        end = start + size
        text = units[start:end] if end <= len(units) else units[start:] + units[: end - len(units)]
        return text.encode("utf-8")
    end = start + size
    return units[start:end] if end <= len(units) else units[start:] + units[: end - len(units)]


def overran(expect: Expect, obs: Observed, *, final: bool = False) -> bool:
    """True once a target that must fail the connection has answered more than the case allows.

    The verdict is then FAIL whatever follows (``verdict.wire``: an extra message or pong is a problem
    that no later close excuses), so a wait for the target's close has nothing left to learn: a
    target that echoes a 64 MiB message it had to refuse costs one echo, not the case's whole
    budget. Mid-script, fixed counts only: with ``echo: all`` a later send could still make an answer
    due; ``final`` (everything is sent: ``finish``) counts those too.
    """
    if expect.fail_codes is None:
        return False
    if not final and (expect.echo == "all" or expect.pongs == "all"):
        return False
    msgs, pongs = expect.counts(len(obs.sent_messages), len(obs.pings_sent))
    return len(obs.messages) > msgs or len(obs.pongs) > pongs


class ScriptRunner:
    def __init__(
        self,
        conn: PeerConnection,
        *,
        seed: str,
        data_dir: Path,
        timeout: float,
        expect: Expect,
    ) -> None:
        self.conn = conn
        self.expect = expect
        self.rng = random.Random(seed)
        self.data_dir = data_dir
        self.timeout = timeout
        self._open_message: tuple[int, hashlib._Hash, int] | None = None
        self.checkpoint_seen = False
        self._payloads: dict[int, bytes] = {}
        self._sized_cache: dict[tuple[int, int], bytes] = {}
        self.context = context.current() or context.CaseContext()
        self.context.attach(conn)
        self._probes: list[asyncio.Task[str | None]] = []

    # -- bytes for each kind of step ---------------------------------------------------------------

    def _bytes(self, payload: Payload | None) -> bytes:
        """Resolve a payload spec once per spec object: a ``repeat`` of 65 536 frames reuses one."""
        key = id(payload)
        cached = self._payloads.get(key)
        if cached is None:
            cached = self._payloads[key] = resolve(payload, self.data_dir)
        return cached

    def _mask(self, explicit: bool | None) -> bool:
        return self.conn.we_mask if explicit is None else explicit

    def _key(self, hex_key: str | None) -> bytes:
        return bytes.fromhex(hex_key) if hex_key else self.rng.randbytes(4)

    def _frame(
        self,
        opcode: int,
        payload: bytes,
        *,
        fin: bool = True,
        rsv: int = 0,
        mask: bool | None = None,
        mask_key: str | None = None,
        length: int | None = None,
        length_bits: int | None = None,
        track: bool = True,
    ) -> bytes:
        masked = self._mask(mask)
        data = build_frame(
            opcode,
            payload,
            fin=fin,
            rsv=rsv,
            mask=masked,
            mask_key=self._key(mask_key),
            length=length,
            length_bits=length_bits,
        )
        header = len(data) - len(payload) - (4 if masked else 0)
        self.conn.trace.frame(
            "out",
            Frame(fin, rsv, opcode, masked, length if length is not None else len(payload), payload, header),
        )
        if track:
            self._track(opcode, payload, fin)
        return data

    def _track(self, opcode: int, payload: bytes, fin: bool) -> None:
        """Record complete data messages and pings as the target should see them."""
        obs = self.conn.obs
        if obs.close_sent is not None:
            obs.sent_after_close += 1  # a rule the peer breaks on purpose (§5.5.1); the target may fail
            return  # after our close the target must not answer anything (§5.5.1)
        if opcode == Opcode.PING:
            obs.pings_sent.append(payload)
        elif opcode == Opcode.CLOSE and obs.close_sent is None:
            obs.close_sent = parse_close(payload, self.conn.trace.now())
        elif opcode in (Opcode.TEXT, Opcode.BINARY):
            self.conn.payload_written += len(payload)
            self._open_message = (opcode, hashlib.sha256(payload), len(payload))
        elif opcode == Opcode.CONTINUATION and self._open_message is not None:
            op, digest, size = self._open_message
            digest.update(payload)
            self.conn.payload_written += len(payload)
            self._open_message = (op, digest, size + len(payload))
        else:
            return
        if fin and self._open_message is not None and opcode in (0, 1, 2):
            op, digest, size = self._open_message
            obs.sent_messages.append((op, size, digest.hexdigest()))
            self._open_message = None

    # One encoder per writing step kind (singledispatch on the step's type: the tagged union's tag).

    @singledispatchmethod
    def encode(self, step: Any) -> bytes:
        """Bytes of a step that writes; raises for steps that do not (wait, sleep, flood...)."""
        raise ValueError(f"a {getattr(step, 'kind', type(step).__name__)} step cannot be part of a batch")

    @encode.register
    def _(self, step: SendFrame) -> bytes:
        payload = self._bytes(step.payload)
        data_message = step.opcode in (Opcode.TEXT, Opcode.BINARY) and step.fin
        if step.deflate is not None and step.deflate.startswith("bomb-"):
            bomb = compression.bomb(int(step.deflate.removeprefix("bomb-")))
            if self.conn.deflate is not None:
                self.conn.deflate.bypassed(bytes(32768))
            self._track_digest(step.opcode, bomb.length, bomb.sha256)
            return self._frame(step.opcode, bomb.payload, fin=True, rsv=step.rsv, mask=step.mask, track=False)
        if step.deflate is not None:
            if not compression.form_known(step.deflate):
                raise ValueError(f"unknown deflate form {step.deflate!r}")
            session = self.conn.deflate
            crafted = compression.crafted(step.deflate, payload, session)
            if session is not None and step.deflate not in ("compress", "plain"):
                session.bypassed(crafted.message)
            if data_message and step.rsv & 4 and step.length is None:
                self._track_message(step.opcode, crafted.message)
                data_message = False
            payload = crafted.payload
        return self._frame(
            step.opcode,
            payload,
            fin=step.fin,
            rsv=step.rsv,
            mask=step.mask,
            mask_key=step.mask_key,
            length=step.length,
            length_bits=step.length_bits,
            track=step.deflate is None or data_message,
        )

    def _track_digest(self, opcode: int, length: int, digest: str) -> None:
        """Record a message known by its length and digest only (a bomb is never held whole)."""
        obs = self.conn.obs
        if obs.close_sent is None:
            self.conn.payload_written += length
            obs.sent_messages.append((opcode, length, digest))

    def _track_message(self, opcode: int, message: bytes) -> None:
        """Record a whole message as sent (the plaintext of a compressed one)."""
        self._track(opcode, message, True)

    def _compressed_parts(self, step: SendMessage, payload: bytes) -> list[bytes]:
        """The frame payloads of a compressed message (``SendMessage.compress``)."""
        session = self.conn.deflate
        if session is None:  # RSV1 without an agreement: a target must fail it (§6, RFC 6455 §5.2)
            compress = compression.unnegotiated_compressor().compress_parts
        else:
            compress = session.compress_parts
        if step.compress == "per-frame":
            return compress(_cut(payload, fragment_sizes(len(payload), step.fragments, step.fragment_size)))
        whole = compress([payload])[0]
        return _cut(whole, fragment_sizes(len(whole), step.fragments, step.fragment_size))

    def _sized(self, payload: bytes, size: int | str | None) -> bytes:
        if size is None:
            return payload
        n = self.context.policy_size(size)
        if not payload:
            raise ValueError("size needs a non-empty payload pattern")
        key = (id(payload), n)
        cached = self._sized_cache.get(key)
        if cached is None:
            cached = self._sized_cache[key] = (payload * (n // len(payload) + 1))[:n]
        return cached

    @encode.register
    def _(self, step: SendMessage) -> bytes:
        return self._message(step, self._sized(self._bytes(step.payload), step.size))

    def _message(self, step: SendMessage, payload: bytes) -> bytes:
        if not (step.compress or step.between or step.continuation_rsv):
            return self._plain_message(step, payload)
        if step.compress:
            parts = self._compressed_parts(step, payload)
            self._track_message(step.opcode, payload)
            first_rsv, rest_rsv, track = step.rsv | 4, step.continuation_rsv, False
        else:
            parts = _cut(payload, fragment_sizes(len(payload), step.fragments, step.fragment_size))
            first_rsv, rest_rsv, track = step.rsv, step.continuation_rsv, True
        out = bytearray()
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if i and step.between:
                out += b"".join(self.encode(s) for s in step.between)
            out += self._frame(
                step.opcode if i == 0 else 0,
                part,
                fin=last,
                rsv=first_rsv if i == 0 else rest_rsv,
                mask=step.mask,
                track=track,
            )
        return bytes(out)

    def _plain_message(self, step: SendMessage, payload: bytes) -> bytes:
        """An uncompressed message with nothing between its fragments: built in one pass."""
        sizes = fragment_sizes(len(payload), step.fragments, step.fragment_size)
        if step.opcode not in (Opcode.TEXT, Opcode.BINARY):
            return self._fragments_one_by_one(step, payload, sizes)
        masked = self._mask(step.mask)
        count = len(sizes)
        # One key per fragment, drawn whether masked or not: the same stream as one ``_key`` per frame.
        keys = self.rng.randbytes(4 * count)
        data = build_fragments(step.opcode, payload, sizes, rsv=step.rsv, keys=keys if masked else None)
        self._trace_fragments(step, payload, sizes, masked)
        obs = self.conn.obs
        if obs.close_sent is not None:
            obs.sent_after_close += count
            return data
        self.conn.payload_written += len(payload)
        obs.sent_messages.append((step.opcode, len(payload), hashlib.sha256(payload).hexdigest()))
        self._open_message = None
        return data

    def _trace_fragments(self, step: SendMessage, payload: bytes, sizes: list[int], masked: bool) -> None:
        """Trace each fragment the trace will keep (``Trace.skip_range``), as ``_frame`` would."""
        trace = self.conn.trace
        count = len(sizes)
        skipped = trace.skip_range(count)
        offsets = [0, *itertools.accumulate(sizes)]
        last = count - 1
        indices = itertools.chain(range(skipped.start), range(skipped.stop, count))
        for i in indices:
            size, offset = sizes[i], offsets[i]
            head = payload[offset : offset + min(size, PREVIEW)]
            op, rsv = (step.opcode, step.rsv) if i == 0 else (0, 0)
            trace.record("out", op, i == last, rsv, masked, size, head, size)

    def _fragments_one_by_one(self, step: SendMessage, payload: bytes, sizes: list[int]) -> bytes:
        """Messages of other opcodes (reserved ones, a bare continuation): each frame on its own, so
        that ``_track`` sees them exactly as it would a sequence of ``send`` steps."""
        out = []
        offset = 0
        for i, size in enumerate(sizes):
            last = i == len(sizes) - 1
            out.append(
                self._frame(
                    step.opcode if i == 0 else 0,
                    payload[offset : offset + size],
                    fin=last,
                    rsv=step.rsv if i == 0 else 0,
                    mask=step.mask,
                )
            )
            offset += size
        return b"".join(out)

    def _control(self, opcode: int, spec: Control) -> bytes:
        return self._frame(opcode, self._bytes(spec.payload), fin=spec.fin, rsv=spec.rsv)

    @encode.register
    def _(self, step: Ping) -> bytes:
        return self._control(Opcode.PING, step)

    @encode.register
    def _(self, step: Pong) -> bytes:
        return self._control(Opcode.PONG, step)

    @encode.register
    def _(self, step: CloseSpec) -> bytes:
        if step.payload is not None:
            body = self._bytes(step.payload)
        else:
            body = close_payload(step.code, self._bytes(step.reason))
        return self._frame(Opcode.CLOSE, body, rsv=step.rsv)

    @encode.register
    def _(self, step: WriteRaw) -> bytes:
        data = self._bytes(step.payload)
        self.conn.trace.note("out", "raw", length=len(data), hex=data[:48].hex())
        return data

    @encode.register
    def _(self, step: Batch) -> bytes:
        return b"".join(self.encode(s) for s in step.steps)

    @encode.register
    def _(self, step: Repeat) -> bytes:
        only = step.steps[0] if len(step.steps) == 1 else None
        if isinstance(only, SendFrame) and step.count >= BULK_REPEAT and self._bulk_ok(only):
            return self._continuations(only, step.count)
        return b"".join(self.encode(s) for _ in range(step.count) for s in step.steps)

    def _bulk_ok(self, spec: SendFrame) -> bool:
        plain = spec.mask_key is None and spec.length is None and spec.length_bits is None
        small = len(self._bytes(spec.payload)) <= 125
        return plain and small and spec.opcode == Opcode.CONTINUATION and not spec.fin

    def _continuations(self, spec: SendFrame, count: int) -> bytes:
        """``count`` equal non-final continuation frames in one pass: a flood of 200 000 empty frames
        costs 0.1 s instead of 4 (each frame still gets its own masking key, §5.3)."""
        payload = self._bytes(spec.payload)
        masked = self._mask(spec.mask)
        header = bytes([spec.rsv << 4, (0x80 if masked else 0) | len(payload)])
        if masked:
            keys = self.rng.randbytes(4 * count)
            frames = (keys[i : i + 4] for i in range(0, 4 * count, 4))
            data = b"".join(header + key + apply_mask(payload, key) for key in frames)
        else:
            data = (header + payload) * count
        self.conn.trace.frame("out", Frame(False, spec.rsv, 0, masked, len(payload), payload, 2))
        self.conn.trace.note("out", "repeated-frames", count=count, length=len(data))
        if self.conn.obs.close_sent is not None:
            self.conn.obs.sent_after_close += count
        elif self._open_message is not None:
            op, digest, size = self._open_message
            digest.update(payload * count)
            self.conn.payload_written += len(payload) * count
            self._open_message = (op, digest, size + len(payload) * count)
        return data

    # -- running -----------------------------------------------------------------------------------

    async def run(self, steps: list[Step]) -> bool:
        """Run steps in order; False when the target ended the connection before the last one."""
        try:
            return await self._run(steps)
        finally:
            if not self.conn.reading:
                self.conn.trace.note("note", "resume-at-end", why="the script ended with reading paused")
                self.conn.resume_reading()
            await self._collect_probes()

    async def _run(self, steps: list[Step]) -> bool:
        for index, step in enumerate(steps):
            if self.conn.obs.target_failed or self.conn.write_failed:
                self.conn.obs.steps_skipped += len(steps) - index
                self.conn.trace.note(
                    "note", "skipped", count=len(steps) - index, why="the target had ended the connection"
                )
                return False
            if not await self.play(step):
                return False
        return True

    # One handler per step kind; a handler returns False when the script must stop there.

    @singledispatchmethod
    async def play(self, step: Any) -> bool:
        """Writing steps: encode, then one write (chopped and delayed as the step says)."""
        data = self.encode(step)
        await self.conn.write(data, chop=step.chop, delay=step.delay, timeout=self.timeout)
        return True

    @play.register
    async def _(self, step: Sleep) -> bool:
        # An upper bound, not a sleep: the next step's check skips the rest once the target failed.
        await self.conn.pause(step.seconds)
        return True

    @play.register
    async def _(self, step: WaitSpec) -> bool:
        await self._wait(step)
        return True

    @play.register
    async def _(self, step: Repeat) -> bool:
        for _ in range(step.count):
            if not await self._run(step.steps):
                return False
        return True

    @play.register
    async def _(self, step: FloodSpec) -> bool:
        await self._flood(step)
        return True

    @play.register
    async def _(self, step: PauseReading) -> bool:
        self.context.mark_load()
        self.conn.pause_reading()
        return True

    @play.register
    async def _(self, step: ResumeReading) -> bool:
        self.conn.resume_reading()
        return True

    @play.register
    async def _(self, step: ProbeSpec) -> bool:
        self._probes.append(asyncio.ensure_future(self._probe(step)))
        return True

    @play.register
    async def _(self, step: Series) -> bool:
        path = self.data_dir / step.file
        if not path.is_file():
            self.conn.obs.unimplemented = (
                f"test data {step.file} is not present in {self.data_dir} (third-party data; "
                "scripts/autobahn-testdata copies it from Autobahn|Testsuite's wheel on PyPI)"
            )
            return False
        obs = self.conn.obs
        raw = path.read_bytes()
        units: bytes | str = raw.decode("utf-8") if step.opcode == Opcode.TEXT else raw
        n = len(units)
        shape = SendMessage.model_construct(
            opcode=step.opcode,
            compress=step.compress,
            fragments=1,
            fragment_size=step.fragment_size or None,
            rsv=0,
            mask=None,
            continuation_rsv=0,
            between=[],
        )
        pointer = 0
        for _ in range(step.count):
            message = _cyclic(units, pointer, step.size)
            pointer = (pointer + step.size) % n
            if not await self.conn.write(self._message(shape, message), timeout=self.timeout):
                return False
            want = len(obs.sent_messages)
            reached = await self.conn.wait_until(
                lambda: obs.target_ended or len(obs.messages) >= want,  # noqa: B023 (awaited here)
                self.conn.remaining(),
            )
            if not reached or obs.target_ended:
                return False
        return True

    @play.register
    async def _(self, step: Disconnect) -> bool:
        self.conn.obs.peer_disconnected = True
        await self.conn.close_tcp()
        return False

    @play.register(HandshakeSpec)
    @play.register(ResponseSpec)
    async def _(self, step: HandshakeSpec | ResponseSpec) -> bool:
        raise ValueError(f"{step.kind} must be the first step (the loader refuses it elsewhere)")

    async def _flood(self, spec: FloodSpec) -> None:
        size = self.context.policy_size(spec.size)
        count = spec.count if spec.count is not None else max(1, (spec.bytes or 0) // max(size, 1))
        self.context.mark_load()
        obs = self.conn.obs

        def record(opcode: int, length: int, digest: str) -> None:
            if obs.close_sent is None:
                obs.sent_messages.append((opcode, length, digest))

        stats = await run_flood(
            self.conn, size=size, opcode=spec.opcode, count=count, stall_after=spec.stall_after, record=record
        )
        self.context.floods.append(stats)

    async def _probe(self, spec: ProbeSpec) -> str | None:
        if self.conn.obs.peer_is_server:
            return "probe opens a second connection to a server target; this target is a client"
        await asyncio.sleep(spec.after)
        peer = self.conn.writer.get_extra_info("peername")
        timeout = min(spec.timeout, self.conn.remaining(0.5))
        self.conn.trace.note("out", "probe", after=spec.after)
        problem = await probe_echo(peer[0], peer[1], self._bytes(spec.payload), spec.opcode, timeout)
        self.conn.trace.note("in", "probe-result", ok=problem is None, problem=problem)
        return problem

    async def _collect_probes(self) -> None:
        """Wait for the probes still running (each bounded by its own timeout) and record failures."""
        for task in self._probes:
            try:
                problem = await task
            except Exception as exc:  # the probe's own failure is the harness's, not the target's
                raise RuntimeError(f"probe failed: {exc!r}") from exc
            if problem:
                self.conn.obs.unmet.append(problem)
        self._probes.clear()

    async def _wait(self, spec: WaitSpec) -> None:
        obs = self.conn.obs
        # One budget per case: an unanswered wait inside a 1000-fold repeat costs it once, not 1000 times.
        timeout = min(spec.timeout if spec.timeout is not None else self.timeout, self.conn.remaining())

        def done() -> bool:
            if spec.close:
                return obs.target_ended or overran(self.expect, obs)
            want_msgs = len(obs.sent_messages) if spec.echoed else spec.messages
            want_pongs = len(obs.pings_sent) if spec.echoed else spec.pongs
            enough_msgs = want_msgs is None or len(obs.messages) >= want_msgs
            enough_pongs = want_pongs is None or len(obs.pongs) >= want_pongs
            return enough_msgs and enough_pongs

        if spec.open:
            await self.conn.wait_until(lambda: obs.target_ended, timeout)
            if obs.target_ended:
                obs.unmet.append(
                    f"the target ended the connection during a {timeout:g} s wait "
                    f"in which only valid input had been sent"
                )
            return
        reached = await self.conn.wait_until(done, timeout)
        self.conn.trace.note(
            "note", "wait", reached=reached, messages=len(obs.messages), pongs=len(obs.pongs)
        )
        if spec.required and not reached:
            obs.unmet.append(
                f"a required wait timed out after {timeout:g} s with {len(obs.messages)} message(s) "
                f"and {len(obs.pongs)} pong(s) received"
            )
        if spec.close and obs.failed_at_checkpoint is None:
            obs.failed_at_checkpoint = obs.target_ended
