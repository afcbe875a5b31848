"""A persistent client adapter that does no WebSocket at all: it plays what each case's name says.

For the tests of the harness's persistent launcher (tests/test_persistent_clients.py): each stdin line
is a case (docs/adapter-protocol.md §1), and the case name picks a behaviour, so the launcher's
isolation rules can be checked one by one without a peer: ``ok`` (an event, then done), ``garbage``
(a line that is not JSON, then done), ``unsupported`` (done with exit 127), ``crash`` (an event, then
the process exits 3 in the middle of the case), ``hang`` (nothing, never done), ``chatty`` (done, then
one more line while no case is in flight).
"""

from __future__ import annotations

import json
import os
import sys
import time


def say(obj: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> None:
    for line in sys.stdin:
        case = json.loads(line)["case"]
        if case == "ok":
            say({"event": "open", "pid": os.getpid()})
            say({"event": "done", "case": case, "exit": 0})
        elif case == "garbage":
            sys.stdout.write("this is not JSON\n")
            say({"event": "done", "case": case, "exit": 0})
        elif case == "unsupported":
            say({"event": "done", "case": case, "exit": 127})
        elif case == "crash":
            say({"event": "open", "pid": os.getpid()})
            sys.exit(3)
        elif case == "hang":
            time.sleep(3600)
        elif case == "chatty":
            say({"event": "done", "case": case, "exit": 0})
            time.sleep(0.05)
            say({"event": "leaked-after-done"})
        sys.stdout.flush()


if __name__ == "__main__":
    main()
