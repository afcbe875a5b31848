"""The front ends as a library maintainer's CI meets them: installed suite, nothing silent, logs.

Covers: cases and targets found from any directory (the bundled suite), --cases / --extra-cases /
--targets-dir before and after the subcommand, exit 2 for every empty selection in both front ends,
piped output (progress lines, plain full-width tables, one case per line, JSON lists), the summary's
exit reason, --cites, partial and stale results, report headings and wall time, one JUnit layout,
and `wsconform init`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import bundled
from harness.cli import main
from harness.model.citations import CiteQuery, citations
from harness.report.render import mark_in_progress, render
from harness.results import ResultsWriter, assemble, load
from tests.conftest import BROKEN, CASES, ROOT
from tests.test_frontends import broken_cmd, mini_cases

pytest_plugins = ["pytester"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``wsconform ARGS`` as CI runs it: another directory, stdout a pipe."""
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=ENV, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def test_bundled_suite_is_the_checkout_and_found_from_anywhere(tmp_path: Path) -> None:
    assert bundled.cases_dir() == CASES and bundled.targets_dir() == ROOT / "targets"
    assert bundled.doc("autobahn-case-ids.txt").is_file()
    res = cli("cases", "list", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == len({line.split("  ")[0] for line in lines}) >= 1000  # one case per line
    assert all("::" in line for line in lines)
    assert cli("cases", "autobahn", cwd=tmp_path).returncode == 0  # the id list comes from the install
    assert "websockets" in cli("targets", "list", cwd=tmp_path).stdout


def test_global_options_before_and_after_the_subcommand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = mini_cases(tmp_path)
    extra = tmp_path / "mine"
    (extra / "own").mkdir(parents=True)
    (extra / "own" / "o.yaml").write_text(
        "cases:\n  - id: own-echo\n    title: mine\n    spec: RFC 6455 §5.6\n"
        "    steps: [{send: {opcode: text, payload: x}}]\n"
    )
    outputs = []
    for argv in (
        ["--cases", str(root), "cases", "list"],
        ["cases", "list", "--cases", str(root)],
        ["--cases", str(CASES), "cases", "list", "--cases", str(root)],  # the later one wins
    ):
        assert main(argv) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] == outputs[2] and "mini-echo" in outputs[0]
    assert (
        main(
            ["--extra-cases", str(extra), "--cases", str(root), "cases", "list", "--extra-cases", str(extra)]
        )
        == 0
    )
    listed = capsys.readouterr().out
    assert "own/o.yaml::own-echo" in listed and "mini-echo" in listed
    # the same id in two folders is an error that names both
    assert main(["--extra-cases", str(root), "--cases", str(root), "cases", "list"]) == 0  # same folder once
    (extra / "own" / "dup.yaml").write_text(
        "cases:\n  - id: mini-echo\n    title: dup\n    spec: s\n"
        "    steps: [{send: {opcode: text, payload: x}}]\n"
    )
    capsys.readouterr()
    assert main(["--cases", str(root), "cases", "list", "--extra-cases", str(extra)]) == 2
    assert "mini-echo" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--cases", "/nonexistent/cases", "run", "--target-cmd", "x {port}"],
            "/nonexistent/cases does not exist",
        ),
        (["cases", "list", "--cases", "/nonexistent/cases"], "/nonexistent/cases does not exist"),
        (
            ["cases", "list", "-k", "no-such-case-anywhere"],
            "no case matches -k no-such-case-anywhere among the",
        ),
        (["cases", "list", "--family", "nope"], "unknown family nope"),
        (["run", "-k", "no-such-case-anywhere", "--target-cmd", "x {port}"], "no case matches"),
        (["run", "--target", "no-such-target", "-k", "text-len-125"], "unknown target 'no-such-target'"),
        (
            ["run", "--family", "client", "--target-cmd", "x {port}"],
            r"none of the \d+ selected cases applies",
        ),
        (
            ["targets", "list", "--targets-dir", "/nonexistent/t"],
            "targets folder /nonexistent/t does not exist",
        ),
        (["cases", "list", "--cites", "five"], "cannot read 'five' as a citation"),
    ],
)
def test_nothing_selected_is_exit_2_with_what_and_where(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert (
        main([*argv, *(["--results", str(tmp_path / "r.json")] if argv[0] == "run" or "run" in argv else [])])
        == 2
    )
    assert re.search(message, capsys.readouterr().out)  # messages are patterns: counts change with the suite
    assert not (tmp_path / "r.json").exists()


def test_cites_matches_whole_sections() -> None:
    spec = 'RFC 6455 §5.5.1 ("see Section 5.5"); §7.4; RFC 7692 §7.2.1'
    assert citations(spec) == [("6455", "5.5.1"), ("6455", "7.4"), ("7692", "7.2.1")]
    assert CiteQuery("§5.5.1").matches(spec) and not CiteQuery("§5.5").matches(spec)
    assert CiteQuery("§5.5.*").matches(spec) and CiteQuery("5.5*").matches(spec)
    assert not CiteQuery("§5.50").matches("RFC 6455 §5.5")
    assert CiteQuery("RFC 7692 §7.2.1").matches(spec) and not CiteQuery("RFC 6455 §7.2.1").matches(spec)
    assert CiteQuery("RFC 7692").matches(spec) and not CiteQuery("RFC 7230").matches(spec)


def test_cases_list_cites_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cases", "list", "--cites", "§5.5.1", "--json"]) == 0
    exact = json.loads(capsys.readouterr().out)
    assert exact and all(any(s.endswith("§5.5.1") for s in c["sections"]) for c in exact)
    assert main(["cases", "list", "--cites", "§5.5", "--json"]) == 0
    section = json.loads(capsys.readouterr().out)
    assert {c["id"] for c in exact}.isdisjoint(
        c["id"] for c in section if "§5.5" not in " ".join(c["sections"]).replace("§5.5.", "")
    )
    assert main(["cases", "list", "--cites", "§5.5.*", "--json"]) == 0
    tree = {c["id"] for c in json.loads(capsys.readouterr().out)}
    assert {c["id"] for c in exact} | {c["id"] for c in section} <= tree
    assert main(["targets", "list", "--json"]) == 0
    targets = {t["name"]: t for t in json.loads(capsys.readouterr().out)}
    assert (
        targets["websockets"]["roles"]["server"][0] == "process" and targets["websockets"]["process"] == "yes"
    )


def target_folder(tmp_path: Path, expected: str = "") -> Path:
    folder = tmp_path / "targets" / "brk"
    folder.mkdir(parents=True)
    (folder / "target.yaml").write_text(
        "name: brk\nimplementation: broken server\nroles:\n  server:\n    process:\n"
        f'      argv: ["{sys.executable}", "{BROKEN}", "--port", "{{port}}", "--defect", "ignore-rsv"]\n'
        "    ready: stdout-line\n"
    )
    (folder / "expected.yaml").write_text(expected)
    return folder.parent


def test_piped_run_progress_tables_summary_and_exit_reason(tmp_path: Path) -> None:
    root = mini_cases(tmp_path)
    targets = target_folder(tmp_path)
    args = ["run", "--cases", str(root), "--targets-dir", str(targets), "--target", "brk",
            "--results", str(tmp_path / "r" / "results.json"),
            "--progress-every", "0.05", "-j", "1"]  # fmt: skip
    res = cli(*args, cwd=tmp_path)
    lines = res.stdout.splitlines()
    assert res.returncode == 1, res.stdout + res.stderr
    assert any(line.startswith("progress: 2/2 done") and "1 FAIL (1 unexpected)" in line for line in lines)
    assert "\x1b" not in res.stdout
    header = lines.index(next(line for line in lines if line.startswith("target ")))
    table = lines[header : header + 3]
    assert "NON-STRICT" in table[0] and "INFORMATIONAL" in table[0]  # full width, nothing cut
    assert not any("…" in line for line in table)
    assert "brk: 2 results: 1 PASS, 1 FAIL (1 FAIL unexpected)" in lines
    assert lines[-1].startswith("exit 1: 1 unexpected result(s) (1 FAIL) not listed in expected.yaml")
    # listed in expected.yaml: the same FAIL makes a green run, and the summary says why
    (targets / "brk" / "expected.yaml").write_text('mini-rsv: {outcome: FAIL, reason: "fixture"}\n')
    res = cli(*args, cwd=tmp_path)
    lines = res.stdout.splitlines()
    assert res.returncode == 0, res.stdout
    assert "brk: 2 results: 1 PASS, 1 FAIL (FAIL: all 1 listed in expected.yaml)" in lines
    assert lines[-1].startswith("exit 0: no unexpected result") and "1 known deviation(s)" in lines[-1]


def test_partial_and_stale_results(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text('{"schema": "wsconform.results/2", "results": [], "targets": []}')
    (tmp_path / "index.html").write_text("<p>an old report</p>")
    mark_in_progress(tmp_path, path)
    writer = ResultsWriter(path, command="x", selected=3)
    assert not path.exists()  # a stale results.json is gone the moment a run starts
    assert "a run is in progress" in (tmp_path / "index.html").read_text()
    writer.add_target({"name": "t"})
    writer.add({"case": "a", "target": "t", "outcome": "PASS", "duration_ms": 5})
    killed = assemble(path.with_suffix(".jsonl"), path)  # what `wsconform report x.jsonl` sees after SIGKILL
    assert (killed["complete"], killed["selected"], killed["recorded"]) == (False, 3, 1)
    doc = writer.close(stopped_by="interrupted")
    assert (doc["complete"], doc["stopped_by"], doc["results"][0]["t"] >= 0) == (False, "interrupted", True)
    index = render(load(path), tmp_path / "report", base=tmp_path).read_text()
    assert "is partial: 1 of 3 selected results (interrupted)" in index
    # version 1 files are still read, and count as complete
    old = tmp_path / "old.json"
    old.write_text(
        json.dumps({"schema": "wsconform.results/1", "results": [], "targets": [], "started": "x"})
    )
    assert load(old)["complete"] is True and load(old)["schema"] == "wsconform.results/2"


def test_report_headings_show_the_role_and_wall_time(tmp_path: Path) -> None:
    doc = {
        "schema": "wsconform.results/2", "started": "2026-01-01T00:00:00+00:00", "finished": None,
        "complete": True, "selected": 4, "recorded": 4, "wall_seconds": 3.5,
        "targets": [
            {"name": name, "implementation": "lib", "language": "python", "version": "1", "role": role}
            for name, role in (("lib", "server"), ("lib@client", "client"))
        ],
        "results": [
            {"case": f"c{i}", "family": "f", "target": t, "outcome": "PASS", "duration_ms": 1e3, "t": 1.0 + i}
            for i, t in enumerate(["lib", "lib", "lib@client", "lib@client"])
        ],
    }  # fmt: skip
    index = render(doc, tmp_path).read_text()
    for role in ("server", "client"):
        assert f'<small class="role">{role}</small>' in index
    assert "2.0 s</td>" in index  # lib: first case started at 0.0, last ended at 2.0 (not 2 x 1 s summed)
    assert "3.5 s" in index  # the run's wall time


def test_pytest_junit_layout_and_nothing_selected(pytester: pytest.Pytester, tmp_path: Path) -> None:
    root = mini_cases(pytester.path)
    junit = tmp_path / "j.xml"
    res = pytester.runpytest_subprocess(
        str(root),
        "--target-cmd",
        broken_cmd("ignore-rsv"),
        "--junitxml",
        str(junit),
        "--timeout-scale",
        "0.2",
    )
    res.assert_outcomes(passed=1, failed=1)
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"mini-echo[adhoc-server]", "mini-rsv[adhoc-server]"}  # case[target]
    assert {c.get("classname") for c in cases.values()} == {"mini"}  # the family
    assert "wsconform-result" not in junit.read_text() and junit.stat().st_size < 8000
    # wsconform options that select nothing: a usage error that says what was looked for
    res = pytester.runpytest_subprocess(str(root), "--target-cmd", broken_cmd(), "-k", "nothing-matches")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*(--target-cmd -k 'nothing-matches') but no wsconform case was selected*"])
    res = pytester.runpytest_subprocess(str(root), "--target", "no-such-target")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*unknown target 'no-such-target'*"])
    # plain pytest without wsconform options is untouched
    pytester.makepyfile(test_plain="def test_one():\n    assert True\n")
    res = pytester.runpytest_subprocess("test_plain.py")
    res.assert_outcomes(passed=1)
    assert res.ret == 0


def test_pytest_wsconform_cases_collects_the_installed_suite(pytester: pytest.Pytester) -> None:
    res = pytester.runpytest_subprocess(
        "--wsconform-cases",
        "--target-cmd",
        broken_cmd(),
        "-k",
        "text-len-125 and not chop",
        "-p",
        "no:cacheprovider",
    )
    res.assert_outcomes(passed=1)
    res.stdout.no_fnmatch_line("*no tests ran*")


def test_init_scaffold_runs_and_its_server_passes_framing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = tmp_path / "wsconform-targets"
    assert main(["init", "mylib", "--dir", str(parent)]) == 0
    assert main(["init", "mylib", "--dir", str(parent)]) == 2  # never overwrites
    assert main(["init", "both", "--role", "both", "--dir", str(parent)]) == 0
    folder = parent / "mylib"
    assert sorted(p.name for p in folder.iterdir()) == [
        "Dockerfile",
        "expected.yaml",
        "server.py",
        "target.yaml",
    ]
    assert (folder / "Dockerfile").read_text().splitlines()[5:7] == [
        "ARG BASE_IMAGE=debian:bookworm-slim", "FROM ${BASE_IMAGE}",
    ]  # fmt: skip
    assert "COPY server.py /app/" in (folder / "Dockerfile").read_text()
    assert "COPY server.py client.py /app/" in (parent / "both" / "Dockerfile").read_text()
    capsys.readouterr()
    results = tmp_path / "r" / "results.json"
    code = main(["run", "--targets-dir", str(parent), "--target", "mylib", "--family", "framing", "-j", "2",
                 "--results", str(results), "--no-report", "-q"])  # fmt: skip
    doc = json.loads(results.read_text())
    outcomes = {r["outcome"] for r in doc["results"]}
    assert code == 0 and "FAIL" not in outcomes and "ERROR" not in outcomes, capsys.readouterr().out
    assert len(doc["results"]) == 72
    # the client skeleton plays the contract too: echo cases pass, scenarios are UNIMPLEMENTED (127)
    code = main(["run", "--targets-dir", str(parent), "--target", "both", "-k", "text-len-125", "-k",
                 "api-close-999", "-j", "2", "--results", str(results), "--no-report", "-q"])  # fmt: skip
    by = {(r["case"], r["target"]): r["outcome"] for r in json.loads(results.read_text())["results"]}
    assert by[("text-len-125", "both@client")] == "PASS" and by[("text-len-125", "both")] == "PASS"
    assert by[("api-close-999-throws", "both@client")] == "UNIMPLEMENTED", by
