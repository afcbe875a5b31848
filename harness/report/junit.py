"""JUnit XML for CI systems that show test results (GitLab, Jenkins, GitHub actions that read it).

One ``<testsuite>`` per target, one ``<testcase>`` per result, named ``<case>`` in class
``<target>.<family>``. FAIL is a ``<failure>``, ERROR an ``<error>``, UNIMPLEMENTED (an optional feature
absent) ``<skipped>``; ``expected.yaml`` is applied as the run applies it (a listed deviation is
``<skipped>``, as pytest reports an xfail; a fixed one is a failure), and with ``strict`` NON-STRICT
is a failure, as ``--ws-strict`` grades it.
Reasons contain target-controlled text: characters XML 1.0 cannot carry are replaced.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from harness.verdict.expected import judge_record

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def grade(record: dict[str, Any], strict: bool = False) -> tuple[str | None, str]:
    """(``failure`` | ``error`` | ``skipped`` | None, message) for one result, graded like
    ``suite.judge_expected``: a listed deviation that still happens is an xfail (skipped), one that no
    longer happens is a failure until expected.yaml is updated."""
    g = judge_record(record, strict=strict)
    if g.xfail:
        return "skipped", g.message
    if g.failed:
        harness_error = record["outcome"] == "ERROR" and not record.get("expected")
        return ("error" if harness_error else "failure"), g.message
    if record["outcome"] == "UNIMPLEMENTED":
        return "skipped", g.message
    return None, g.message


def to_xml(doc: dict[str, Any], *, strict: bool = False) -> ET.Element:
    root = ET.Element("testsuites", name="wsconform")
    suites: dict[str, ET.Element] = {}
    tallies: dict[str, Counter[str]] = {}
    seconds: dict[str, float] = {}
    for r in doc["results"]:
        target = r["target"]
        if target not in suites:
            suites[target] = ET.SubElement(root, "testsuite", name=xml_text(target))
            tallies[target] = Counter()
            if doc.get("started"):
                suites[target].set("timestamp", xml_text(doc["started"]))
        duration = float(r.get("duration_ms") or 0) / 1000
        seconds[target] = seconds.get(target, 0.0) + duration
        case = ET.SubElement(
            suites[target],
            "testcase",
            name=xml_text(r["case"]),
            classname=xml_text(f"{target}.{r.get('family') or ''}"),
            time=f"{duration:.3f}",
        )
        if r.get("file"):
            case.set("file", xml_text(f"cases/{r['file']}"))
        tallies[target]["tests"] += 1
        props = ET.SubElement(case, "properties")
        ET.SubElement(props, "property", name="outcome", value=xml_text(r["outcome"]))
        if r.get("autobahn"):
            ET.SubElement(props, "property", name="autobahn", value=xml_text(r["autobahn"]))
        what, message = grade(r, strict)
        if what is not None:
            tallies[target][what] += 1
            child = ET.SubElement(case, what, message=xml_text(message)[:1000], type=xml_text(r["outcome"]))
            if what != "skipped":
                child.text = xml_text(f"{r['outcome']}: {message}\nspec: {r.get('spec') or ''}")
    for target, suite in suites.items():
        t = tallies[target]
        suite.set("tests", str(t["tests"]))
        suite.set("failures", str(t["failure"]))
        suite.set("errors", str(t["error"]))
        suite.set("skipped", str(t["skipped"]))
        suite.set("time", f"{seconds[target]:.3f}")
    total = Counter[str]()
    for t in tallies.values():
        total.update(t)
    root.set("tests", str(total["tests"]))
    root.set("failures", str(total["failure"]))
    root.set("errors", str(total["error"]))
    root.set("skipped", str(total["skipped"]))
    return root


def write_junit(doc: dict[str, Any], path: Path, *, strict: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = ET.ElementTree(to_xml(doc, strict=strict))
    ET.indent(tree, space=" ")
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
