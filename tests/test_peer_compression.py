"""harness.peer.compression: the agreement read from the handshake, the offer the peer accepts, and the
crafted forms inflating (or failing) as their names say, checked with the harness's own inflater."""

from __future__ import annotations

import pytest

from harness.peer import compression
from harness.wire import deflate

BASE = "permessage-deflate; client_no_context_takeover; client_max_window_bits"


def test_accept_offer_answers_what_the_offer_makes_mandatory() -> None:
    offer = f"{BASE}; server_no_context_takeover; server_max_window_bits=9"
    assert compression.accept_offer([offer]) == (
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
    )
    assert compression.accept_offer(["x-webkit-deflate-frame"]) is None
    assert compression.accept_offer(["permessage-deflate; bogus"]) is None  # invalid offer: declined


def test_accept_extra_client_window_only_when_offered() -> None:
    assert compression.response_extensions("accept; client_max_window_bits=9", [BASE]) == (
        "permessage-deflate; client_max_window_bits=9"
    )
    assert compression.response_extensions("accept; client_max_window_bits=9", ["permessage-deflate"]) == (
        "permessage-deflate"
    )
    assert compression.response_extensions("permessage-deflate", []) == "permessage-deflate"  # literal


def test_session_directions_follow_the_response() -> None:
    s = compression.session_from_response(
        ["permessage-deflate; server_max_window_bits=10; client_no_context_takeover"],
        [BASE + "; server_max_window_bits=10"],
        "client",
        1 << 20,
    )
    assert s is not None
    assert (s.ours.window_bits, s.ours.no_context_takeover) == (15, True)
    assert (s.theirs.window_bits, s.theirs.no_context_takeover) == (10, False)
    assert compression.session_from_response([], [BASE], "client", 1 << 20) is None


@pytest.mark.parametrize(
    "form", ["compress", "stored", "stored-blocks", "bfinal", "empty-stored-header", "empty-fixed-empty"]
)
def test_legal_forms_inflate_to_their_message(form: str) -> None:
    c = compression.crafted(form, b"" if form.startswith("empty") else b"Hello Hello Hello", None)
    out = deflate.Decompressor(deflate.Direction("client"), max_output=1 << 20).inflate(c.payload)
    assert out.data == c.message and not out.violations


@pytest.mark.parametrize("form", ["corrupt-invalid-block-type", "corrupt-invalid-distance-code", "far-9"])
def test_illegal_forms_fail_inflation(form: str) -> None:
    c = compression.crafted(form, b"", None)
    d = deflate.Decompressor(deflate.Direction("client", 9), max_output=1 << 20, window_check_step=3)
    with pytest.raises(deflate.DeflateError):
        d.inflate(c.payload)


def test_bypassed_message_resets_the_stream_and_feeds_context_reference() -> None:
    s = compression.DeflateSession(deflate.DeflateParams(), "client", 1 << 20)
    receiver = deflate.Decompressor(s.ours, max_output=1 << 20)
    first = compression.crafted("compress", b"abcdefgh" * 8, s)
    assert receiver.inflate(first.payload).data == first.message
    ref = compression.crafted("context-reference", b"", s)
    s.bypassed(ref.message)
    assert receiver.inflate(ref.payload).data == ref.message
    after = compression.crafted("compress", b"abcdefgh again", s)
    assert receiver.inflate(after.payload).data == b"abcdefgh again"


def test_bomb_is_small_and_bounded_on_inflation() -> None:
    b = compression.bomb(8)
    assert b.length == 8 << 20 and len(b.payload) < (8 << 20) // 500
    with pytest.raises(deflate.DeflateError) as err:
        deflate.Decompressor(deflate.Direction("client"), max_output=1 << 20).inflate(b.payload)
    assert err.value.rule == deflate.TOO_LARGE
