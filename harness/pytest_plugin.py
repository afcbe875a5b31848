"""pytest front end: YAML cases collected as items, one per (case, target).

Shaped like pytest's "Working with non-python tests" example: ``pytest_collect_file`` returns a
``pytest.File`` whose items run one case each through the engine. Under pytest-xdist every worker
opens its own target processes (own ports); results travel to the controller in
``user_properties`` and only the controller writes the results file and the report. The controller
takes them out of the report again before the JUnit writer sees it, so a JUnit file holds one
bounded ``<testcase>`` per item (named ``case[target]``, classname the family, as ``wsconform run
--junitxml`` writes it), not a result document per test.

``--wsconform-cases`` collects the suite installed with wsconform (``harness.bundled``), so a
library's own repository runs it with ``pytest --wsconform-cases --target-cmd ...``. When any
wsconform option is given and no wsconform item is left to run, the session is a usage error
(exit status 4) naming what was selected, instead of a quiet "no tests ran".
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import bundled
from harness.engine import CaseResult, applies, run_case
from harness.interop.expected import KnownFailure
from harness.model.loader import Case, CaseError, load_file
from harness.outcome import Outcome
from harness.pytest_interop import InteropFile, InteropItem, expected_for
from harness.pytest_interop import add_options as add_interop_options
from harness.results import ResultsWriter, load
from harness.suite import Selection, judge_expected, open_sessions
from harness.targets import adhoc
from harness.targets.session import TargetSession
from harness.text import printable

KEY = "wsconform-result"
TARGET_KEY = "wsconform-target"


_GROUP: list[Any] = []  # the option group, kept to tell later whether any wsconform option was given


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wsconform", "WebSocket conformance cases")
    _GROUP[:] = [group]
    group.addoption(
        "--wsconform-cases",
        action="store_true",
        help="also collect the case suite installed with wsconform (for a repository without cases/)",
    )
    group.addoption(
        "--target",
        action="append",
        default=[],
        metavar="NAME",
        help="target folder under targets/ (repeatable); default: every locally available one",
    )
    group.addoption(
        "--target-file", action="append", default=[], type=Path, metavar="PATH",
        help="a target.yaml (or its folder) from anywhere, run in addition to --target (repeatable)",
    )  # fmt: skip
    for flags, options in adhoc.option_specs():
        group.addoption(*flags, **options)
    group.addoption(
        "--targets-dir",
        metavar="DIR",
        help="where target folders live (default: <rootdir>/targets if it has any, else the installed ones)",
    )
    group.addoption("--results", metavar="PATH", help="write results.json (and results.jsonl) here")
    group.addoption("--report", metavar="DIR", help="render the HTML report into DIR at the end")
    group.addoption("--ws-strict", action="store_true", help="NON-STRICT outcomes fail too")
    group.addoption("--timeout-scale", type=float, default=1.0, help="multiply every case timeout")
    add_interop_options(group)
    group.addoption(
        "--runner",
        choices=("process", "docker"),
        help="run targets as local processes or in containers (default: per target, process when its "
        "runtime is here, else docker when Docker is usable)",
    )


class WsConform:
    """Per-process plugin state: target sessions (lazily started) and, on the controller, the writer."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        root = Path(str(config.rootpath))
        self.targets_root = Path(config.getoption("targets_dir") or _default_targets(root))
        results = config.getoption("results")
        report = config.getoption("report")
        if report and not results:
            results = str(Path(report) / "results.json")
        self.results_path = Path(results).resolve() if results else None
        self.report_dir = Path(report).resolve() if report else None
        out = self.results_path.parent if self.results_path else root / "reports" / "pytest"
        self.log_dir = out / "logs"
        self.trace_dir = out / "traces" if self.results_path else None
        try:
            declared = adhoc.declarations(config.getoption(adhoc.DEST))
        except adhoc.AdhocError as exc:
            raise pytest.UsageError(str(exc)) from exc
        self.selection = Selection(
            list(config.getoption("target")), adhoc=declared, files=list(config.getoption("target_file"))
        )
        self.run_dir = self.results_path.parent if self.results_path else None
        self._sessions: list[TargetSession] | None = None
        self._interop_expected: dict[tuple[str, str, str], KnownFailure] | None = None
        self.problems: list[str] = []
        self.writer: ResultsWriter | None = None
        self.selected: int | None = None  # wsconform items left after -k/-m, once collection is done
        self.pairs = 0  # interop items left after -k/-m
        self.controller = not hasattr(config, "workerinput")
        if self.results_path and self.controller:
            if self.report_dir is not None:
                from harness.report.render import mark_in_progress

                mark_in_progress(self.report_dir, self.results_path)
            command = shlex.join(["pytest", *sys.argv[1:]])
            self.writer = ResultsWriter(self.results_path, command=command)

    def options_given(self) -> list[str]:
        """The wsconform options on the command line (those that differ from their defaults)."""
        given = []
        for group in _GROUP:
            for opt in group.options:
                dest = opt.dest
                value = self.config.getoption(dest) if dest else None
                if value in (opt.attrs().get("default"), None, [], False):
                    continue
                if dest == adhoc.DEST:  # the ad-hoc options share one list of (tag, value) in order
                    tags = {t for t, _ in value}
                    const = opt.attrs().get("const")
                    tag = const[0] if const else getattr(opt.attrs().get("type"), "__name__", None)
                    if tag is not None and tag not in tags:
                        continue
                given.append(opt.names()[-1])
        return given

    @property
    def sessions(self) -> list[TargetSession]:
        if self._sessions is None:
            self._sessions, self.problems = open_sessions(
                self.selection,
                targets_root=self.targets_root,
                log_dir=self.log_dir,
                all_available=True,
                runner=self.config.getoption("runner"),
                run_dir=self.run_dir,
            )
        return self._sessions

    @property
    def interop_expected(self) -> dict[tuple[str, str, str], KnownFailure]:
        if self._interop_expected is None:
            self._interop_expected = expected_for(self.targets_root)
        return self._interop_expected

    def stop(self) -> None:
        for s in self._sessions or []:
            s.stop()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """On the controller (or a run without xdist): append each finished case to the results, then
        take the result out of ``user_properties`` (every phase's report carries them) so the JUnit
        writer, which runs after this hook, writes no result document per test case."""
        props = {k: str(v) for k, v in report.user_properties}
        if KEY not in props or not self.controller:
            return
        record = json.loads(props[KEY])
        report.user_properties = [(k, v) for k, v in report.user_properties if k not in (KEY, TARGET_KEY)]
        _junit_classname(self.config, report, str(record.get("family") or ""))
        if self.writer is None or report.when != "call":
            return
        self.writer.add_target(json.loads(props[TARGET_KEY]))
        self.writer.add(record)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """Under xdist the controller collects nothing itself: count the wsconform items a worker has."""
        if self.selected is None:  # interop pairs are not results.json records: counted apart
            pair = [".yaml::" in i and "->" in i.rsplit("[", 1)[-1] for i in ids]
            self.pairs = sum(pair)
            self.selected = sum(1 for i, p in zip(ids, pair, strict=True) if ".yaml::" in i and not p)
            if self.writer is not None:
                self.writer.set_selected(self.selected)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Under xdist (no UsageError from collection there): the same message, exit status 4."""
        if session.exitstatus == pytest.ExitCode.USAGE_ERROR:
            return  # collection raised it already, with the message
        nothing = self.selected == 0 and not self.pairs
        if self.controller and nothing and self.options_given() and not session.testsfailed:
            session.config.get_terminal_writer().line(f"ERROR: {self.nothing_selected()}", red=True)
            session.exitstatus = pytest.ExitCode.USAGE_ERROR

    def nothing_selected(self) -> str:
        paths = sorted({str(p) for p in self.config.args})
        where = ", ".join(paths) or str(self.config.invocation_params.dir)
        targets = ", ".join(s.name for s in self._sessions or []) or "none"
        problems = "".join(f"; {p}" for p in self.problems)
        opt = self.config.option
        filters = "".join(
            f" {flag} {value!r}" for flag, value in (("-k", opt.keyword), ("-m", opt.markexpr)) if value
        )
        return (
            f"wsconform options were given ({' '.join(self.options_given())}{filters}) but no wsconform "
            f"case was selected: looked for case files (*.yaml under a folder named cases) in {where}, "
            f"targets: {targets} (target folders: {self.targets_root}){problems}. Use --wsconform-cases "
            "for the installed suite, or check -k/-m and --target"
        )

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.stop()
        if self.writer is None or self.results_path is None:
            return
        done = self.writer.recorded
        complete = self.selected is None or done >= self.selected
        stopped = None if complete else f"the session ended after {done} of {self.selected} wsconform items"
        self.writer.close(stopped_by=stopped)
        if self.report_dir is not None:
            from harness.report.render import render

            render(load(self.results_path), self.report_dir, base=self.results_path.parent)


_STATE = pytest.StashKey[WsConform]()


def _default_targets(rootdir: Path) -> Path:
    """``<rootdir>/targets`` when it holds target folders (a repository that keeps its own there, as
    this one does), else the targets installed with wsconform."""
    local = rootdir / "targets"
    if any(local.glob("*/target.yaml")):
        return local
    try:
        return bundled.targets_dir()
    except bundled.BundleMissing:
        return local


def _junit_classname(config: pytest.Config, report: pytest.TestReport, family: str) -> None:
    """Give the item's JUnit <testcase> the family as classname, as ``wsconform run --junitxml`` does
    (pytest would derive ``cases.framing.sizes.yaml`` from the node id). A no-op without --junitxml."""
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pragma: no cover - a pytest without the private module: keep its names
        return
    xml = config.stash.get(xml_key, None)
    if xml is not None and family:
        xml.node_reporter(report).add_attribute("classname", family)


def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    """``--wsconform-cases``: the installed suite's folder becomes one more path to collect. Done on the
    raw arguments, before pytest turns them into collection paths."""
    if "--wsconform-cases" in args:
        try:
            args.append(str(bundled.cases_dir()))
        except bundled.BundleMissing as exc:
            raise pytest.UsageError(f"--wsconform-cases: {exc}") from exc


def pytest_configure(config: pytest.Config) -> None:
    state = WsConform(config)
    config.stash[_STATE] = state
    config.pluginmanager.register(state, "wsconform-state")
    config.addinivalue_line("markers", "wsconform: a YAML conformance case")
    config.addinivalue_line("markers", "server_role: a case against a server target")
    config.addinivalue_line("markers", "client_role: a case against a client target")
    config.addinivalue_line("markers", "interop: an interop scenario between a client and a server target")


def _cases_root(path: Path) -> Path | None:
    for parent in path.parents:
        if parent.name == "cases":
            return parent
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix != ".yaml" or "data" in file_path.parts:
        return None
    root = _cases_root(file_path)
    if root is None:
        return None
    if file_path.parent.name == "interop":  # scenarios: one item per (scenario, client, server)
        state = parent.config.stash[_STATE]
        which = parent.config.getoption("interop_scenarios")
        return InteropFile.from_parent(
            parent, path=file_path, sessions=state.sessions, which=which, expected=state.interop_expected
        )
    return CaseFile.from_parent(parent, path=file_path, cases_root=root)


def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash[_STATE]
    for problem in state.problems:
        session.config.get_terminal_writer().line(f"wsconform: {printable(problem)}", yellow=True)
    if hasattr(session.config, "workerinput"):
        return
    state.selected = sum(1 for item in session.items if isinstance(item, CaseItem))
    state.pairs = sum(1 for item in session.items if isinstance(item, InteropItem))
    if state.writer is not None:
        state.writer.set_selected(state.selected)
    if state.selected + state.pairs == 0 and state.options_given() and not session.testsfailed:
        raise pytest.UsageError(state.nothing_selected())


class CaseFile(pytest.File):
    def __init__(self, *, cases_root: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cases_root = cases_root

    def collect(self) -> Iterator[CaseItem]:
        state = self.config.stash[_STATE]
        try:
            cases = load_file(self.path, self.cases_root)
        except CaseError as exc:
            raise self.CollectError(str(exc)) from exc
        for case in cases:
            for target in state.sessions:
                if not applies(case, target):
                    continue
                item = CaseItem.from_parent(self, name=f"{case.id}[{target.name}]", case=case, target=target)
                for tag in case.model.tags:
                    marker = tag.replace("-", "_")
                    self.config.addinivalue_line("markers", f"{marker}: wsconform tag")
                    item.add_marker(marker)
                item.add_marker("wsconform")
                item.add_marker(f"{target.role}_role")  # -m client_role: the client targets' items
                yield item


class CaseFailed(Exception):
    def __init__(self, result: CaseResult, message: str) -> None:
        super().__init__(message)
        self.result = result
        self.message = message


class CaseItem(pytest.Item):
    def __init__(self, *, case: Case, target: TargetSession, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.target = target

    def runtest(self) -> None:
        state = self.config.stash[_STATE]
        result = run_case(
            self.case,
            self.target,
            data_dir=self.case_data_dir,
            trace_dir=state.trace_dir,
            timeout_scale=self.config.getoption("timeout_scale"),
        )
        self.user_properties.append((TARGET_KEY, json.dumps(self.target.info())))
        self.user_properties.append((KEY, json.dumps(result.record(), default=str)))
        grade = judge_expected(result, strict=self.config.getoption("ws_strict"))
        if grade.failed:
            raise CaseFailed(result, grade.message)
        if grade.xfail:
            pytest.xfail(grade.message)
        if result.outcome is Outcome.UNIMPLEMENTED:
            pytest.skip(f"UNIMPLEMENTED: {result.reason}")

    @property
    def case_data_dir(self) -> Path:
        parent = self.parent
        assert isinstance(parent, CaseFile)
        return parent.cases_root / "data"

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if not isinstance(excinfo.value, CaseFailed):
            return str(super().repr_failure(excinfo))
        r = excinfo.value.result
        lines = [
            f"{r.outcome}: {excinfo.value.message}",
            f"spec: {self.case.model.spec}",
            f"case ({self.case.file}:{self.case.line}):",
            self.case.source,
            "",
            "last frames:",
        ]
        events = (r.trace or {}).get("events", [])[-12:]
        lines += [_format_event(e) for e in events] or ["  (no frames)"]
        if r.trace_file:
            lines.append(f"trace: {r.trace_file}")
        if r.log.strip():
            lines += ["target log:", r.log.strip()[-2000:]]
        return printable("\n".join(lines))  # reasons and logs are the target's text: no raw escapes

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, f"{self.case.id} [{self.target.name}]"


def _format_event(e: dict[str, Any]) -> str:
    t = f"{e.get('t', 0) * 1000:9.2f} ms"
    if e.get("type") == "frame":
        flags = f"fin={int(e['fin'])} rsv={e['rsv']} mask={int(e['masked'])}"
        text = e.get("text")
        body = repr(text[:40]) if text is not None else e.get("hex", "")[:40]
        viol = f"  !! {', '.join(e['violations'])}" if e.get("violations") else ""
        return f"  {t} {e['dir']:>3} {e['name']:<12} {flags} len={e['length']} {body}{viol}"
    extra = {k: v for k, v in e.items() if k not in ("t", "dir", "type")}
    return f"  {t} {e['dir']:>3} {e['type']} {extra if extra else ''}"
