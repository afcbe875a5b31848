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
    Sleep,
    Step,
    WaitSpec,
    WriteRaw,
    fragment_sizes,
)
from harness.observed import parse_close
from harness.peer import context
from harness.peer.connection import PeerConnection
from harness.peer.flood import run_flood
from harness.peer.probe import probe_echo
from harness.peer.trace import PREVIEW
from harness.wire.frames import Frame, Opcode, build_fragments, build_frame, close_payload


class ScriptRunner:
    def __init__(self, conn: PeerConnection, *, seed: str, data_dir: Path, timeout: float) -> None:
        self.conn = conn
        self.rng = random.Random(seed)
        self.data_dir = data_dir
        self.timeout = timeout
        self._open_message: tuple[int, hashlib._Hash, int] | None = None
        self.checkpoint_seen = False
        self._payloads: dict[int, bytes] = {}
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
        return self._frame(
            step.opcode,
            self._bytes(step.payload),
            fin=step.fin,
            rsv=step.rsv,
            mask=step.mask,
            mask_key=step.mask_key,
            length=step.length,
            length_bits=step.length_bits,
        )

    @encode.register
    def _(self, step: SendMessage) -> bytes:
        payload = self._bytes(step.payload)
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
        return b"".join(self.encode(s) for _ in range(step.count) for s in step.steps)

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
                return obs.target_ended
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
