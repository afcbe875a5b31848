"""Ad-hoc targets declared on the command line, as a library's CI uses them, in both front ends.

The servers are tests/broken_server.py (subprotocols chat and superchat, 64 MiB maximum message size,
one switchable defect); the clients are targets/websockets/client.py and tests/broken_client.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.targets import adhoc
from harness.targets.adhoc import AdhocError, declarations
from tests.conftest import BROKEN, CASES, ROOT

pytest_plugins = ["pytester"]

PY = sys.executable
BROKEN_CLIENT = ROOT / "tests" / "broken_client.py"
WS_CLIENT = ROOT / "targets" / "websockets" / "client.py"

MINI = """
cases:
  - id: mini-echo
    title: echo
    spec: RFC 6455 §5.6
    steps: [{send: {opcode: text, payload: hello}}]
  - id: mini-rsv
    title: rsv
    spec: RFC 6455 §5.2
    steps: [{send: {opcode: text, payload: x, rsv: 4}}]
    expect: {fail: [1002]}
"""


def server(defect: str | None = None) -> str:
    return f"{PY} {BROKEN} --port {{port}}" + (f" --defect {defect}" if defect else "")


def parse(*argv: str) -> list[adhoc.AdhocTarget]:
    parser = argparse.ArgumentParser()
    for flags, options in adhoc.option_specs():
        parser.add_argument(*flags, **options)
    return declarations(getattr(parser.parse_args(list(argv)), adhoc.DEST))


def run(tmp_path: Path, *args: str, cases: Path = CASES) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "r" / "results.json"
    code = main(["--cases", str(cases), "run", *args, "--results", str(out), "-q", "--no-report", "-j", "1"])
    return code, json.loads(out.read_text()) if out.exists() else {}


def by_case(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["case"]: r for r in doc["results"]}


def mini_cases(root: Path) -> Path:
    (root / "cases" / "mini").mkdir(parents=True)
    (root / "cases" / "mini" / "m.yaml").write_text(MINI)
    return root / "cases"


# -- the declaration ----------------------------------------------------------------------------------


def test_options_describe_the_target_they_follow_or_every_target_when_first() -> None:
    a, b, c = parse(
        "--subprotocols", "chat", "--target-version", "9",
        "--target-cmd", "a {port}", "--name", "a", "--max-message-size", "1024",
        "--target-url", "ws://127.0.0.1:9/", "--name", "b", "--subprotocols", "x,y", "--permessage-deflate",
        "--client-cmd", "c {url} {protocols}",
    )  # fmt: skip
    assert (a.kind, a.label, a.subprotocols, a.max_message_size, a.version) == (
        "cmd",
        "a",
        ["chat"],
        1024,
        "9",
    )
    assert (b.kind, b.label, b.subprotocols, b.permessage_deflate) == ("url", "b", ["x", "y"], True)
    assert (c.kind, c.role, c.label, c.subprotocols) == ("client-cmd", "client", "adhoc-client", ["chat"])
    spec = adhoc.to_spec(a)
    assert spec.policies.max_message_size == 1024 and spec.roles["server"].process is not None
    assert spec.version.value == "9" and spec.adhoc and spec.implementation == "a"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--target-cmd", "a {port}", "--target-url", "ws://127.0.0.1:9/"],
            "server targets are named 'adhoc-server'",
        ),
        (["--target-cmd", "a {port}", "--name", "x", "--name", "y"], "--name is given twice"),
        (["--name", "x"], "--name describes an ad-hoc target"),
        (["--target-cmd", "python s.py --port 9000"], "must contain {port}"),
        (["--target-cmd", "s {port} {max_size}"], "unknown placeholder {max_size}"),
        (["--client-cmd", "c --protocols {protocols}"], "must contain {url}"),
        (["--target-url", "ws://127.0.0.1:9/", "--startup-timeout", "3"], "does not apply to --target-url"),
    ],
)
def test_declarations_that_cannot_be_right_are_errors(argv: list[str], message: str) -> None:
    with pytest.raises(AdhocError) as info:
        parse(*argv)
    assert message in str(info.value)


def test_values_are_checked_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--max-message-size", "0"], ["--name", "a/b"], ["--subprotocols", ","]):
        with pytest.raises(SystemExit):
            parse("--target-cmd", "s {port}", *argv)
    assert "must be a positive number of bytes" in capsys.readouterr().err


# -- wsconform run ------------------------------------------------------------------------------------


def test_default_name_and_declared_identity_in_the_results(tmp_path: Path) -> None:
    code, doc = run(tmp_path, "--target-cmd", server(), "-k", "text-len-125")
    assert code == 0 and doc["targets"][0]["name"] == "adhoc-server"
    assert doc["targets"][0]["version"] == "" and doc["targets"][0]["language"] == ""
    code, doc = run(tmp_path, "--target-cmd", server(), "--name", "mylib", "--implementation", "MyLib",
                    "--target-version", "2.1.0", "-k", "text-len-125")  # fmt: skip
    (info,) = doc["targets"]
    assert (info["name"], info["implementation"], info["version"]) == ("mylib", "MyLib", "2.1.0")
    assert {r["target"] for r in doc["results"]} == {"mylib"}
    assert (tmp_path / "r" / "logs" / "mylib.server.log").is_file()


def test_two_adhoc_servers_with_their_own_names_run_together(tmp_path: Path) -> None:
    code, doc = run(tmp_path, "--target-cmd", server(), "--name", "one", "--target-cmd", server("ignore-rsv"),
                    "--name", "two", "-k", "mini-", cases=mini_cases(tmp_path))  # fmt: skip
    assert code == 1
    outcomes = {(r["target"], r["case"]): r["outcome"] for r in doc["results"]}
    assert outcomes == {("one", "mini-echo"): "PASS", ("one", "mini-rsv"): "PASS",
                        ("two", "mini-echo"): "PASS", ("two", "mini-rsv"): "FAIL"}  # fmt: skip


def test_an_adhoc_name_may_not_shadow_a_selected_target(tmp_path: Path) -> None:
    code, _ = run(tmp_path, "--target", "websockets", "--target-cmd", server(), "--name", "websockets")
    assert code == 2


def test_declared_policies_lift_unimplemented_cases(tmp_path: Path) -> None:
    """Without a declaration the subprotocol and size cases are UNIMPLEMENTED and say how to declare;
    with it they run (broken_server supports chat and superchat)."""
    select = [
        "-k",
        "subprotocol-one-supported",
        "-k",
        "limits-max-message-size-over",
        "--timeout-scale",
        "0.2",
    ]
    _, doc = run(tmp_path, "--target-cmd", server(), *select)
    cases = by_case(doc)
    assert {r["outcome"] for r in cases.values()} == {"UNIMPLEMENTED"}
    assert "--subprotocols chat" in cases["subprotocol-one-supported-chat"]["reason"]
    assert "target.yaml policies.subprotocols" in cases["subprotocol-one-supported-chat"]["reason"]
    over = cases["limits-max-message-size-over"]["reason"]
    assert over == (
        "target declares no maximum message size "
        "(target.yaml policies.max_message_size, or --max-message-size N)"
    )
    _, doc = run(tmp_path, "--target-cmd", server(), "--subprotocols", "chat,superchat",
                    "--max-message-size", "1024", *select)  # fmt: skip
    cases = by_case(doc)
    assert cases["subprotocol-one-supported-chat"]["outcome"] == "PASS"
    assert cases["subprotocol-one-supported-superchat"]["outcome"] == "PASS"
    # broken_server's real limit is 64 MiB: the declared 1 KiB makes the case run, and fail
    assert cases["limits-max-message-size-over"]["outcome"] not in ("UNIMPLEMENTED", "ERROR")


def test_the_declared_limit_reaches_the_command(tmp_path: Path) -> None:
    script = tmp_path / "args.py"
    script.write_text(
        "import sys, pathlib; pathlib.Path(sys.argv[1]).write_text(' '.join(sys.argv[2:]))\n"
        "import time; time.sleep(30)\n"
    )
    seen = tmp_path / "argv.txt"
    cmd = f"{PY} {script} {seen} {{port}} {{max_message_size}} {{subprotocols}} {{{{literal}}}}"
    run(tmp_path, "--target-cmd", cmd, "--max-message-size", "4096", "--subprotocols", "a,b",
        "--startup-timeout", "0.5", "-k", "text-len-125")  # fmt: skip
    assert seen.read_text().split()[1:] == ["4096", "a,b", "{literal}"]


def test_expected_file_turns_a_listed_fail_into_a_known_deviation(tmp_path: Path) -> None:
    cases = mini_cases(tmp_path)
    expected = tmp_path / "expected.yaml"
    expected.write_text('mini-rsv: {outcome: FAIL, reason: "ignores RSV bits (test fixture)"}\n')
    code, doc = run(tmp_path, "--target-cmd", server("ignore-rsv"), cases=cases)
    assert code == 1
    code, doc = run(tmp_path, "--target-cmd", server("ignore-rsv"), "--expected", str(expected), cases=cases)
    assert code == 0, doc["results"]
    rsv = by_case(doc)["mini-rsv"]
    assert rsv["outcome"] == "FAIL" and rsv["expected"]["reason"] == "ignores RSV bits (test fixture)"
    expected.write_text("mini-rsv: {outcome: FAIL}\n")  # no reason: an invalid expected.yaml
    code, _ = run(tmp_path, "--target-cmd", server("ignore-rsv"), "--expected", str(expected), cases=cases)
    assert code == 2


def _target_folder(root: Path, name: str) -> Path:
    folder = root / "elsewhere" / name
    folder.mkdir(parents=True)
    (folder / "target.yaml").write_text(
        textwrap.dedent(f"""\
        name: {name}
        implementation: a broken server from another folder
        version: {{value: "0.0.1"}}
        roles:
          server:
            process: {{argv: ["{PY}", "{BROKEN}", "--port", "{{port}}", "--defect", "ignore-rsv"]}}
            ready: stdout-line
        """)
    )
    (folder / "expected.yaml").write_text('mini-rsv: {outcome: FAIL, reason: "ignores RSV (fixture)"}\n')
    return folder


def test_target_file_loads_in_addition_to_the_built_in_targets(tmp_path: Path) -> None:
    folder = _target_folder(tmp_path, "outside")
    code, doc = run(tmp_path, "--target", "websockets", "--target-file", str(folder / "target.yaml"),
                    cases=mini_cases(tmp_path))  # fmt: skip
    assert code == 0, doc.get("results")
    assert {t["name"] for t in doc["targets"]} == {"websockets", "outside"}
    outside = {r["case"]: r for r in doc["results"] if r["target"] == "outside"}
    assert outside["mini-rsv"]["expected"] is not None  # its own expected.yaml came along
    clash = _target_folder(tmp_path / "b", "websockets")
    code, _ = run(tmp_path, "--target-file", str(clash), cases=mini_cases(tmp_path / "c"))
    assert code == 2


def test_client_cmd_is_a_client_target_with_api_checks(tmp_path: Path) -> None:
    select = ["--family", "client", "-k", "client-echo-text-125", "-k", "client-reports-abnormal-close"]
    code, doc = run(tmp_path, "--client-cmd", f"{PY} {WS_CLIENT} --url {{url}} --protocols {{protocols}}",
                    "--name", "ws", *select)  # fmt: skip
    assert code == 0, doc["results"]
    assert {r["target"] for r in doc["results"]} == {"ws@client"} and len(doc["results"]) == 2
    broken = f"{PY} {BROKEN_CLIENT} --url {{url}} --defect report-1000-on-abnormal"
    code, doc = run(tmp_path, "--client-cmd", broken, *select)
    cases = by_case(doc)
    assert cases["client-echo-text-125"]["outcome"] == "PASS"
    abnormal = cases["client-reports-abnormal-close"]
    assert abnormal["outcome"] == "FAIL" and "reported close code 1000" in abnormal["reason"]
    assert abnormal["target"] == "adhoc-client@client"


# -- pytest -------------------------------------------------------------------------------------------


def test_pytest_takes_the_same_declaration(pytester: pytest.Pytester, tmp_path: Path) -> None:
    cases = mini_cases(pytester.path)
    expected = tmp_path / "expected.yaml"
    expected.write_text('mini-rsv: {outcome: FAIL, reason: "ignores RSV bits (test fixture)"}\n')
    res = pytester.runpytest_subprocess(
        str(cases), "--target-cmd", server("ignore-rsv"), "--name", "brk", "--target-version", "3",
        "--expected", str(expected), "-v", "--timeout-scale", "0.2", "--results", str(tmp_path / "r.json"),
    )  # fmt: skip
    res.stdout.fnmatch_lines(["*mini-echo?brk? PASSED*", "*mini-rsv?brk? XFAIL*"])
    assert res.ret == 0
    (info,) = json.loads((tmp_path / "r.json").read_text())["targets"]
    assert (info["name"], info["version"]) == ("brk", "3")
    res = pytester.runpytest_subprocess(
        str(cases), "--target-cmd", server(), "--target-url", "ws://127.0.0.1:9/"
    )
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*two ad-hoc server targets are named 'adhoc-server'*"])
