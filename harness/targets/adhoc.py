"""Ad-hoc targets: a real declaration from command-line options, for a library's own CI.

``--target-cmd CMD``, ``--target-url URL`` and ``--client-cmd CMD`` each declare one target; the
options that follow describe it as target.yaml would (``--name``, ``--implementation``,
``--target-version``, ``--subprotocols``, ``--permessage-deflate``, ``--max-message-size``,
``--startup-timeout``, ``--expected FILE``). Given before any of the three, they apply to every
ad-hoc target of the run. So a maintainer writes::

    wsconform run --target-cmd "node server.js {port}" --name mylib --target-version 2.1.0 \\
        --subprotocols chat --max-message-size 1048576 --expected ci/expected.yaml

and gets the cases that need those policies (instead of UNIMPLEMENTED), known deviations graded as
for a target folder, and the report showing "mylib 2.1.0" (not "unknown unknown"). Names are never
guessed from the command: ``adhoc-server`` / ``adhoc-client`` unless ``--name``, and two ad-hoc
targets of one role with one name are an error rather than one silently shadowing the other.

Both front ends register the same options (``option_specs``); argparse (and pytest, which uses it)
keeps them in command-line order in one list, tagged, which ``declarations`` turns into targets.
"""

from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.targets.errors import TargetError
from harness.targets.runners.base import (
    CLIENT_PLACEHOLDERS,
    SERVER_PLACEHOLDERS,
    check_template,
    placeholders_used,
)
from harness.targets.spec import (
    Policies,
    ProcessSpec,
    Role,
    RoleSpec,
    TargetSpec,
    VersionSpec,
    load_expected,
)

DEST = "wsconform_adhoc"  # the one list every option below appends to, in command-line order
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
Kind = Literal["cmd", "url", "client-cmd"]
KIND_OPTION: dict[Kind, str] = {"cmd": "--target-cmd", "url": "--target-url", "client-cmd": "--client-cmd"}
FIELD_OPTION = {
    "name": "--name",
    "implementation": "--implementation",
    "version": "--target-version",
    "subprotocols": "--subprotocols",
    "permessage_deflate": "--permessage-deflate",
    "max_message_size": "--max-message-size",
    "startup_timeout": "--startup-timeout",
    "expected": "--expected",
}


class AdhocError(TargetError):
    """An ad-hoc declaration that cannot be right (the front end prints it and exits 2)."""


@dataclass
class AdhocTarget:
    """One ad-hoc target as declared on the command line."""

    kind: Kind
    value: str
    name: str | None = None
    implementation: str | None = None
    version: str | None = None
    subprotocols: list[str] | None = None
    permessage_deflate: bool | None = None
    max_message_size: int | None = None
    startup_timeout: float | None = None
    expected: Path | None = None
    given: set[str] = field(default_factory=set, repr=False)

    @property
    def role(self) -> Role:
        return "client" if self.kind == "client-cmd" else "server"

    @property
    def label(self) -> str:
        return self.name or f"adhoc-{self.role}"

    @property
    def option(self) -> str:
        return f"{KIND_OPTION[self.kind]} {self.value!r}"


# -- options ------------------------------------------------------------------------------------------


def _tagged(tag: str, convert: Any = str) -> Any:
    def parse(text: str) -> tuple[str, Any]:
        try:
            return tag, convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc) or f"invalid value {text!r}") from exc

    parse.__name__ = tag  # argparse names the converter in its messages
    return parse


def _name(text: str) -> str:
    if not NAME.match(text):
        raise ValueError(f"{text!r}: a name is letters, digits and . _ + - (it names files and folders)")
    return text


def _protocols(text: str) -> list[str]:
    tokens = [t.strip() for t in text.split(",") if t.strip()]
    if not tokens:
        raise ValueError("give a comma-separated list, e.g. chat,superchat")
    return tokens


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"{text}: must be a positive number of bytes")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError(f"{text}: must be a positive number of seconds")
    return value


