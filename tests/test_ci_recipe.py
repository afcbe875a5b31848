"""docs/ci/github-actions.yml, run as GitHub would run its `run:` steps (not GitHub itself).

The recipe a library maintainer copies must keep working, so this test reads the workflow, sets up a
repository the way its header says (``wsconform init mylib``, known deviations in expected.yaml), and
runs every `run:` step in order with bash and the workflow's env, simulating a pull request. Two steps
cannot run here and are replaced: "install" (wsconform comes from this checkout, through a
``wsconform`` shim on PATH) and "baseline" (the base branch's results are this run's own, copied, as
if the base branch behaved the same: `wsconform diff` must then find no regression).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "docs" / "ci" / "github-actions.yml"
# The websockets library's known deviations in the handshake-version cases (targets/websockets).
EXPECTED = "".join(
    f'handshake-version-{v}: {{outcome: FAIL, reason: "400, no Sec-WebSocket-Version; RFC 6455 §4.2.2"}}\n'
    for v in (0, 11, 12, 14, 255)
)


def shim(bin_dir: Path) -> None:
    bin_dir.mkdir()
    script = bin_dir / "wsconform"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m harness.cli "$@"\n')
    script.chmod(0o755)


def test_workflow_run_steps_work_against_a_python_server(tmp_path: Path) -> None:
    workflow: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["conformance"]["steps"]
    env = {**os.environ, **{k: str(v) for k, v in workflow["env"].items()}}
    env["WSCONFORM_SELECT"] = "-k handshake-version -k text-len-125"  # a small selection, same commands
    env["PYTHONPATH"] = str(ROOT)
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env['PATH']}"
    env["GITHUB_STEP_SUMMARY"] = str(tmp_path / "step-summary.md")
    env["GITHUB_BASE_REF"] = "main"
    shim(tmp_path / "bin")
    repo = tmp_path / "repo"
    repo.mkdir()
    assert main(["init", env["WSCONFORM_TARGET"], "--dir", str(repo / env["WSCONFORM_TARGETS"])]) == 0
    (repo / env["WSCONFORM_TARGETS"] / env["WSCONFORM_TARGET"] / "expected.yaml").write_text(EXPECTED)
    ran = []
    for step in steps:
        if "run" not in step:
            continue  # `uses:` steps are GitHub's own actions
        if step.get("id") == "install":
            continue  # the shim stands for the installed wsconform
        if step.get("id") == "baseline":
            shutil.copytree(repo / env["WSCONFORM_OUT"], repo / "baseline")
            continue
        res = subprocess.run(
            ["bash", "-e", "-c", step["run"]], cwd=repo, env=env, capture_output=True, text=True, timeout=180
        )
        assert res.returncode == 0, f"step {step.get('name')!r} failed:\n{res.stdout}\n{res.stderr}"
        ran.append(step.get("id") or step.get("name"))
    assert ran == ["run", "Job summary", "Compare with the base branch"]
    out = repo / env["WSCONFORM_OUT"]
    for name in ("results.json", "junit.xml", "summary.md", "index.html"):
        assert (out / name).is_file(), name
    cases = {c.get("name"): c for c in ET.parse(out / "junit.xml").getroot().iter("testcase")}
    assert cases["handshake-version-11[mylib]"].find("skipped") is not None  # listed: not a failure
    assert "## wsconform results" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()
