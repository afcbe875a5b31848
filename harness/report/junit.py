"""JUnit XML for CI systems that show test results (GitLab, Jenkins, GitHub actions that read it).

One layout for both front ends (``pytest --junitxml`` writes the same names): one ``<testsuite>``
(``wsconform``), one ``<testcase>`` per result named ``<case>[<target>]`` (pytest's item name), its
classname the family, and nothing but the outcome, the Autobahn id and a message of bounded size in
it: no result document, no trace (those are in results.json and the HTML report).
FAIL is a ``<failure>``, ERROR an ``<error>``, UNIMPLEMENTED (an optional feature absent)
``<skipped>``; ``expected.yaml`` is applied as the run applies it (a listed deviation is
``<skipped>``, as pytest reports an xfail; a fixed one is a failure), and with ``strict`` NON-STRICT
is a failure, as ``--ws-strict`` grades it.
Reasons contain target-controlled text: control characters are written as visible escapes
(``text.printable``) and anything else XML 1.0 cannot carry is replaced.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from harness.text import printable
from harness.verdict.expected import judge_record

MESSAGE_CHARS = 1000
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", printable(value))


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
    suite = ET.SubElement(root, "testsuite", name="wsconform")
    if doc.get("started"):
        suite.set("timestamp", xml_text(doc["started"]))
    tally: Counter[str] = Counter()
    for r in doc["results"]:
        duration = float(r.get("duration_ms") or 0) / 1000
        case = ET.SubElement(
            suite,
            "testcase",
            name=xml_text(f"{r['case']}[{r['target']}]"),
            classname=xml_text(r.get("family") or ""),
            time=f"{duration:.3f}",
        )
        if r.get("file"):
            case.set("file", xml_text(f"cases/{r['file']}"))
        tally["tests"] += 1
        props = ET.SubElement(case, "properties")
        ET.SubElement(props, "property", name="outcome", value=xml_text(r["outcome"]))
        if r.get("autobahn"):
            ET.SubElement(props, "property", name="autobahn", value=xml_text(r["autobahn"]))
        what, message = grade(r, strict)
        if what is not None:
            tally[what] += 1
            text = xml_text(message)[:MESSAGE_CHARS]
            child = ET.SubElement(case, what, message=text, type=xml_text(r["outcome"]))
            if what != "skipped":
                child.text = f"{xml_text(r['outcome'])}: {text}\nspec: {xml_text(r.get('spec') or '')}"
    wall = doc.get("wall_seconds")
    busy = sum(float(r.get("duration_ms") or 0) for r in doc["results"]) / 1000
    total_time = float(wall) if wall is not None else busy  # a run's wall time; merged files: the sum
    for element in (root, suite):
        element.set("tests", str(tally["tests"]))
        element.set("failures", str(tally["failure"]))
        element.set("errors", str(tally["error"]))
        element.set("skipped", str(tally["skipped"]))
        element.set("time", f"{total_time:.3f}")
    return root


def write_junit(doc: dict[str, Any], path: Path, *, strict: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = ET.ElementTree(to_xml(doc, strict=strict))
    ET.indent(tree, space=" ")
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