def option_specs() -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """(flags, add_argument keywords) of every ad-hoc option, the same for both front ends."""

    def opt(flag: str, tag: str, convert: Any = str, **kw: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
        return (flag,), {"dest": DEST, "action": "append", "type": _tagged(tag, convert), **kw}

    deflate = {
        "dest": DEST,
        "action": "append_const",
        "const": ("permessage_deflate", True),
        "help": "the ad-hoc target enables permessage-deflate (policies.permessage_deflate)",
    }
    return [
        opt("--target-cmd", "cmd", metavar="CMD",
            help='a server the harness starts, with {port}: "python s.py --port {port}" (repeatable; '
            "the options below describe the ad-hoc target they follow)"),
        opt("--target-url", "url", metavar="URL",
            help="an already running server on loopback, ws://127.0.0.1:PORT/"),
        opt("--client-cmd", "client-cmd", metavar="CMD",
            help='a client the harness starts per case: "python c.py {url} {protocols}" '
            "(API events on stdout)"),
        opt("--name", "name", _name, metavar="NAME",
            help="the ad-hoc target's name (default adhoc-server / adhoc-client)"),
        opt("--implementation", "implementation", metavar="TEXT",
            help="the ad-hoc target's implementation, for the report"),
        opt("--target-version", "version", metavar="VERSION",
            help="the ad-hoc target's version, for the report"),
        opt("--subprotocols", "subprotocols", _protocols, metavar="LIST",
            help="subprotocols the ad-hoc target supports (comma-separated), as policies.subprotocols"),
        (("--permessage-deflate",), deflate),
        opt("--max-message-size", "max_message_size", _positive_int, metavar="N",
            help="the ad-hoc target's maximum message size in bytes (policies.max_message_size)"),
        opt("--startup-timeout", "startup_timeout", _positive_float, metavar="S",
            help="seconds the ad-hoc server may take to accept TCP (default 20)"),
        opt("--expected", "expected", Path, metavar="FILE",
            help="an expected.yaml for the ad-hoc target: listed deviations are known, not failures"),
    ]  # fmt: skip


# -- declarations -------------------------------------------------------------------------------------


def declarations(items: list[tuple[str, Any]] | None) -> list[AdhocTarget]:
    """The ad-hoc targets of a command line, from the tagged list ``option_specs`` fills.

    A describing option applies to the target option it follows, or to every target when it comes
    first; one given twice for the same target is an error, as is one with no target to describe.
    """
    defaults: dict[str, Any] = {}
    targets: list[AdhocTarget] = []
    for tag, value in items or []:
        if tag in KIND_OPTION:
            targets.append(AdhocTarget(tag, str(value)))
            continue
        if not targets:
            if tag in defaults:
                raise AdhocError(f"{FIELD_OPTION[tag]} is given twice")
            defaults[tag] = value
            continue
        target = targets[-1]
        if tag in target.given:
            raise AdhocError(f"{FIELD_OPTION[tag]} is given twice for {target.option}")
        target.given.add(tag)
        setattr(target, tag, value)
    if defaults and not targets:
        given = ", ".join(FIELD_OPTION[t] for t in defaults)
        verb = "describes" if len(defaults) == 1 else "describe"
        raise AdhocError(f"{given} {verb} an ad-hoc target: add --target-cmd, --target-url or --client-cmd")
    for target in targets:
        for tag, value in defaults.items():
            if tag not in target.given:
                setattr(target, tag, value)
        _check(target)
    seen: dict[tuple[Role, str], AdhocTarget] = {}
    for target in targets:
        key = (target.role, target.label)
        if key in seen:
            raise AdhocError(
                f"two ad-hoc {target.role} targets are named {target.label!r} ({seen[key].option} and "
                f"{target.option}): give each its own --name after it"
            )
        seen[key] = target
    return targets


def _check(target: AdhocTarget) -> None:
    """What can be told from the declaration alone (the command is parsed, not run)."""
    if target.kind == "url":
        if target.startup_timeout is not None and "startup_timeout" in target.given:
            raise AdhocError(
                f"--startup-timeout does not apply to {target.option}: the harness does not start it"
            )
        return
    try:
        argv = shlex.split(target.value)
    except ValueError as exc:
        raise AdhocError(f"{target.option}: {exc}") from exc
    if not argv:
        raise AdhocError(f"{target.option}: empty command")
    used = placeholders_used(argv)
    try:
        if target.kind == "cmd":
            check_template(argv, SERVER_PLACEHOLDERS, what="--target-cmd")
            if not used & {"port", "url"}:
                raise AdhocError(
                    "--target-cmd must contain {port} (or {url}) so the harness can pick the port"
                )
        else:
            check_template(argv, CLIENT_PLACEHOLDERS, what="--client-cmd")
            if "url" not in used:
                raise AdhocError(
                    "--client-cmd must contain {url}: the address of the peer the client connects to"
                )
    except AdhocError:
        raise
    except Exception as exc:  # an unknown placeholder (TargetUnavailable from the renderer)
        raise AdhocError(str(exc)) from exc


def to_spec(target: AdhocTarget) -> TargetSpec:
    """The ad-hoc target as the TargetSpec a target.yaml with the same content would give."""
    if target.kind == "url":
        role_spec = RoleSpec(url=target.value)
    else:
        role_spec = RoleSpec(process=ProcessSpec(argv=shlex.split(target.value)))
    if target.startup_timeout is not None:
        role_spec.startup_timeout = target.startup_timeout
    policies = Policies(
        subprotocols=target.subprotocols or [],
        permessage_deflate=bool(target.permessage_deflate),
        max_message_size=target.max_message_size,
    )
    spec = TargetSpec(
        name=target.label,
        implementation=target.implementation or target.label,
        language="",
        version=VersionSpec(value=target.version),
        roles={target.role: role_spec},
        policies=policies,
        notes=[f"ad-hoc target: {target.option}"],
        adhoc=True,
    )
    if target.expected is not None:
        spec.expected = load_expected(target.expected)
    return spec
