"""permessage-deflate on one connection of the peer: the agreement, both codecs, the offer it accepts.

``harness.wire.deflate`` knows how to compress and inflate with given parameters; this module knows
*which* parameters hold on this connection and in which direction. The agreement is read from the
handshake that actually went over the wire: the server's response (peer as client: the target's
response to the case's offer; peer as server: the response the peer itself sent), so a case can
never disagree with its own handshake. What the peer sends is compressed under the half of the
agreement that binds the peer's role, what the target sends is inflated under the other half
(RFC 7692 §7.1: "server_*" parameters govern what the server sends, "client_*" what the client sends).

The crafted payloads (``crafted``) are the deliberately wrong or unusual encodings the cases need;
their names are the case language's ``deflate:`` values.
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from harness.wire import deflate, extensions
from harness.wire.deflate import Compressor, Crafted, Decompressor, DeflateParams, Role

ACCEPT = "accept"  # ResponseSpec.extensions: answer the client's first acceptable offer

FORM_PREFIXES = ("corrupt-", "empty-", "far-")
FORMS = ("compress", "stored", "stored-blocks", "bfinal", "bfinal-unterminated", "tail-kept",
         "context-reference", "plain")  # fmt: skip


def other(role: Role) -> Role:
    return "client" if role == "server" else "server"


@dataclass(slots=True)
class DeflateSession:
    """The permessage-deflate state of one connection: what the peer sends and what it receives."""

    params: DeflateParams
    role: Role  # the peer's role
    max_output: int
    header: str = ""
    compressor: Compressor = field(init=False)
    decompressor: Decompressor = field(init=False)
    sent_history: bytes = b""  # what the peer's compressed messages inflate to (last 32 KiB)

    def __post_init__(self) -> None:
        self.compressor = Compressor(self.params.sent_by(self.role))
        self.decompressor = Decompressor(self.params.sent_by(other(self.role)), max_output=self.max_output)

    @property
    def ours(self) -> deflate.Direction:
        return self.params.sent_by(self.role)

    @property
    def theirs(self) -> deflate.Direction:
        return self.params.sent_by(other(self.role))

    def compress_parts(self, parts: Sequence[bytes]) -> list[bytes]:
        """One message through the session's compressor (one payload per part, ``Compressor``)."""
        out = self.compressor.compress_parts(parts)
        self._remember(b"".join(parts))
        return out

    def bypassed(self, message: bytes) -> None:
        """A compressed message that did not come from the compressor (a crafted form).

        The receiver's window now holds ``message`` while the compressor's stream does not, so the
        compressor starts a new stream: a sender may always refrain from referring back (§7.2.1), a
        stale stream would refer to the wrong bytes.
        """
        self.compressor.reset()
        self._remember(message)

    def _remember(self, message: bytes) -> None:
        if self.ours.no_context_takeover:
            self.sent_history = message[-deflate.MAX_WINDOW :]
        else:
            self.sent_history = (self.sent_history + message)[-deflate.MAX_WINDOW :]

    def describe(self) -> str:
        p = self.params
        return (
            f"server_max_window_bits={p.server_max_window_bits} "
            f"client_max_window_bits={p.client_max_window_bits}"
            f"{' server_no_context_takeover' if p.server_no_context_takeover else ''}"
            f"{' client_no_context_takeover' if p.client_no_context_takeover else ''}"
        )


def unnegotiated_compressor() -> Compressor:
    """A compressor for DEFLATE data sent although nothing was agreed (RSV1 without negotiation)."""
    return Compressor(deflate.Direction("client", 15, True))


def session_from_response(
    response_values: list[str], offer_values: list[str], role: Role, max_output: int
) -> DeflateSession | None:
    """The session a 101 response establishes, or None when permessage-deflate was not accepted.

    The response has already been checked against the offers (``handshake_rules``), so a
    permessage-deflate element here is a legal answer; an unusable one raises ValueError.
    """
    accepted = [e for e in extensions.parse(response_values) if e.name == extensions.PMD]
    if not accepted:
        return None
    offers = [e for e in extensions.parse(offer_values) if e.name == extensions.PMD]
    params = DeflateParams.from_response(accepted[0], offers)
    header = next((v for v in response_values if extensions.PMD in v.lower()), "")
    return DeflateSession(params, role, max_output, header)


def accept_offer(offer_values: list[str], extra: str = "") -> str | None:
    """The response to the client's first valid permessage-deflate offer, or None (decline).

    What the offer makes mandatory is answered (§7.1.1.1: server_no_context_takeover offered must be
    in the response; §7.1.2.1: server_max_window_bits=N offered is answered with N), nothing more;
    ``extra`` parameters (``client_max_window_bits=9``...) are appended as the case gives them,
    each only if the offer allows it (client_max_window_bits needs the offer's, §7.1.2.2).
    """
    for offer in extensions.parse(offer_values):
        if offer.name != extensions.PMD or extensions.offer_problem(offer):
            continue
        parts = [extensions.PMD]
        if offer.has("server_no_context_takeover"):
            parts.append("server_no_context_takeover")
        if offer.get("server_max_window_bits") is not None:
            parts.append(f"server_max_window_bits={offer.get('server_max_window_bits')}")
        for param in (p.strip() for p in extra.split(";") if p.strip()):
            name = param.partition("=")[0].strip()
            if name == "client_max_window_bits" and not offer.has("client_max_window_bits"):
                continue
            if name not in {p.partition("=")[0] for p in parts}:
                parts.append(param)
        return "; ".join(parts)
    return None


