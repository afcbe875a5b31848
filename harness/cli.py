"""``wsconform`` command line: run cases, validate and list them, list targets, render reports.

It holds no logic the pytest plugin lacks: cases come from ``model.loader``, targets from
``suite.open_sessions``, results from ``engine.run_case`` and are graded by ``suite.judge_expected``.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shlex
import signal
import sys
import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.engine import CaseResult, applies
from harness.model.loader import Case, load_all
from harness.outcome import Outcome
from harness.results import ResultsWriter, load
from harness.scheduler import run_all
from harness.suite import Selection, judge_expected, open_sessions
from harness.targets import adhoc, availability
from harness.targets.session import TargetSession
from harness.targets.spec import RunnerKind, TargetError, TargetSpec, load_targets

console = Console(highlight=False)
OUTCOME_STYLE = {
    "PASS": "green",
    "NON-STRICT": "yellow",
    "INFORMATIONAL": "cyan",
    "UNIMPLEMENTED": "dim",
    "FAIL": "bold red",
    "ERROR": "bold magenta",
}


def _cases_or_exit(root: Path) -> list[Case]:
    cases, errors = load_all(root)
    for err in errors:
        console.print(f"[red]error[/red] {escape(str(err))}")
    if errors:
        sys.exit(2)
    return cases


def _select(
    cases: list[Case], patterns: list[str], families: list[str], tags: list[str], autobahn_only: bool = False
) -> list[Case]:
    out = [c for c in cases if c.model.autobahn] if autobahn_only else cases
    if families:
        out = [c for c in out if c.family in families]
    if tags:
        out = [c for c in out if set(tags) & set(c.model.tags)]
    if patterns:
        out = [c for c in out if any(fnmatch.fnmatch(c.id, p) or p in c.id for p in patterns)]
    return out


def cmd_run(args: argparse.Namespace) -> int:
    cases = _select(_cases_or_exit(args.cases), args.case, args.family, args.tag, args.autobahn)
    results_path: Path = args.results.resolve()
    out_dir = results_path.parent
    try:
        declared = adhoc.declarations(args.wsconform_adhoc)
    except adhoc.AdhocError as exc:
        console.print(f"[red]error[/red] {escape(str(exc))}")
        return 2
    sessions, problems = open_sessions(
        Selection(args.target, adhoc=declared, files=args.target_file),
        targets_root=args.targets_dir,
        log_dir=out_dir / "logs",
        all_available=False,
        runner=args.runner,
        run_dir=out_dir,
    )
    for problem in problems:
        console.print(f"[red]error[/red] {problem}")
    if problems or not sessions:
        return 2
    writer = ResultsWriter(results_path, command=shlex.join(["wsconform", *sys.argv[1:]]))
    total = sum(1 for s in sessions for c in cases if applies(c, s))
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    failures: list[str] = []
    interrupted = False
    stop = threading.Event()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=args.quiet,
    ) as progress:
        task = progress.add_task("running", total=total)

        def on_start(case: Case, session: TargetSession) -> None:
            progress.update(task, description=f"{session.name} {case.id}")
            writer.add_target(session.info())

        def on_result(result: CaseResult, session: TargetSession) -> None:
            writer.add(result.record())
            counts[(result.target, result.case.family)][str(result.outcome)] += 1
            grade = judge_expected(result, strict=args.ws_strict)
            if grade.failed:
                failures.append(f"{result.target} {result.case.nodeid}: {result.outcome}: {grade.message}")
                if args.verbose:
                    progress.console.print(
                        f"[red]{result.outcome}[/red] {result.target} {result.case.id}: {grade.message}"
                    )
            progress.advance(task)

        try:
            run_all(
                cases,
                sessions,
                jobs=args.jobs,
                data_dir=args.cases / "data",
                trace_dir=out_dir / "traces",
                timeout_scale=args.timeout_scale,
                on_start=on_start,
                on_result=on_result,
                stop=stop,
            )
        except KeyboardInterrupt:
            interrupted = True
            console.print("[yellow]interrupted: keeping the results that finished[/yellow]")
        finally:
            for s in sessions:
                s.stop()
            doc = writer.close()
    _summary(counts)
    for line in failures[:50]:
        console.print(f"[red]✗[/red] {line}")
    if len(failures) > 50:
        console.print(f"… and {len(failures) - 50} more")
    _publish(doc, results_path, args)
    if interrupted:
        return 130
    return 1 if failures else 0


def _publish(doc: dict[str, Any], results_path: Path, args: argparse.Namespace) -> None:
    """The end of `run` and `serve` (and serve's ``/report``): say where results went, write the HTML
    report and the exports the options ask for."""
    out_dir = results_path.parent
    console.print(f"results: {results_path} ({len(doc['results'])} results)")
    report_dir = args.report.resolve() if args.report else out_dir
    if not args.no_report:
        from harness.report.render import render

        index = render(doc, report_dir, base=out_dir)
        console.print(f"report: {index}")
    from harness.report.exports import write_exports

    for path in write_exports(
        doc,
        base=out_dir,
        report_dir=report_dir,
        junitxml=args.junitxml,
        markdown=args.markdown,
        autobahn_index=args.autobahn_index,
        strict=args.ws_strict,
    ):
        console.print(f"wrote {path}")


def cmd_serve(args: argparse.Namespace) -> int:
    """Keep the server-mode peer listening for clients the harness does not start (docs/serve.md)."""
    from harness.serve import ServeServer, left_out_because, run_until_stopped, serve_selection
    from harness.targets.runners import TargetUnavailable, ensure_loopback

    try:
        ensure_loopback(args.host)
    except TargetUnavailable as exc:
        console.print(f"[red]error[/red] --host {exc}")
        return 2
    cases, left_out = serve_selection(_select(_cases_or_exit(args.cases), args.case, args.family, args.tag))
    for c in left_out:
        console.print(f"[dim]left out {c.id}: it {left_out_because(c)}[/dim]", soft_wrap=True)
    if not cases:
        console.print("[red]error[/red] no client-role case matches the selection")
        return 2
    results_path: Path = args.results.resolve()
    writer = ResultsWriter(results_path, command=shlex.join(["wsconform", *sys.argv[1:]]))
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    failures: list[str] = []

    def on_result(result: CaseResult) -> None:
        counts[(result.target, result.case.family)][str(result.outcome)] += 1
        grade = judge_expected(result, strict=args.ws_strict)
        if grade.failed:
            failures.append(f"{result.target} {result.case.nodeid}: {result.outcome}: {grade.message}")
        style = OUTCOME_STYLE[str(result.outcome)]
        console.print(
            f"[{style}]{result.outcome}[/{style}] {escape(result.target)} {result.case.id} "
            f"[dim]{result.duration_ms:.0f} ms[/dim]: {escape(result.reason)}",
            soft_wrap=True,
        )

    host = f"[{args.host}]" if ":" in args.host else args.host

    def on_ready(port: int) -> None:
        console.print(
            f"serving {len(cases)} client-role cases on ws://{host}:{port}/ (port {port}); "
            f"open http://{host}:{port}/ in a browser to run them all; Ctrl-C ends and writes the report",
            soft_wrap=True,
        )

    server = ServeServer(
        cases,
        data_dir=args.cases / "data",
        trace_dir=results_path.parent / "traces",
        writer=writer,
        timeout_scale=args.timeout_scale,
        until_done=args.until_done,
        on_result=on_result,
        publish=lambda doc: _publish(doc, results_path, args),
    )
    try:
        run_until_stopped(server, args.host, args.port, on_ready)
    except OSError as exc:
        console.print(f"[red]error[/red] cannot listen on {host}:{args.port}: {exc}")
        return 2
    finally:
        doc = writer.close()
    if server.finished_by is not None:
        console.print(f"every selected case ran for {server.finished_by}@client (--until-done): stopping")
    _summary(counts)
    for line in failures[:50]:
        console.print(f"[red]✗[/red] {escape(line)}")
    _publish(doc, results_path, args)
    return 1 if failures else 0


def _summary(counts: dict[tuple[str, str], Counter[str]]) -> None:
    outcomes = [str(o) for o in Outcome]
    table = Table(title="wsconform results")
    table.add_column("target")
    table.add_column("family")
    for o in outcomes:
        table.add_column(o, justify="right", style=OUTCOME_STYLE[o])
    for (target, family), c in sorted(counts.items()):
        table.add_row(target, family, *[str(c[o]) if c[o] else "" for o in outcomes])
    console.print(table)


def cmd_cases_validate(args: argparse.Namespace) -> int:
    cases = _cases_or_exit(args.cases)
    console.print(f"[green]ok[/green] {len(cases)} cases in {len({c.file for c in cases})} files")
    return 0


def cmd_cases_list(args: argparse.Namespace) -> int:
    cases = _select(_cases_or_exit(args.cases), args.case, args.family, args.tag)
    if args.counts:
        per_family = Counter(c.family for c in cases)
        table = Table(title=f"{len(cases)} cases")
        table.add_column("family")
        table.add_column("cases", justify="right")
        table.add_column("with Autobahn id", justify="right")
        for fam in sorted(per_family):
            with_ab = sum(1 for c in cases if c.family == fam and c.model.autobahn)
            table.add_row(fam, str(per_family[fam]), str(with_ab))
        console.print(table)
        return 0
    for c in cases:
        ab = f" [dim](autobahn {c.model.autobahn})[/dim]" if c.model.autobahn else ""
        console.print(f"{c.nodeid}  {c.model.title}{ab}")
    return 0


def cmd_cases_autobahn(args: argparse.Namespace) -> int:
    from harness.coverage import autobahn_ids, coverage, render_markdown

    cases = _cases_or_exit(args.cases)
    ids = autobahn_ids(args.ids)
    missing = [ab for ab, found in coverage(cases, ids).items() if not found]
    if args.write:
        comparison = args.comparison.read_text(encoding="utf-8") if args.comparison.is_file() else ""
        args.write.write_text(render_markdown(cases, ids, comparison), encoding="utf-8")
        console.print(f"wrote {args.write}")
    console.print(f"{len(ids) - len(missing)} of {len(ids)} Autobahn cases covered")
    if missing:
        console.print(f"[red]missing[/red]: {', '.join(missing)}")
    return 1 if missing else 0


def cmd_targets_list(args: argparse.Namespace) -> int:
    try:
        specs = load_targets(args.targets_dir)
    except TargetError as exc:
        console.print(f"[red]error[/red] {exc}")
        return 2
    table = Table(title="targets")
    for col in ("name", "implementation", "language", "roles (runners)", "local here", "docker here"):
        table.add_column(col)
    for name, spec in specs.items():
        roles = []
        for role, rs in spec.roles.items():
            kinds = spec.runners(role) + (["browser"] if getattr(rs, "browser", None) else [])
            roles.append(f"{role} ({', '.join(kinds)})")
        table.add_row(
            name, spec.implementation, spec.language, ", ".join(roles),
            _availability(spec, "process"), _availability(spec, "docker"),
        )  # fmt: skip
    console.print(table)
    return 0


def _availability(spec: TargetSpec, runner: RunnerKind) -> str:
    """``yes``, ``no (why)``, or ``-`` when target.yaml offers no such runner."""
    if runner == "process" and any(rs.browser is not None for rs in spec.roles.values()):
        problem = availability.runner_problem(spec, "browser")  # a browser target runs locally too
        return f"[red]no[/red] ({escape(problem)})" if problem else "[green]yes[/green] (browser)"
    if not any(runner in spec.runners(r) for r in spec.roles):
        return "[dim]-[/dim]"
    problem = availability.runner_problem(spec, runner)
    if problem:
        return f"[red]no[/red] ({escape(problem)})"
    if runner == "docker":
        from harness.targets.docker.images import built_image

        built = all(built_image(spec, f) for f in _dockerfiles(spec))
        return "[green]yes[/green] " + ("(image built)" if built else "(image not built yet)")
    return "[green]yes[/green]"


def _named_targets(args: argparse.Namespace) -> dict[str, TargetSpec] | None:
    """The target folders, after checking the names given on the command line (None: error printed)."""
    try:
        specs = load_targets(args.targets_dir)
    except TargetError as exc:
        console.print(f"[red]error[/red] {exc}")
        return None
    unknown = [n for n in args.names if n not in specs]
    if unknown:
        console.print(f"[red]error[/red] unknown target(s) {', '.join(unknown)}; known: {', '.join(specs)}")
        return None
    return specs


def _dockerfiles(spec: TargetSpec) -> list[str]:
    return sorted({rs.docker.dockerfile for rs in spec.roles.values() if rs.docker is not None})


def cmd_targets_build(args: argparse.Namespace) -> int:
    """Build container images ahead of a run; an unchanged target is "cached" (its tag exists)."""
    from harness.targets.docker.daemon import docker_problem
    from harness.targets.docker.images import ensure_image
    from harness.targets.runners import TargetUnavailable

    specs = _named_targets(args)
    if specs is None:
        return 2
    problem = docker_problem()
    if problem:
        console.print(f"[red]docker: {escape(problem)}[/red]")
        return 1
    names = args.names or [n for n, s in specs.items() if any("docker" in s.runners(r) for r in s.roles)]
    failed = 0
    for name in names:
        spec = specs[name]
        files = _dockerfiles(spec)
        if not files:
            console.print(f"{name}: no docker runner in target.yaml")
        for dockerfile in files:
            log_path = args.log_dir / f"{name}.build.log"
            try:
                built = ensure_image(spec, dockerfile, log_path)
            except TargetUnavailable as exc:
                failed += 1
                console.print(f"[red]{escape(name)}: {escape(str(exc))}[/red] (log: {log_path})")
                continue
            how = "cached" if built.cached else f"built in {built.seconds:.1f} s"
            console.print(f"{name}: {built.tag} {how}")
    return 1 if failed else 0


def cmd_targets_setup(args: argparse.Namespace) -> int:
    """Run targets' ``setup:`` (``npm ci``...) ahead of time; a run would otherwise do it on first use."""
    from harness.targets.runners import TargetUnavailable
    from harness.targets.setup import run_setup, setup_argv

    specs = _named_targets(args)
    if specs is None:
        return 2
    names = args.names or [n for n, s in specs.items() if s.setup is not None]
    failed = 0
    for name in names:
        spec = specs[name]
        if spec.setup is None:
            console.print(f"{name}: no set-up needed")
            continue
        command = shlex.join(setup_argv(spec.setup))
        log_path = args.log_dir / f"{name}.setup.log"
        try:
            took = run_setup(spec, log_path)
        except TargetUnavailable as exc:
            failed += 1
            console.print(f"[red]{escape(name)}: {escape(str(exc))}[/red]")
            continue
        if took is None:
            console.print(f"{name}: already set up ({spec.setup.creates} exists)")
        else:
            console.print(f"{name}: `{escape(command)}` done in {took:.1f} s (log: {log_path})")
    return 1 if failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.diff import compare
    from harness.report.exports import write_exports
    from harness.report.model import load_many
    from harness.report.render import render

    try:
        doc = load_many(args.results)
        baseline = load(args.baseline) if args.baseline else None  # outcomes only: no trace paths
    except (OSError, ValueError) as exc:
        console.print(f"[red]error[/red] {exc}")
        return 2
    output: Path = args.output.resolve()
    index = render(doc, output, baseline=baseline)
    console.print(f"report: {index}")
    for path in write_exports(
        doc,
        base=Path.cwd(),
        report_dir=output,
        junitxml=args.junitxml,
        markdown=args.markdown,
        autobahn_index=args.autobahn_index,
        strict=args.ws_strict,
        diff=compare(baseline, doc) if baseline is not None else None,
    ):
        console.print(f"wrote {path}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from harness.report.diff import compare, print_diff

    try:
        old, new = load(args.old), load(args.new)
    except (OSError, ValueError) as exc:
        console.print(f"[red]error[/red] {exc}")
        return 2
    diff = compare(old, new)
    print_diff(diff, console)
    return 1 if diff.regressions else 0


def _export_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--junitxml", type=Path, metavar="PATH", help="also write JUnit XML here")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="also write a Markdown summary here")
    parser.add_argument(
        "--autobahn-index", type=Path, metavar="PATH", help="also write an Autobahn-shaped index.json here"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsconform", description="WebSocket conformance and interop harness"
    )
    parser.add_argument("--cases", type=Path, default=Path("cases"), help="cases folder (default: ./cases)")
    parser.add_argument(
        "--targets-dir", type=Path, default=Path("targets"), help="targets folder (default: ./targets)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run cases against targets and write results and a report")
    run.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME",
        help="target folder name (repeatable; default: websockets)",
    )
    run.add_argument(
        "--target-file", action="append", default=[], type=Path, metavar="PATH",
        help="a target.yaml (or its folder) from anywhere, run in addition to --target (repeatable)",
    )  # fmt: skip
    for flags, options in adhoc.option_specs():
        run.add_argument(*flags, **options)
    run.add_argument(
        "-k", "--case", action="append", default=[], metavar="PATTERN", help="case id glob or substring"
    )
    run.add_argument("--family", action="append", default=[], help="only this family (repeatable)")
    run.add_argument("--tag", action="append", default=[], help="only cases with this tag (repeatable)")
    run.add_argument("--autobahn", action="store_true", help="only the cases equivalent to an Autobahn case")
    run.add_argument("--results", type=Path, default=Path("reports/latest/results.json"))
    run.add_argument("--report", type=Path, help="HTML report folder (default: beside the results)")
    run.add_argument("--no-report", action="store_true")
    run.add_argument("--ws-strict", action="store_true", help="NON-STRICT outcomes fail the run")
    run.add_argument("--timeout-scale", type=float, default=1.0)
    run.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="parallel workers, each with its own target process (default: CPU count)",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="print each failure as it happens")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--runner",
        choices=("process", "docker"),
        help="run named targets as local processes or in containers (default: process when the "
        "runtime is here, else docker)",
    )
    _export_options(run)
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser(
        "serve", help="keep the server-mode peer running for a client the harness does not start"
    )
    serve.add_argument("--port", type=int, default=9001, help="0 picks a free port and prints it")
    serve.add_argument("--host", default="127.0.0.1", help="a loopback address (anything else is refused)")
    serve.add_argument(
        "-k", "--case", action="append", default=[], metavar="PATTERN", help="case id glob or substring"
    )
    serve.add_argument("--family", action="append", default=[], help="only this family (repeatable)")
    serve.add_argument("--tag", action="append", default=[], help="only cases with this tag (repeatable)")
    serve.add_argument("--results", type=Path, default=Path("reports/serve/results.json"))
    serve.add_argument("--report", type=Path, help="HTML report folder (default: beside the results)")
    serve.add_argument("--no-report", action="store_true")
    serve.add_argument(
        "--until-done", action="store_true", help="stop once one agent has run every selected case"
    )
    serve.add_argument("--ws-strict", action="store_true", help="NON-STRICT outcomes fail the run")
    serve.add_argument("--timeout-scale", type=float, default=1.0)
    _export_options(serve)
    serve.set_defaults(func=cmd_serve)

    cases = sub.add_parser("cases", help="validate or list cases")
    cases_sub = cases.add_subparsers(dest="cases_command", required=True)
    cases_sub.add_parser("validate", help="check every case file").set_defaults(func=cmd_cases_validate)
    lst = cases_sub.add_parser("list", help="list cases, or count them per family")
    lst.add_argument("--counts", action="store_true")
    lst.add_argument("-k", "--case", action="append", default=[])
    lst.add_argument("--family", action="append", default=[])
    lst.add_argument("--tag", action="append", default=[])
    lst.set_defaults(func=cmd_cases_list)

    ab = cases_sub.add_parser("autobahn", help="Autobahn|Testsuite coverage (categories 1-7, 9, 10)")
    ab.add_argument("--ids", type=Path, default=Path("docs/autobahn-case-ids.txt"))
    ab.add_argument("--write", type=Path, help="write the coverage table (markdown) here")
    ab.add_argument(
        "--comparison",
        type=Path,
        default=Path("docs/autobahn-comparison.md"),
        help="markdown appended to the table (the oracle comparison), if the file exists",
    )
    ab.set_defaults(func=cmd_cases_autobahn)

    targets = sub.add_parser("targets", help="list targets")
    targets_sub = targets.add_subparsers(dest="targets_command", required=True)
    targets_sub.add_parser("list", help="targets, roles, runners, availability").set_defaults(
        func=cmd_targets_list
    )
    build = targets_sub.add_parser("build", help="build container images now (unchanged ones are cached)")
    build.add_argument("names", nargs="*", metavar="NAME", help="targets (default: every one with docker)")
    build.add_argument("--log-dir", type=Path, default=Path("reports/latest/logs"), help="build output")
    build.set_defaults(func=cmd_targets_build)
    setup = targets_sub.add_parser(
        "setup", help="run targets' set-up (e.g. npm ci) now instead of on first use"
    )
    setup.add_argument("names", nargs="*", metavar="NAME", help="targets (default: every one with a set-up)")
    setup.add_argument("--log-dir", type=Path, default=Path("reports/latest/logs"), help="where output goes")
    setup.set_defaults(func=cmd_targets_setup)

    report = sub.add_parser("report", help="render HTML from one or more results files (later files win)")
    report.add_argument("results", type=Path, nargs="+", help="results.json (or an interrupted run's .jsonl)")
    report.add_argument("-o", "--output", type=Path, default=Path("reports/report"))
    report.add_argument(
        "--baseline", type=Path, metavar="OLD", help="results to compare with: regressions, fixes, new cases"
    )
    report.add_argument(
        "--ws-strict", action="store_true", help="NON-STRICT counts as a failure in the JUnit XML"
    )
    _export_options(report)
    report.set_defaults(func=cmd_report)

    diff = sub.add_parser("diff", help="compare two results files; exit 1 on any regression")
    diff.add_argument("old", type=Path)
    diff.add_argument("new", type=Path)
    diff.set_defaults(func=cmd_diff)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # same clean stop as Ctrl-C: results kept, targets stopped
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
