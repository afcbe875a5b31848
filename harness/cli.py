"""``wsconform`` command line: run cases, validate and list them, list targets, render reports.

It holds no logic the pytest plugin lacks: cases come from ``catalog`` (the bundled suite unless
``--cases`` says otherwise), targets from ``suite.open_sessions``, results from ``engine.run_case``
and are graded by ``suite.judge_expected``. What it prints goes through ``terminal.Out``: never rich
markup built from target text, plain lines and tables when stdout is not a terminal. Anything that
would select nothing (no such folder, no matching case, no applicable target) is exit status 2 with
a message saying what was looked for where.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from harness import bundled
from harness.catalog import Catalog, CatalogError, Filter, case_roots, select
from harness.catalog import load as load_catalog
from harness.engine import CaseResult, applies
from harness.model.loader import Case
from harness.outcome import Outcome
from harness.results import ResultsWriter, load
from harness.run_summary import RunTally
from harness.scheduler import run_all
from harness.suite import Selection, open_sessions
from harness.targets import adhoc, availability
from harness.targets.session import TargetSession
from harness.targets.spec import RunnerKind, TargetError, TargetSpec, load_targets
from harness.terminal import Column, Out, RunProgress

out = Out()
console = out.console
OUTCOMES = [str(o) for o in Outcome]
OUTCOME_STYLE = {
    "PASS": "green",
    "NON-STRICT": "yellow",
    "INFORMATIONAL": "cyan",
    "UNIMPLEMENTED": "dim",
    "FAIL": "bold red",
    "ERROR": "bold magenta",
}

# Cases mostly wait on the target (its reaction, a pause, a close timeout), not on the CPU: the default
# run used 40 s of CPU in 57 s with one worker per core, and 25-28 s wall with three (README, Speed).
DEFAULT_JOBS = 3 * (os.cpu_count() or 1)


def _catalog(args: argparse.Namespace) -> Catalog:
    """The cases of ``--cases`` (default: the bundled suite) plus every ``--extra-cases`` folder."""
    return load_catalog(case_roots(args.cases, args.extra_cases))


def _filter(args: argparse.Namespace) -> Filter:
    return Filter(
        patterns=args.case, families=args.family, tags=args.tag,
        autobahn=getattr(args, "autobahn", False), cites=getattr(args, "cites", []),
    )  # fmt: skip


def _by_root(catalog: Catalog, cases: list[Case]) -> list[tuple[Path, list[Case]]]:
    """The selection split per cases folder, in order: each folder's ``data/`` serves its own cases."""
    groups: dict[Path, list[Case]] = {root: [] for root in catalog.roots}
    for case in cases:
        groups[catalog.root_of[case.id]].append(case)
    return [(root, group) for root, group in groups.items() if group]