def response_extensions(spec_value: str | None, offer_values: list[str]) -> str | None:
    """The Sec-WebSocket-Extensions value of the peer's response: literal, or ``accept[; extra]``."""
    if spec_value is None:
        return None
    head, _, extra = spec_value.partition(";")
    if head.strip() == ACCEPT:
        return accept_offer(offer_values, extra)
    return spec_value


CorruptKinds = Literal[
    "invalid-block-type", "invalid-stored-lengths", "invalid-code-lengths", "invalid-distance-code",
    "invalid-literal-code", "truncated",
]  # fmt: skip


def crafted(form: str, message: bytes, session: DeflateSession | None) -> Crafted:
    """The payload of one compressed message in the named form, and what it inflates to.

    ``compress`` is the session's own compressor (the normal path); every other form bypasses it
    and the caller tells the session (``DeflateSession.bypassed``). ``plain`` puts the message
    uncompressed into the payload (for an RSV1 frame whose data is not DEFLATE, or a frame with RSV1
    clear in a compressing session).
    """
    bits = session.ours.window_bits if session is not None else 15
    if form == "plain":
        return Crafted(message, message)
    if form == "compress":
        if session is None:
            return Crafted(unnegotiated_compressor().compress(message), message)
        return Crafted(session.compress_parts([message])[0], message)
    if form == "stored":
        return Crafted(deflate.stored_message(message), message)
    if form == "stored-blocks":
        return Crafted(deflate.stored_message(message, block_size=max(1, len(message) // 4 or 1)), message)
    if form == "bfinal":
        return Crafted(deflate.bfinal_message(message, window_bits=max(bits, 9)), message)
    if form == "bfinal-unterminated":
        return Crafted(deflate.bfinal_message(message, window_bits=max(bits, 9), terminated=False), message)
    if form == "tail-kept":
        return Crafted(deflate.tail_kept_message(message, window_bits=max(bits, 9)), message)
    if form == "context-reference":
        previous = session.sent_history if session is not None else b""
        if len(previous) < 3:
            raise ValueError("context-reference needs an earlier compressed message of at least 3 bytes")
        ref = deflate.context_reference_message(previous)
        if session is not None and session.ours.no_context_takeover:
            # The agreement forbids the reference (§7.1.1): the same message, self-contained.
            return Crafted(deflate.stored_message(ref.message), ref.message)
        return ref
    if form.startswith("corrupt-"):
        return Crafted(deflate.corrupt_message(form.removeprefix("corrupt-")), b"")  # type: ignore[arg-type]
    if form.startswith("empty-"):
        name = form.removeprefix("empty-")
        if name in deflate.LEGAL_EMPTY_MESSAGES:
            return Crafted(deflate.LEGAL_EMPTY_MESSAGES[name], b"")
        return Crafted(deflate.ILLEGAL_EMPTY_MESSAGES[name][0], b"")
    if form.startswith("far-"):
        return deflate.far_reference_message(int(form.removeprefix("far-")))
    raise ValueError(f"unknown deflate form {form!r}")


def form_known(form: str) -> bool:
    if form in FORMS:
        return True
    if form.startswith("corrupt-"):
        return form.removeprefix("corrupt-") in CorruptKinds.__args__  # type: ignore[attr-defined]
    if form.startswith("empty-"):
        name = form.removeprefix("empty-")
        return name in deflate.LEGAL_EMPTY_MESSAGES or name in deflate.ILLEGAL_EMPTY_MESSAGES
    if form.startswith("far-"):
        return form.removeprefix("far-") in {str(n) for n in range(8, 15)}
    return False


@dataclass(frozen=True, slots=True)
class Bomb:
    """A high-ratio compressed message: ``payload`` inflates to ``length`` zero bytes (``sha256``)."""

    payload: bytes
    length: int
    sha256: str


BOMB_CHUNK = 1 << 20


@functools.lru_cache(maxsize=2)
def bomb(mib: int) -> Bomb:
    """``mib`` MiB of zeros compressed (about 1000:1), built a MiB at a time: the harness never
    holds the inflated message, only the compressed one and its digest. A fresh stream with a 32 KiB
    window: legal under any agreement whose sender window is 15 bits; with a smaller one the
    receiver sees a too-far reference, which is also a reason to refuse (cases offer the default)."""
    if not 1 <= mib <= 4096:
        raise ValueError("bomb size must be 1..4096 MiB")
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    digest = hashlib.sha256()
    chunk = bytes(BOMB_CHUNK)
    parts = []
    for _ in range(mib):
        parts.append(z.compress(chunk))
        digest.update(chunk)
    parts.append(z.flush(zlib.Z_SYNC_FLUSH))
    data = b"".join(parts)
    return Bomb(data[:-4], mib * BOMB_CHUNK, digest.hexdigest())
