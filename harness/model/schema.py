"""Pydantic models of the case language (docs/case-language.md is the prose version).

Every model forbids unknown fields, so a typo in a case file is an error that names the field rather
than a silently ignored option. Steps are single-key mappings (``- send: {...}``); the Step model
checks that exactly one kind is given, which yields a clearer message than a pydantic union would.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

from harness.wire.frames import OPCODE_NAMES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_UNITS = {"": 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}
_SIZE = re.compile(r"^\s*(\d+)\s*(Ki|Mi|Gi)?\s*$")


def _byte_size(value: Any) -> Any:
    """``64Mi``, ``16Ki``, ``1Gi`` or a plain integer: sizes read like the RFC's powers of two."""
    if isinstance(value, str):
        found = _SIZE.match(value)
        if not found:
            raise ValueError(f"a size is an integer or a number with Ki, Mi or Gi (e.g. 64Mi), not {value!r}")
        return int(found.group(1)) * _UNITS[found.group(2) or ""]
    return value


ByteSize = Annotated[int, BeforeValidator(_byte_size), Field(ge=0)]


class Fill(_Strict):
    size: Annotated[int, Field(ge=0)]
    pattern: str | None = None
    pattern_hex: str | None = None


class RandomBytes(_Strict):
    size: Annotated[int, Field(ge=0)]
    seed: int = 0


class Repeated(_Strict):
    """``unit`` written ``count`` times between ``prefix`` and ``suffix``: a pathological header value
    (a run of 8000 spaces between two tokens, an unclosed quoted string of backslashes) in one line."""

    unit: Annotated[str, Field(min_length=1)]
    count: Annotated[int, Field(ge=0, le=16 * 1024 * 1024)]
    prefix: str = ""
    suffix: str = ""


PAYLOAD_SOURCES = ("text", "hex", "fill", "random", "file", "repeat")


