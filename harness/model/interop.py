"""Interop scenarios: ``cases/interop/*.yaml`` (``role: interop``), loaded into plans and expectations.

A scenario says what the client originates (the plan of docs/adapter-protocol.md §2.1, minus the
digests, which are computed here from the payload each message builds) and what both sides must
observe (``expect``). Each scenario has one ``letter`` for the matrix (quic-interop-runner's page) and
a ``description`` for its tooltip. ``requires`` names the capabilities a target may declare it lacks in
``interop.unsupported`` (``ping-from-client``, ``permessage-deflate``): such a pair is UNIMPLEMENTED.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CAPABILITIES = ("ping-from-client", "permessage-deflate")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MessageSpec(_Model):
    """One message: ``unit`` (text, sent as UTF-8) or ``unit_hex`` (bytes) repeated and cut to ``size`` bytes."""  # noqa: E501

    type: Literal["text", "binary"]
    size: int = Field(ge=0)
    unit: str | None = None
    unit_hex: str | None = None

    @model_validator(mode="after")
    def _one_unit(self) -> MessageSpec:
        if (self.unit is None) == (self.unit_hex is None):
            raise ValueError("give exactly one of unit, unit_hex")
        raw = self.raw_unit
        if not raw:
            raise ValueError("the unit is empty")
        if self.type == "text":
            if self.unit is None:
                raise ValueError("a text message takes a unit (a string)")
            if self.size % len(raw):
                raise ValueError(f"size {self.size} is not a multiple of the unit's {len(raw)} UTF-8 bytes")
        return self

    @property
    def raw_unit(self) -> bytes:
        return bytes.fromhex(self.unit_hex) if self.unit_hex is not None else (self.unit or "").encode()

    def payload(self) -> bytes:
        raw = self.raw_unit
        return (raw * (self.size // len(raw) + 1))[: self.size]

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.payload()).hexdigest()

    def plan(self) -> dict[str, Any]:
        unit = {"unit": self.unit} if self.unit is not None else {"unit_hex": self.unit_hex}
        return {"type": self.type, "size": self.size, **unit, "sha256": self.sha256}

    @property
    def key(self) -> tuple[int, int, str]:
        """(opcode, length, sha256): the way ``observed.Message`` compares."""
        return (1 if self.type == "text" else 2, self.size, self.sha256)


class CloseSpec(_Model):
    by: Literal["client", "server"]
    code: int = Field(ge=1000, le=4999)
    reason: str = ""


class DeflateSpec(_Model):
    offer: str = "permessage-deflate; client_max_window_bits"


class PingSpec(_Model):
    payload: str = Field(max_length=125)


class Expect(_Model):
    """What both sides must observe, beyond what every scenario checks (no rule broken on the wire,
    every message echoed intact and reported by the client, the close the plan asks for).

    ``protocol``: ``first-supported`` (the server selects the first offered one it declares in its
    ``policies.subprotocols``; the client reports it) or ``none`` (the server selects none; the client
    either opens with no protocol or fails the connection, both allowed: RFC 6455 §4.1 leaves it to
    the client). ``deflate``: permessage-deflate must be negotiated (UNIMPLEMENTED when one side does not
    do it) and every message compressed in at least one direction validated by inflating it.
    """

    protocol: Literal["first-supported", "none"] | None = None
    deflate: bool = False


class Scenario(_Model):
    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    letter: str = Field(pattern=r"^[A-Za-z0-9]$")
    title: str
    description: str
    spec: str
    requires: list[Literal["ping-from-client", "permessage-deflate"]] = []
    ci: bool = False  # in the small subset CI runs for container and browser pairs
    timeout: float = 30.0
    protocols: list[str] = []
    permessage_deflate: DeflateSpec | None = None
    messages: list[MessageSpec] = []
    repeat: int = Field(default=1, ge=1)
    pace: Literal["echo", "burst"] = "echo"
    ping: PingSpec | None = None
    read_delay_ms: int = Field(default=0, ge=0)
    close: CloseSpec = CloseSpec(by="client", code=1000)
    expect: Expect = Expect()

    def plan(self) -> dict[str, Any]:
        """The plan the client adapter receives in ``WSCONFORM_PLAN`` (docs/adapter-protocol.md §2.1)."""
        plan: dict[str, Any] = {
            "messages": [m.plan() for m in self.messages],
            "repeat": self.repeat,
            "pace": self.pace,
            "read_delay_ms": self.read_delay_ms,
            "close": self.close.model_dump(),
        }
        if self.protocols:
            plan["protocols"] = list(self.protocols)
        if self.permessage_deflate is not None:
            plan["permessage_deflate"] = self.permessage_deflate.model_dump()
        if self.ping is not None:
            plan["ping"] = self.ping.model_dump()
        return plan

    def planned(self) -> list[tuple[int, int, str]]:
        """The messages in the order the client sends them (and the echoes must come back)."""
        return [m.key for _ in range(self.repeat) for m in self.messages]


class ScenarioFile(_Model):
    role: Literal["interop"]
    scenarios: list[Scenario]


class ScenarioError(Exception):
    """A scenario file that does not load: the file and what is wrong."""


def load_file(path: Path) -> list[Scenario]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return ScenarioFile.model_validate(data).scenarios
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ScenarioError(f"{path}: {exc}") from exc


def load_all(folder: Path) -> list[Scenario]:
    """Every scenario under ``folder`` in file then file order; ids and letters must be unique."""
    out: list[Scenario] = []
    for path in sorted(folder.glob("*.yaml")):
        out.extend(load_file(path))
    for attr in ("id", "letter"):
        values = [getattr(s, attr) for s in out]
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise ScenarioError(f"{folder}: duplicate scenario {attr}s {dupes}")
    return out


def is_interop_file(path: Path) -> bool:
    """Whether a case file under ``cases/`` is an interop scenario file (its folder is ``interop``)."""
    return path.parent.name == "interop"
