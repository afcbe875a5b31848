"""The interop ping rule: a missing pong is the server's fault, unless the client's Close overtook it.

RFC 6455 §5.5.2 owes a Pong for every Ping "unless it already received a Close frame". A client API
that sends ping and close at once leaves the server free to skip the pong (libwebsockets does so about
one time in three); a client that waited for the pong in vain before closing does not.
"""

from __future__ import annotations

import pytest

from harness.model.interop import load_all
from harness.observed import parse_close
from harness.observed_pair import PairSeen
from harness.verdict.interop import _ping
from tests.conftest import CASES

PING = next(s for s in load_all(CASES / "interop") if s.id == "ping-from-client")
PAYLOAD = b"wsconform-ping"


def _pair(pong: bool, close_after: float | None) -> PairSeen:
    pair = PairSeen()
    pair.client.pings.append(PAYLOAD)
    pair.client.last_ping_t = 1.0
    if pong:
        pair.server.pongs.append(PAYLOAD)
    if close_after is not None:
        pair.client.close = parse_close(b"\x03\xe8", 1.0 + close_after)
    return pair


@pytest.mark.parametrize(
    ("pong", "close_after", "fails"),
    [
        (True, 0.0, False),  # answered
        (False, 0.0002, False),  # close right behind the ping: the pong may be skipped
        (False, 5.0, True),  # the client waited 5 s for a pong that never came
        (False, None, True),  # no close at all: nothing excuses the missing pong
    ],
)
def test_a_missing_pong(pong: bool, close_after: float | None, fails: bool) -> None:
    verdict = _ping(PING, _pair(pong, close_after))
    assert (verdict is not None) == fails
    if verdict is not None:
        assert verdict.side == "server" and verdict.rule == "pong-payload"
