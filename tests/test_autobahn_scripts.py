"""The two scripts behind the Autobahn differential: verdict mapping, joined runs, and the test data.

``scripts/compare-autobahn`` produces the agreement figures in docs/autobahn-coverage.md; a wrong
mapping there would misstate them silently, so the mapping is pinned here. ``scripts/autobahn-testdata``
must refuse data whose digest differs, whatever the source (a checkout or a wheel).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _load(name: str) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), str(SCRIPTS / name))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up there
    loader.exec_module(module)
    return module


def _ours(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    results = [{"target": t, "autobahn": ab, "case": c, "outcome": o, "reason": ""} for t, ab, c, o in rows]
    path.write_text(json.dumps({"results": results}), encoding="utf-8")
    return path


def test_compare_joins_runs_and_maps_a_bad_close_to_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compare = _load("compare-autobahn")
    index = {
        "websockets": {
            "12.1.1": {"behavior": "OK", "behaviorClose": "OK", "remoteCloseCode": 1000},
            "13.1.1": {"behavior": "OK", "behaviorClose": "WRONG CODE", "remoteCloseCode": 1002},
            "13.2.1": {"behavior": "FAILED", "behaviorClose": "OK", "remoteCloseCode": 1000},
        }
    }
    (tmp_path / "index.json").write_text(json.dumps(index), encoding="utf-8")
    first = _ours(tmp_path / "a.json", [("websockets", "12.1.1", "ab-12-json-1", "PASS")])
    second = _ours(tmp_path / "b.json", [("websockets", "13.1.1", "ab-13-x-1", "FAIL"),
                                         ("websockets", "13.2.1", "ab-13-y-1", "PASS")])
    argv = ["--ours", str(first), "--ours", str(second)]
    argv += ["--autobahn", f"websockets={tmp_path / 'index.json'}"]
    assert compare.main(argv) == 0
    out = capsys.readouterr().out
    assert "| websockets | 3 | 2 | 1 | 0 | 0 | 0 |" in out  # OK + WRONG CODE close counts as FAIL
    assert "## Differences (1)" in out
    assert "| websockets | 13.2.1 | `ab-13-y-1` | FAIL (FAILED; close OK, code 1000) | PASS |" in out


def test_testdata_refuses_a_wheel_whose_file_differs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    testdata = _load("autobahn-testdata")
    monkeypatch.setattr(testdata, "DEST", tmp_path / "dest")
    wheel = tmp_path / "autobahntestsuite-0-py2-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name in testdata.SHA256:
            z.writestr(f"{testdata.IN_WHEEL}/{name}", b"not the real file")
    assert testdata.copy(wheel) == 1
    assert not (tmp_path / "dest" / "data1.json").exists()


def test_testdata_copies_a_wheel_whose_files_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    testdata = _load("autobahn-testdata")
    contents = {name: name.encode() * 3 for name in testdata.SHA256}
    monkeypatch.setattr(testdata, "SHA256", {n: hashlib.sha256(c).hexdigest() for n, c in contents.items()})
    monkeypatch.setattr(testdata, "DEST", tmp_path / "dest")
    wheel = tmp_path / "autobahntestsuite-0-py2-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name, content in contents.items():
            z.writestr(f"{testdata.IN_WHEEL}/{name}", content)
    assert testdata.copy(wheel) == 0
    assert {p.name: p.read_bytes() for p in (tmp_path / "dest").iterdir()} == contents