def cmd_run(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    cases = select(catalog, _filter(args))
    results_path: Path = args.results.resolve()
    out_dir = results_path.parent
    try:
        declared = adhoc.declarations(args.wsconform_adhoc)
    except adhoc.AdhocError as exc:
        out.error(str(exc))
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
        out.error(problem)
    if problems or not sessions:
        if args.target:
            out.line(f"(target folders are read from {args.targets_dir}; --targets-dir DIR changes it)")
        for s in sessions:
            s.stop()
        return 2
    total = sum(1 for s in sessions for c in cases if applies(c, s))
    if total == 0:
        roles = ", ".join(sorted({f"{s.name} ({s.role})" for s in sessions}))
        out.error(
            f"none of the {len(cases)} selected cases applies to {roles}: the selection has only "
            f"{'/'.join(sorted({c.model.role for c in cases}))}-role cases"
        )
        return 2
    report_dir = args.report.resolve() if args.report else out_dir
    if not args.no_report:
        from harness.report.render import mark_in_progress

        mark_in_progress(report_dir, results_path)
    writer = ResultsWriter(results_path, command=shlex.join(["wsconform", *sys.argv[1:]]), selected=total)
    tally = RunTally(strict=args.ws_strict)
    interrupted = False
    stop = threading.Event()
    with RunProgress(out, total, OUTCOMES, enabled=not args.quiet, every=args.progress_every) as progress:

        def on_start(case: Case, session: TargetSession) -> None:
            progress.started_case(f"{session.name} {case.id}")
            writer.add_target(session.info())

        def on_result(result: CaseResult, session: TargetSession) -> None:
            writer.add(result.record())
            grade = tally.add(result)
            if grade.failed and args.verbose:
                out.line((str(result.outcome), "red"), f" {result.target} {result.case.id}: {grade.message}")
            progress.finished_case(str(result.outcome), grade.failed)

        try:
            for root, group in _by_root(catalog, cases):
                run_all(
                    group,
                    sessions,
                    jobs=args.jobs,
                    data_dir=root / "data",
                    trace_dir=out_dir / "traces",
                    timeout_scale=args.timeout_scale,
                    on_start=on_start,
                    on_result=on_result,
                    stop=stop,
                    processes=True,
                )
                if stop.is_set():
                    break
        except KeyboardInterrupt:
            interrupted = True
            out.line(("interrupted: keeping the results that finished", "yellow"))
        finally:
            for s in sessions:
                s.stop()
            doc = writer.close(stopped_by="interrupted" if interrupted else None)
    _summary(tally)
    code = 130 if interrupted else tally.exit_code()
    _publish(doc, results_path, args)
    out.line(tally.exit_reason(code, selected=total))
    return code


def _publish(doc: dict[str, Any], results_path: Path, args: argparse.Namespace) -> None:
    """The end of `run` and `serve` (and serve's ``/report``): say where results went, write the HTML
    report and the exports the options ask for."""
    out_dir = results_path.parent
    partial = "" if doc.get("complete", True) else ", partial"
    out.line(f"results: {results_path} ({len(doc['results'])} results{partial})")
    report_dir = args.report.resolve() if args.report else out_dir
    if not args.no_report:
        from harness.report.render import render

        index = render(doc, report_dir, base=out_dir)
        out.line(f"report: {index}")
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
        out.line(f"wrote {path}")


def cmd_serve(args: argparse.Namespace) -> int:
    """Keep the server-mode peer listening for clients the harness does not start (docs/serve.md)."""
    from harness.serve import ServeServer, left_out_because, run_until_stopped, serve_selection
    from harness.targets.runners import TargetUnavailable, ensure_loopback

    try:
        ensure_loopback(args.host)
    except TargetUnavailable as exc:
        out.error(f"--host {exc}")
        return 2
    catalog = _catalog(args)
    cases, left_out = serve_selection(select(catalog, _filter(args)))
    for c in left_out:
        out.line((f"left out {c.id}: it {left_out_because(c)}", "dim"))
    if not cases:
        out.error(f"no client-role case matches {_filter(args).describe()} in {catalog.describe()}")
        return 2
    results_path: Path = args.results.resolve()
    writer = ResultsWriter(results_path, command=shlex.join(["wsconform", *sys.argv[1:]]))
    tally = RunTally(strict=args.ws_strict)

    def on_result(result: CaseResult) -> None:
        tally.add(result)
        outcome = str(result.outcome)
        out.line(
            (outcome, OUTCOME_STYLE[outcome]), f" {result.target} {result.case.id} ",
            (f"{result.duration_ms:.0f} ms", "dim"), f": {result.reason}",
        )  # fmt: skip

    host = f"[{args.host}]" if ":" in args.host else args.host

    def on_ready(port: int) -> None:
        out.line(
            f"serving {len(cases)} client-role cases on ws://{host}:{port}/ (port {port}); "
            f"open http://{host}:{port}/ in a browser to run them all; Ctrl-C ends and writes the report"
        )

    server = ServeServer(
        cases,
        data_dir=catalog.roots[0] / "data",
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
        out.error(f"cannot listen on {host}:{args.port}: {exc}")
        return 2
    finally:
        doc = writer.close()
    if server.finished_by is not None:
        out.line(f"every selected case ran for {server.finished_by}@client (--until-done): stopping")
    _summary(tally)
    _publish(doc, results_path, args)
    code = tally.exit_code()
    out.line(tally.exit_reason(code))
    return code


def _summary(tally: RunTally) -> None:
    """Counts per target and family, each target's line (unexpected vs listed), the first failures."""
    rows = [
        [target, family, *[str(c[o]) if c[o] else "" for o in OUTCOMES]]
        for (target, family), c in sorted(tally.families.items())
    ]
    columns = [Column("target"), Column("family")]
    columns += [Column(o, numeric=True, style=OUTCOME_STYLE[o]) for o in OUTCOMES]
    out.table("wsconform results", columns, rows)
    for line in tally.target_lines():
        out.line(line)
    for failure in tally.failures[:50]:
        out.line(("✗", "red"), " ", failure.line())
    if len(tally.failures) > 50:
        out.line(f"… and {len(tally.failures) - 50} more unexpected results (all in results.json)")


def cmd_cases_validate(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    files = len({(catalog.root_of[c.id], c.file) for c in catalog.cases})
    out.line(("ok", "green"), f" {len(catalog.cases)} cases in {files} files ({catalog.describe()})")
    return 0


def case_entry(case: Case, root: Path) -> dict[str, object]:
    """A case as ``cases list --json`` gives it."""
    from harness.model.citations import citations

    m = case.model
    return {
        "id": case.id, "nodeid": case.nodeid, "family": case.family, "file": case.file,
        "path": str(root / case.file), "line": case.line, "title": m.title, "role": m.role,
        "spec": m.spec, "sections": [f"RFC {r} §{s}" if r else f"§{s}" for r, s in citations(m.spec) if s],
        "tags": list(m.tags), "autobahn": m.autobahn,
    }  # fmt: skip


def cmd_cases_list(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    cases = select(catalog, _filter(args))
    if args.json:
        print(json.dumps([case_entry(c, catalog.root_of[c.id]) for c in cases], indent=1))
        return 0
    if args.counts:
        per_family = Counter(c.family for c in cases)
        rows = [
            [fam, str(n), str(sum(1 for c in cases if c.family == fam and c.model.autobahn))]
            for fam, n in sorted(per_family.items())
        ]
        columns = [Column("family"), Column("cases", numeric=True), Column("with Autobahn id", numeric=True)]
        out.table(f"{len(cases)} cases", columns, rows)
        return 0
    for c in cases:  # one case per line, never wrapped: grep and wc -l work on it
        ab = f" (autobahn {c.model.autobahn})" if c.model.autobahn else ""
        out.line(f"{c.nodeid}  {c.model.title}", (ab, "dim"))
    return 0


def cmd_cases_autobahn(args: argparse.Namespace) -> int:
    from harness.coverage import autobahn_ids, coverage, render_markdown

    cases = _catalog(args).cases
    ids_path = args.ids or bundled.doc("autobahn-case-ids.txt")
    comparison_path = args.comparison or bundled.doc("autobahn-comparison.md")
    ids = autobahn_ids(ids_path)
    missing = [ab for ab, found in coverage(cases, ids).items() if not found]
    if args.write:
        comparison = comparison_path.read_text(encoding="utf-8") if comparison_path.is_file() else ""
        args.write.write_text(render_markdown(cases, ids, comparison), encoding="utf-8")
        out.line(f"wrote {args.write}")
    out.line(f"{len(ids) - len(missing)} of {len(ids)} Autobahn cases covered ({ids_path})")
    if missing:
        out.line(("missing", "red"), f": {', '.join(missing)}")
    return 1 if missing else 0


def _role_runners(spec: TargetSpec) -> dict[str, list[str]]:
    return {
        role: [*spec.runners(role), *(["browser"] if getattr(rs, "browser", None) else [])]
        for role, rs in spec.roles.items()
    }


def target_entry(spec: TargetSpec) -> dict[str, Any]:
    """A target as ``targets list --json`` gives it: roles with their runners, and what runs here."""
    return {
        "name": spec.name, "implementation": spec.implementation, "language": spec.language,
        "folder": str(spec.directory), "roles": _role_runners(spec),
        "process": _availability(spec, "process"), "docker": _availability(spec, "docker"),
        "expected_deviations": len(spec.expected),
    }  # fmt: skip


def cmd_targets_list(args: argparse.Namespace) -> int:
    specs = _load_targets(args)
    if specs is None:
        return 2
    if args.json:
        print(json.dumps([target_entry(spec) for spec in specs.values()], indent=1))
        return 0
    rows = []
    for name, spec in specs.items():
        entry = target_entry(spec)
        roles = ", ".join(f"{role} ({', '.join(kinds)})" for role, kinds in _role_runners(spec).items())
        rows.append([name, spec.implementation, spec.language, roles, entry["process"], entry["docker"]])
    headers = ("name", "implementation", "language", "roles (runners)", "local here", "docker here")
    columns = [Column(c) for c in headers]
    out.table(f"targets in {args.targets_dir}", columns, rows)
    return 0


def _load_targets(args: argparse.Namespace) -> dict[str, TargetSpec] | None:
    """Every target folder under --targets-dir (default: the bundled targets); None: error printed."""
    root: Path = args.targets_dir
    if not root.is_dir():
        out.error(f"targets folder {root} does not exist (--targets-dir)")
        return None
    try:
        specs = load_targets(root)
    except TargetError as exc:
        out.error(str(exc))
        return None
    if not specs:
        out.error(f"no target folder (a folder with a target.yaml) in {root}")
        return None
    return specs


def _availability(spec: TargetSpec, runner: RunnerKind) -> str:
    """``yes``, ``no (why)``, or ``-`` when target.yaml offers no such runner."""
    if runner == "process" and any(rs.browser is not None for rs in spec.roles.values()):
        problem = availability.runner_problem(spec, "browser")  # a browser target runs locally too
        return f"no ({problem})" if problem else "yes (browser)"
    if not any(runner in spec.runners(r) for r in spec.roles):
        return "-"
    problem = availability.runner_problem(spec, runner)
    if problem:
        return f"no ({problem})"
    if runner == "docker":
        from harness.targets.docker.images import built_image

        built = all(built_image(spec, f) for f in _dockerfiles(spec))
        return "yes " + ("(image built)" if built else "(image not built yet)")
    return "yes"


def _named_targets(args: argparse.Namespace) -> dict[str, TargetSpec] | None:
    """The target folders, after checking the names given on the command line (None: error printed)."""
    specs = _load_targets(args)
    if specs is None:
        return None
    unknown = [n for n in args.names if n not in specs]
    if unknown:
        out.error(f"unknown target(s) {', '.join(unknown)} in {args.targets_dir}; known: {', '.join(specs)}")
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
        out.line((f"docker: {problem}", "red"))
        return 1
    names = args.names or [n for n, s in specs.items() if any("docker" in s.runners(r) for r in s.roles)]
    failed = 0
    for name in names:
        spec = specs[name]
        files = _dockerfiles(spec)
        if not files:
            out.line(f"{name}: no docker runner in target.yaml")
        for dockerfile in files:
            log_path = args.log_dir / f"{name}.build.log"
            try:
                built = ensure_image(spec, dockerfile, log_path)
            except TargetUnavailable as exc:
                failed += 1
                out.line((f"{name}: {exc}", "red"), f" (log: {log_path})")
                continue
            how = "cached" if built.cached else f"built in {built.seconds:.1f} s"
            out.line(f"{name}: {built.tag} {how}")
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
            out.line(f"{name}: no set-up needed")
            continue
        command = shlex.join(setup_argv(spec.setup))
        log_path = args.log_dir / f"{name}.setup.log"
        try:
            took = run_setup(spec, log_path)
        except TargetUnavailable as exc:
            failed += 1
            out.line((f"{name}: {exc}", "red"))
            continue
        if took is None:
            out.line(f"{name}: already set up ({spec.setup.creates} exists)")
        else:
            out.line(f"{name}: `{command}` done in {took:.1f} s (log: {log_path})")
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
        out.error(str(exc))
        return 2
    output: Path = args.output.resolve()
    index = render(doc, output, baseline=baseline)
    out.line(f"report: {index}")
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
        out.line(f"wrote {path}")
    return 0


def _schema_of(path: Path) -> str | None:
    """The ``schema`` of a JSON document (results.json or interop.json), None for anything else."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a JSON document") from exc
    except json.JSONDecodeError:
        return None  # results.jsonl and the like: the results loader says what is wrong
    return doc.get("schema") if isinstance(doc, dict) else None


def cmd_diff(args: argparse.Namespace) -> int:
    from harness.report.diff import INTEROP_SCHEMA, compare, from_interop, print_diff

    try:
        kinds = [_schema_of(args.old), _schema_of(args.new)]
        if INTEROP_SCHEMA in kinds:  # two interop matrices (interop.json): compared pair by pair
            if kinds != [INTEROP_SCHEMA, INTEROP_SCHEMA]:
                out.error("wsconform diff: an interop matrix can only be compared with another one")
                return 2
            docs = [json.loads(Path(f).read_text(encoding="utf-8")) for f in (args.old, args.new)]
            old, new = from_interop(docs[0]), from_interop(docs[1])
        else:
            old, new = load(args.old), load(args.new)
    except (OSError, ValueError) as exc:
        out.error(str(exc))
        return 2
    diff = compare(old, new)
    print_diff(diff, out)
    return 1 if diff.regressions else 0


def _export_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--junitxml", type=Path, metavar="PATH", help="also write JUnit XML here")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="also write a Markdown summary here")
    parser.add_argument(
        "--autobahn-index", type=Path, metavar="PATH", help="also write an Autobahn-shaped index.json here"
    )


GLOBAL = ("cases", "extra_cases", "targets_dir")


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``--cases``, ``--extra-cases`` and ``--targets-dir``, accepted before and after the subcommand.

    After the subcommand they are stored under other names (``after_cases``...), because a
    subparser's defaults would otherwise overwrite what was given before it; ``_merge_globals``
    joins the two: a later --cases/--targets-dir wins, --extra-cases accumulate.
    """
    prefix = "" if top else "after_"
    suppress: dict[str, Any] = {} if top else {"default": argparse.SUPPRESS}
    group = parser.add_argument_group("where cases and targets come from")
    group.add_argument(
        "--cases", dest=f"{prefix}cases", type=Path, metavar="DIR", **suppress,
        help="cases folder replacing the bundled suite (default: the suite installed with wsconform)",
    )  # fmt: skip
    group.add_argument(
        "--extra-cases", dest=f"{prefix}extra_cases", type=Path, action="append", metavar="DIR",
        **({"default": []} if top else suppress),
        help="a folder of your own cases, added to the suite (repeatable)",
    )  # fmt: skip
    group.add_argument(
        "--targets-dir", dest=f"{prefix}targets_dir", type=Path, metavar="DIR", **suppress,
        help="target folders (default: the targets installed with wsconform)",
    )  # fmt: skip


def _merge_globals(args: argparse.Namespace) -> None:
    for name in GLOBAL:
        after = getattr(args, f"after_{name}", None)
        if after is not None:
            setattr(args, name, [*args.extra_cases, *after] if name == "extra_cases" else after)
    if args.targets_dir is None:
        try:
            args.targets_dir = bundled.targets_dir()
        except bundled.BundleMissing:
            args.targets_dir = Path("targets")  # does not exist either: commands that need it say so


def _select_options(parser: argparse.ArgumentParser, *, autobahn: bool = True) -> None:
    parser.add_argument(
        "-k", "--case", action="append", default=[], metavar="PATTERN", help="case id glob or substring"
    )
    parser.add_argument("--family", action="append", default=[], help="only this family (repeatable)")
    parser.add_argument("--tag", action="append", default=[], help="only cases with this tag (repeatable)")
    parser.add_argument(
        "--cites", action="append", default=[], metavar="SECTION",
        help='only cases whose spec cites this section: "§5.5.1" exactly, "§5.5.*" with subsections, '
        '"RFC 7692 §7", "RFC 7692" (repeatable)',
    )  # fmt: skip
    if autobahn:
        parser.add_argument(
            "--autobahn", action="store_true", help="only the cases equivalent to an Autobahn case"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsconform", description="WebSocket conformance and interop harness"
    )
    _global_options(parser, top=True)
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
    _select_options(run)
    run.add_argument("--results", type=Path, default=Path("reports/latest/results.json"))
    run.add_argument("--report", type=Path, help="HTML report folder (default: beside the results)")
    run.add_argument("--no-report", action="store_true")
    run.add_argument("--ws-strict", action="store_true", help="NON-STRICT outcomes fail the run")
    run.add_argument("--timeout-scale", type=float, default=1.0)
    run.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=DEFAULT_JOBS,
        help="parallel workers, each with its own target process (default: 3 per CPU)",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="print each failure as it happens")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar or progress lines")
    run.add_argument(
        "--progress-every", type=float, default=10.0, metavar="SECONDS",
        help="when stdout is not a terminal: a progress line this often (default: 10)",
    )  # fmt: skip
    run.add_argument(
        "--runner",
        choices=("process", "docker"),
        help="run named targets as local processes or in containers (default: process when the "
        "runtime is here, else docker)",
    )
    _export_options(run)
    _global_options(run, top=False)
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser(
        "serve", help="keep the server-mode peer running for a client the harness does not start"
    )
    serve.add_argument("--port", type=int, default=9001, help="0 picks a free port and prints it")
    serve.add_argument("--host", default="127.0.0.1", help="a loopback address (anything else is refused)")
    _select_options(serve, autobahn=False)
    serve.add_argument("--results", type=Path, default=Path("reports/serve/results.json"))
    serve.add_argument("--report", type=Path, help="HTML report folder (default: beside the results)")
    serve.add_argument("--no-report", action="store_true")
    serve.add_argument(
        "--until-done", action="store_true", help="stop once one agent has run every selected case"
    )
    serve.add_argument("--ws-strict", action="store_true", help="NON-STRICT outcomes fail the run")
    serve.add_argument("--timeout-scale", type=float, default=1.0)
    _export_options(serve)
    _global_options(serve, top=False)
    serve.set_defaults(func=cmd_serve)

    cases = sub.add_parser("cases", help="validate or list cases")
    cases_sub = cases.add_subparsers(dest="cases_command", required=True)
    validate = cases_sub.add_parser("validate", help="check every case file")
    _global_options(validate, top=False)
    validate.set_defaults(func=cmd_cases_validate)
    lst = cases_sub.add_parser("list", help="list cases (one per line), or count them per family")
    lst.add_argument("--counts", action="store_true", help="a table of cases per family")
    lst.add_argument("--json", action="store_true", help="a JSON array of cases (id, file, spec, sections)")
    _select_options(lst)
    _global_options(lst, top=False)
    lst.set_defaults(func=cmd_cases_list)

    ab = cases_sub.add_parser("autobahn", help="Autobahn|Testsuite coverage (categories 1-7, 9, 10)")
    ab.add_argument("--ids", type=Path, help="the Autobahn id list (default: the installed one)")
    ab.add_argument("--write", type=Path, help="write the coverage table (markdown) here")
    ab.add_argument(
        "--comparison",
        type=Path,
        help="markdown appended to the table (the oracle comparison; default: the installed one)",
    )
    _global_options(ab, top=False)
    ab.set_defaults(func=cmd_cases_autobahn)

    targets = sub.add_parser("targets", help="list targets")
    targets_sub = targets.add_subparsers(dest="targets_command", required=True)
    tlist = targets_sub.add_parser("list", help="targets, roles, runners, availability")
    tlist.add_argument("--json", action="store_true", help="a JSON array of targets")
    _global_options(tlist, top=False)
    tlist.set_defaults(func=cmd_targets_list)
    build = targets_sub.add_parser("build", help="build container images now (unchanged ones are cached)")
    build.add_argument("names", nargs="*", metavar="NAME", help="targets (default: every one with docker)")
    build.add_argument("--log-dir", type=Path, default=Path("reports/latest/logs"), help="build output")
    _global_options(build, top=False)
    build.set_defaults(func=cmd_targets_build)
    setup = targets_sub.add_parser(
        "setup", help="run targets' set-up (e.g. npm ci) now instead of on first use"
    )
    setup.add_argument("names", nargs="*", metavar="NAME", help="targets (default: every one with a set-up)")
    setup.add_argument("--log-dir", type=Path, default=Path("reports/latest/logs"), help="where output goes")
    _global_options(setup, top=False)
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

    from harness.scaffold import add_init_parser

    add_init_parser(sub)
    from harness.interop.command import add_parser as add_interop_parser

    add_interop_parser(sub)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _merge_globals(args)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # same clean stop as Ctrl-C: results kept, targets stopped
    try:
        code: int = args.func(args)
    except CatalogError as exc:
        out.error(exc.message)
        for detail in exc.details:
            out.line(f"  {detail}")
        return 2
    except BrokenPipeError:  # `wsconform cases list | head`: the reader has all it wanted
        sys.stderr.close()
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