class PayloadObj(_Strict):
    """Exactly one source of bytes."""

    text: str | None = None
    hex: str | None = None
    fill: Fill | None = None
    random: RandomBytes | None = None
    file: str | None = None
    repeat: Repeated | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PayloadObj:
        given = [k for k in PAYLOAD_SOURCES if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a payload takes exactly one of {', '.join(PAYLOAD_SOURCES)} (got {given})")
        if self.hex is not None:
            try:
                bytes.fromhex(self.hex)
            except ValueError as exc:
                raise ValueError(f"hex payload is not valid hex: {exc}") from exc
        return self


Payload = str | PayloadObj


def _opcode(value: Any) -> Any:
    if isinstance(value, str):
        name = value.lower()
        if name not in OPCODE_NAMES:
            raise ValueError(f"unknown opcode name {value!r}; use one of {sorted(OPCODE_NAMES)} or 0..15")
        return OPCODE_NAMES[name]
    return value


class Chopping(_Strict):
    """How bytes go onto the TCP connection: ``chop`` bytes per write, ``delay`` s between writes."""

    chop: Annotated[int, Field(ge=1)] | None = None
    delay: Annotated[float, Field(ge=0)] = 0.0


class _Step(_Strict):
    """A step of a script. ``kind`` is the tag of the union (the single key of ``- send: {...}``)."""

    kind: str

    @property
    def body(self) -> _Step:
        """The step itself (its fields are the body of the YAML mapping)."""
        return self


class SendFrame(Chopping, _Step):
    kind: Literal["send"] = "send"
    opcode: Annotated[int, Field(ge=0, le=15)]
    payload: Payload = ""
    fin: bool = True
    rsv: Annotated[int, Field(ge=0, le=7)] = 0
    mask: bool | None = None
    mask_key: str | None = None
    length: Annotated[int, Field(ge=0)] | None = None
    length_bits: Literal[7, 16, 64] | None = None
    # permessage-deflate (RFC 7692): the frame's payload is ``payload`` in this encoding (the peer's
    # compressor: ``compress``; or a crafted form: stored, bfinal, corrupt-*, empty-*, far-N, ...,
    # see harness.peer.compression.FORMS). RSV1 is whatever ``rsv`` says, so a case can also put
    # DEFLATE data on a control frame or under RSV1 clear. A data frame with FIN is tracked as the
    # message the payload inflates to.
    deflate: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")] | None = None

    _normalise_opcode = field_validator("opcode", mode="before")(_opcode)


class SendMessage(Chopping, _Step):
    """One data message split into fragments: a count (equal parts) or explicit sizes.

    ``compress`` (RFC 7692): ``true`` compresses the whole message with the session's compressor and
    cuts the *compressed* payload into the fragments (Autobahn's autoFragmentSize); ``per-frame``
    cuts the message first and sync-flushes each part into its own frame. RSV1 goes on the first
    frame (plus ``rsv``); ``continuation_rsv`` sets RSV bits on the other frames (illegal, §6.1).
    ``between`` are steps (control frames) written between every two fragments.
    """

    kind: Literal["message"] = "message"
    opcode: Annotated[int, Field(ge=0, le=15)] = 1
    payload: Payload = ""
    fragments: Annotated[int, Field(ge=1)] | list[Annotated[int, Field(ge=0)]] = 1
    fragment_size: Annotated[int, Field(ge=1)] | None = None
    rsv: Annotated[int, Field(ge=0, le=7)] = 0
    mask: bool | None = None
    compress: bool | Literal["per-frame"] = False
    continuation_rsv: Annotated[int, Field(ge=0, le=7)] = 0
    between: list[Step] = []
    # The payload repeated and cut to this size: bytes, or ``max_message_size[+-N]`` (the target's
    # declared policy, like ``flood.size``), for a compressed message just over the declared limit.
    size: Annotated[int, Field(ge=0)] | str | None = None

    _normalise_opcode = field_validator("opcode", mode="before")(_opcode)


class Series(_Step):
    """Autobahn 12.x/13.x traffic: ``count`` messages, one in flight, each echo awaited before the next.

    Message ``k`` is the next ``size`` units of ``file`` (under the data folder) read cyclically from
    its start: octets for binary (opcode 2), Unicode code points for text (opcode 1, the slice
    re-encoded as UTF-8). With ``compress`` each message is compressed whole and the compressed
    payload cut into frames of ``fragment_size`` octets (0: one frame), Autobahn's autoFragmentSize.
    A file that is not present makes the case UNIMPLEMENTED (third-party test data is not shipped).
    """

    kind: Literal["series"] = "series"
    file: str
    size: Annotated[int, Field(ge=1)]
    count: Annotated[int, Field(ge=1)]
    opcode: Annotated[int, Field(ge=1, le=2)] = 1
    fragment_size: Annotated[int, Field(ge=0)] = 0
    compress: bool = True

    _normalise_opcode = field_validator("opcode", mode="before")(_opcode)


class Control(Chopping, _Step):
    payload: Payload = ""
    fin: bool = True
    rsv: Annotated[int, Field(ge=0, le=7)] = 0


class Ping(Control):
    kind: Literal["ping"] = "ping"


class Pong(Control):
    kind: Literal["pong"] = "pong"


class CloseSpec(Chopping, _Step):
    """A close frame: ``code`` (+ ``reason``), or a raw ``payload`` body; neither means empty body."""

    kind: Literal["close"] = "close"
    code: Annotated[int, Field(ge=0, le=65535)] | None = None
    reason: Payload = ""
    payload: Payload | None = None
    rsv: Annotated[int, Field(ge=0, le=7)] = 0


class WriteRaw(Chopping, _Step):
    kind: Literal["write"] = "write"
    payload: Payload


class Sleep(_Step):
    """``- sleep: SECONDS``: a prescribed pause."""

    kind: Literal["sleep"] = "sleep"
    seconds: Annotated[float, Field(ge=0)]


class WaitSpec(_Step):
    """Block until the target has sent this much, or closed, or ``timeout`` passed.

    ``echoed: true`` waits until every complete message sent so far has come back and every ping
    has been answered: the pacing of "send, wait for the echo, send the next" inside a ``repeat``.
    ``required: true`` makes an unmet wait a FAIL; ``open: true`` waits the whole ``timeout`` and
    requires the target to keep the connection open meanwhile (it had only valid input so far).
    """

    kind: Literal["wait"] = "wait"
    messages: Annotated[int, Field(ge=0)] | None = None
    pongs: Annotated[int, Field(ge=0)] | None = None
    echoed: bool = False
    close: bool = False
    open: bool = False
    required: bool = False
    timeout: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _coherent(self) -> WaitSpec:
        if self.open and (self.close or self.timeout is None):
            raise ValueError("open: true needs a timeout (how long the target must stay open) and no close")
        return self


POLICY_SIZE = r"^max_message_size([+-][0-9]+)?$"


class FloodSpec(_Step):
    """Many equal messages as fast as the socket accepts them (the backpressure family's load).

    ``count`` messages, or as many as fit in ``bytes`` of payload, of ``size`` bytes each (or
    ``max_message_size``, ``max_message_size+1``: the target's declared policy, which the case must
    then require). Each message is unique (a counter in its last 16 bytes) so loss and reordering show
    in the echoes. When the socket accepts nothing for ``stall_after`` seconds the flood stops and
    records a stall: the target stopped reading. Frames are whole in the write buffer, so every
    message counted as sent reaches the target once it reads again.
    """

    kind: Literal["flood"] = "flood"
    count: Annotated[int, Field(ge=1)] | None = None
    bytes: ByteSize | None = None
    size: ByteSize | Annotated[str, Field(pattern=POLICY_SIZE)] = 65536
    opcode: Literal[1, 2] = 2
    stall_after: Annotated[float, Field(gt=0, le=30)] = 1.0

    _normalise_opcode = field_validator("opcode", mode="before")(_opcode)

    @model_validator(mode="after")
    def _amount(self) -> FloodSpec:
        if (self.count is None) == (self.bytes is None):
            raise ValueError("a flood takes exactly one of count (messages) or bytes (a payload budget)")
        if self.bytes is not None and isinstance(self.size, int) and self.size == 0:
            raise ValueError("a byte budget needs a message size above 0")
        return self

    @property
    def policy_sized(self) -> bool:
        return isinstance(self.size, str)


class PauseReading(_Step):
    """``- pause_reading:`` stops the peer's reads (no fields)."""

    kind: Literal["pause_reading"] = "pause_reading"


class ResumeReading(_Step):
    """``- resume_reading:`` reads again (no fields)."""

    kind: Literal["resume_reading"] = "resume_reading"


class ProbeSpec(_Step):
    """A second connection to the same server target, ``after`` seconds into the script.

    It runs beside the script (the script does not wait for it): it connects, handshakes, sends one
    message and must get its echo within ``timeout`` s, else the case FAILs. It shows whether one
    stalled connection (a slowloris header) blocks the server for everybody else (§10.4).
    """

    kind: Literal["probe"] = "probe"
    after: Annotated[float, Field(ge=0, le=60)] = 0.0
    payload: Payload = "probe"
    opcode: Literal[1, 2] = 1
    timeout: Annotated[float, Field(gt=0, le=60)] = 5.0

    _normalise_opcode = field_validator("opcode", mode="before")(_opcode)


class Batch(Chopping, _Step):
    """Steps whose bytes are written as one buffer (one TCP write, or ``chop``-sized writes)."""

    kind: Literal["batch"] = "batch"
    steps: list[Step]

    @model_validator(mode="after")
    def _only_writes(self) -> Batch:
        for step in self.steps:
            if not isinstance(step, WRITING_STEPS):
                raise ValueError(
                    f"a batch holds only steps that write ({', '.join(WRITING_KINDS)}), not {step.kind}"
                )
        return self


class Disconnect(_Step):
    """Close TCP without a close frame: an abnormal closure (§7.1.5: the code is then 1006)."""

    kind: Literal["disconnect"] = "disconnect"


class Repeat(_Step):
    kind: Literal["repeat"] = "repeat"
    count: Annotated[int, Field(ge=1)]
    steps: list[Step]


_HEADER_NAME = re.compile(r"^(?:[!#$%&'*+.^_`|~0-9A-Za-z-]|\{i\})+$")  # a token (RFC 7230 §3.2.6), {i}


class HeaderFields(_Strict):
    """``count`` generated header fields: the shape of a request with 10 000 of them in one YAML line.

    ``name`` is a pattern in which ``{i}`` becomes 1..count (without it the same field repeats);
    ``value`` is a string (``{i}`` allowed) or a payload spec, or ``value_size`` bytes of ``v``;
    ``position`` puts them right after the request line (``before`` the Host and WebSocket headers)
    or after every other header (``after``).
    """

    count: Annotated[int, Field(ge=1, le=200_000)]
    name: str = "X-Wsconform-{i}"
    value: str | PayloadObj | None = None
    value_size: Annotated[int, Field(ge=0, le=1024 * 1024)] | None = None
    position: Literal["before", "after"] = "after"

    @field_validator("name")
    @classmethod
    def _token(cls, name: str) -> str:
        if not _HEADER_NAME.match(name):
            raise ValueError(
                f"a header name pattern is a token (RFC 7230 §3.2.6) in which {{i}} counts 1..count, "
                f"not {name!r}"
            )
        return name

    @model_validator(mode="after")
    def _one_value(self) -> HeaderFields:
        if self.value is not None and self.value_size is not None:
            raise ValueError("give a value or a value_size, not both")
        return self

    def lines(self, value_of: Callable[[PayloadObj], str]) -> list[tuple[str, str]]:
        """The (name, value) pairs; ``value_of`` resolves a payload spec to header text."""
        if self.value_size is not None:
            constant = "v" * self.value_size
        elif isinstance(self.value, PayloadObj):
            constant = value_of(self.value)
        else:
            constant = self.value if self.value is not None else "x"
        numbered_name, numbered_value = "{i}" in self.name, "{i}" in constant
        out = []
        for i in range(1, self.count + 1):
            name = self.name.replace("{i}", str(i)) if numbered_name else self.name
            out.append((name, constant.replace("{i}", str(i)) if numbered_value else constant))
        return out


class HandshakeSpec(Chopping, _Step):
    """Overrides for the opening handshake request (the default one is always valid).

    ``add_headers`` appends lines after the defaults (so a default name there is a duplicate; remove
    it first to replace it); a value may be a payload spec, to build an 8 KiB header. ``fields``
    generates many header fields before or after the WebSocket headers. ``with_frames`` are written
    in the same TCP write as the request, before any response is read. ``probe`` opens a second
    connection while this request is being processed (it must get its echo). Server-role cases
    only, and only as the first step.
    """

    kind: Literal["handshake"] = "handshake"
    path: str = "/"
    method: str = "GET"
    http_version: str = "HTTP/1.1"
    key: str | None = None
    version: str | None = None
    protocols: list[str] | None = None
    extensions: list[str] | None = None
    add_headers: list[tuple[str, str | PayloadObj]] = []
    remove_headers: list[str] = []
    raw: Payload | None = None
    with_frames: list[Step] = []
    fields: list[HeaderFields] = []
    probe: ProbeSpec | None = None


class ResponseSpec(Chopping, _Step):
    """The peer's handshake response when it plays the server (client-role cases, first step only).

    Without it the response is a correct 101 selecting the first offered subprotocol. ``accept`` is
    ``correct``, ``wrong``, ``missing``, ``duplicate`` or a literal value; ``protocol`` is
    ``first-offered``, null (no header) or a literal value; ``upgrade``/``connection`` null omit the
    header; ``raw`` replaces the whole response; ``delay`` (without ``chop``) waits that many seconds
    before answering. ``name_case`` writes every header name in lower or upper case (names are
    case-insensitive, RFC 7230 §3.2: a client must accept any case). ``extensions`` is the literal
    Sec-WebSocket-Extensions value, or ``accept`` (optionally ``accept; param; ...``): answer the
    client's first valid permessage-deflate offer with what it makes mandatory (plus those params);
    a permessage-deflate element in the response is the agreement the peer then compresses and
    inflates under (RFC 7692).
    """

    kind: Literal["response"] = "response"
    name_case: Literal["canonical", "lower", "upper"] = "canonical"
    status: Annotated[int, Field(ge=100, le=599)] = 101
    reason: str = "Switching Protocols"
    accept: str = "correct"
    upgrade: str | None = "websocket"
    connection: str | None = "Upgrade"
    protocol: str | None = "first-offered"
    extensions: str | None = None
    add_headers: list[tuple[str, str | PayloadObj]] = []
    remove_headers: list[str] = []
    raw: Payload | None = None
    with_frames: list[Step] = []
    fields: list[HeaderFields] = []


STEP_TYPES: tuple[type[_Step], ...] = (
    HandshakeSpec, ResponseSpec, SendFrame, SendMessage, WriteRaw, Ping, Pong, CloseSpec, Sleep,
    WaitSpec, Batch, Repeat, Disconnect, FloodSpec, PauseReading, ResumeReading, ProbeSpec, Series,
)  # fmt: skip
STEP_KINDS: tuple[str, ...] = tuple(t.model_fields["kind"].default for t in STEP_TYPES)
WRITING_STEPS = (SendFrame, SendMessage, WriteRaw, Ping, Pong, CloseSpec, Batch, Repeat)
WRITING_KINDS: tuple[str, ...] = tuple(t.model_fields["kind"].default for t in WRITING_STEPS)
_EMPTY_OK = ("ping", "pong", "close", "handshake", "response", "disconnect", "pause_reading",
             "resume_reading", "probe")  # fmt: skip


def _tag_step(data: Any) -> Any:
    """``{send: {...}}`` (the YAML form) to ``{kind: send, ...}`` (the tagged union's form)."""
    if isinstance(data, _Step):
        return data
    if not isinstance(data, dict):
        raise ValueError(f"a step is a mapping with one key, one of {', '.join(STEP_KINDS)}")
    if "kind" in data and len(data) != 1:
        return data
    if len(data) != 1:
        raise ValueError(f"a step has exactly one key, one of {', '.join(STEP_KINDS)}; got {list(data)}")
    ((kind, value),) = data.items()
    if kind not in STEP_KINDS:
        raise ValueError(f"unknown step kind {kind!r}; a step has one key, one of {', '.join(STEP_KINDS)}")
    if value is None and kind in _EMPTY_OK:
        value = {}
    if kind == "write" and not (isinstance(value, dict) and "payload" in value):
        value = {"payload": value}  # `- write: {hex: ...}` is the payload itself
    elif kind in ("ping", "pong") and not isinstance(value, dict):
        value = {"payload": value}
    elif kind == "sleep" and not isinstance(value, dict):
        value = {"seconds": value}
    if not isinstance(value, dict):
        raise ValueError(f"the body of a {kind} step is a mapping of its fields")
    return {**value, "kind": kind}


Step = Annotated[
    Annotated[
        HandshakeSpec | ResponseSpec | SendFrame | SendMessage | WriteRaw | Ping | Pong | CloseSpec
        | Sleep | WaitSpec | Batch | Repeat | Disconnect | FloodSpec | PauseReading | ResumeReading
        | ProbeSpec | Series,
        Field(discriminator="kind"),
    ],
    BeforeValidator(_tag_step),
]


Count = Annotated[int, Field(ge=0)] | Literal["all"]


class ExpectedMessage(_Strict):
    opcode: Annotated[int, Field(ge=0, le=15)] = 1
    payload: Payload = ""

    _normalise_opcode = field_validator("opcode", mode="before")(_opcode)


StatusSpec = Annotated[int, Field(ge=100, le=599)] | Annotated[str, Field(pattern=r"^[1-5]xx$")]


class HandshakeExpect(_Strict):
    """What the server's handshake response must be.

    ``status`` lists acceptable codes ("4xx" for a class); ``non_strict_status`` codes that are allowed
    but not what the RFC recommends. ``headers`` maps a name to tokens the response must carry (a
    comma-separated list, compared case-insensitively, others may be present too), or to null when
    the header must be absent.
    ``protocol`` is the subprotocol a 101 must select (null: none), ``non_strict_protocols`` other
    selections the RFC allows but the adapter contract does not prefer; ``extensions`` is ``none``
    (no extension may be accepted) or ``legal`` (anything accepted must answer an offer legally).
    ``drop`` grades a server that closes TCP without any response.
    """

    status: list[StatusSpec] = [101]
    non_strict_status: list[StatusSpec] = []
    headers: dict[str, str | None] = {}
    protocol: str | None = None
    non_strict_protocols: list[str | None] = []
    extensions: Literal["none", "legal"] | None = None
    drop: Literal["fail", "non-strict", "pass"] = "fail"

    @property
    def accepts_101(self) -> bool:
        return any(s in (101, "1xx") for s in self.status)


POLICY_BOUND = r"^\s*[0-9]+\s*(Ki|Mi|Gi)?\s*\+\s*max_message_size\s*(/\s*[0-9]+\s*)?$"
PolicyBound = Annotated[str, Field(pattern=POLICY_BOUND)]


def resolve_bound(bound: int | str | None, policies: dict[str, Any]) -> int | None:
    """A bound, or ``16Mi + max_message_size[ / N]`` against the target's declared policy.

    A target that declares no maximum is held to the fixed part alone: it promised no limit, and
    a message far below any limit must not cost more than the allowance either.
    """
    if bound is None or isinstance(bound, int):
        return bound
    base, _, rest = bound.partition("+")
    limit = policies.get("max_message_size")
    _, _, divisor = rest.partition("/")
    scaled = limit // int(divisor.strip() or 1) if isinstance(limit, int) else 0
    return int(_byte_size(base)) + scaled


class ResourcesExpect(_Strict):
    """Bounds on what the target absorbs under load (backpressure and limits cases).

    With it the target's memory (RSS of its process tree) is sampled every ``interval`` s while the
    case runs, the target is restarted first so the baseline is clean, and the figures land in the
    result. ``max_growth`` bounds the peak RSS growth over the baseline taken when the load starts;
    ``max_held`` bounds the peak of payload the target process holds itself: bytes in flight
    (accepted by the peer's kernel, not come back yet) minus what sits in the kernel queues of both
    sockets; ``max_absorbed`` bounds bytes in flight, kernel queues included. Beyond a bound the
    outcome is ``unbounded``: INFORMATIONAL by default, since RFC 6455 sets no number (§10.4 only
    asks implementations to protect themselves), or FAIL where a case says so.
    """

    max_growth: ByteSize | PolicyBound | None = None
    max_held: ByteSize | PolicyBound | None = None
    max_absorbed: ByteSize | PolicyBound | None = None
    unbounded: Literal["informational", "fail"] = "informational"
    interval: Annotated[float, Field(ge=0.01, le=1.0)] = 0.05


class Expect(_Strict):
    """The end state. Defaults: every message and ping echoed, then a clean closing handshake.

    ``respond_within`` bounds the time from the end of the peer's handshake message (the request,
    or the response for a client target) to the target's first byte or its drop: a parser that
    backtracks on a pathological header answers in seconds where a correct one takes milliseconds.
    """

    echo: Count | None = None
    messages: list[ExpectedMessage] | None = None
    pongs: Count | None = None
    fail: bool | list[Annotated[int, Field(ge=0, le=65535)]] | None = None
    fail_fast: bool = False
    close: list[Annotated[int, Field(ge=0, le=65535)]] | None = None
    grade: Literal["strict", "informational"] = "strict"
    handshake: HandshakeExpect | None = None
    api: ApiExpect | None = None
    too_big: Literal["fail", "informational"] = "fail"
    stayed_open: Literal["fail", "informational"] = "fail"
    resources: ResourcesExpect | None = None
    respond_within: Annotated[float, Field(gt=0, le=60)] | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Expect:
        if self.echo is not None and self.messages is not None:
            raise ValueError("give either echo or messages, not both")
        if self.fail_fast and not self.fail:
            raise ValueError("fail_fast needs fail")
        if self.fail and self.close is not None:
            raise ValueError(
                "close lists the codes of a normal closing handshake; with fail use fail: [codes]"
            )
        return self

    def counts(self, sent_messages: int, pings_sent: int) -> tuple[int, int]:
        """How many echoes and pongs the peer waits for before closing, given what it sent.

        By default every message and ping is answered; a case that expects the target to fail waits
        for none unless it says ``echo``/``pongs`` (the valid traffic before the invalid frame).
        """
        failing = self.fail_codes is not None
        if self.messages is not None:
            msgs = len(self.messages)
        elif self.echo == "all" or (self.echo is None and not failing):
            msgs = sent_messages
        else:
            msgs = int(self.echo or 0)
        if self.pongs == "all" or (self.pongs is None and not failing):
            pongs = pings_sent
        else:
            pongs = int(self.pongs or 0)
        return msgs, pongs

    @property
    def fail_codes(self) -> list[int] | None:
        """Codes that make a failure PASS; [] means any code; None means no failure expected."""
        if self.fail is None or self.fail is False:
            return None
        return [] if self.fail is True else list(self.fail)


class ApiExpect(_Strict):
    """What a client target's API must have reported (its adapter's JSON events).

    ``open``: whether an open event must (true) or must not (false) appear; ``close_code`` and
    ``close_reason``: the close event's values; ``clean``: its wasClean; ``throws``: the name of the
    exception (a DOMException name for browsers) an API call of the case's scenario must throw,
    reported by the adapter as an ``exception`` event. On top of these, every client
    case checks the WebSocket API rules that hold always: an error event precedes the close event of a
    failed connection, whose code is 1006 and wasClean false.
    """

    open: bool | None = None
    close_code: int | None = None
    close_reason: str | None = None
    clean: bool | None = None
    protocol: str | None = None
    throws: str | None = None


class ClientOptions(_Strict):
    """How the harness starts a client target for this case.

    ``scenario`` asks the adapter for something other than "connect, echo, close" (an API call a
    server cannot see, such as ``close(999)``, or a slow consumer); it reaches the adapter as the
    environment variable ``WSCONFORM_SCENARIO`` (``delay_ms`` as ``WSCONFORM_DELAY_MS``), and an
    adapter that does not know the scenario exits 127, which makes the case UNIMPLEMENTED.
    """

    protocols: list[str] = []
    scenario: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")] | None = None
    delay_ms: Annotated[int, Field(ge=0, le=60_000)] = 0


class Requirements(_Strict):
    """Target policies a case depends on; a target without them gets UNIMPLEMENTED, not FAIL."""

    subprotocols: list[str] = []
    permessage_deflate: bool = False
    max_message_size: bool = False


class CaseModel(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")]
    title: str
    spec: str
    tags: list[str] = []
    role: Literal["server", "client", "both"] = "server"
    binding: Literal["rfc", "whatwg"] = "rfc"
    autobahn: str | None = None
    timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    params: dict[str, list[Any]] | list[dict[str, Any]] | None = None
    requires: Requirements = Requirements()
    client: ClientOptions = ClientOptions()
    steps: list[Step] = []
    expect: Expect = Expect()


class Defaults(_Strict):
    spec: str | None = None
    tags: list[str] = []
    role: Literal["server", "client", "both"] | None = None
    binding: Literal["rfc", "whatwg"] | None = None
    timeout: Annotated[float, Field(gt=0, le=600)] | None = None
    expect: dict[str, Any] = {}


class CaseFileModel(_Strict):
    """A family file: optional ``defaults`` merged into each entry of ``cases``."""

    defaults: Defaults = Defaults()
    cases: list[dict[str, Any]]


HandshakeSpec.model_rebuild()
SendMessage.model_rebuild()
STEP: TypeAdapter[Step] = TypeAdapter(Step)  # one step on its own (tests, tools)
ResponseSpec.model_rebuild()
Batch.model_rebuild()
Repeat.model_rebuild()


def fragment_sizes(total: int, fragments: int | list[int], fragment_size: int | None) -> list[int]:
    """The sizes a message of ``total`` bytes is cut into: equal parts, fixed-size parts, or the sizes
    given (the rest in one more fragment); the loader checks given sizes against the payload."""
    if fragment_size is not None:
        if total == 0:
            return [0]
        return [min(fragment_size, total - start) for start in range(0, total, fragment_size)]
    if isinstance(fragments, list):
        sizes = list(fragments)
        rest = total - sum(sizes)
        if rest < 0:
            raise ValueError(f"fragment sizes {sizes} exceed the payload of {total} bytes")
        if rest:
            sizes.append(rest)
        return sizes or [0]
    base, extra = divmod(total, fragments)
    return [base + (1 if i < extra else 0) for i in range(fragments)]
