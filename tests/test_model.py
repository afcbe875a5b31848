"""Case files: expansion, defaults, and errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.model.loader import CaseError, load_all, load_file


def write(tmp_path: Path, text: str, name: str = "fam/x.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_params_expand_with_types_and_rows(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
defaults: {spec: "RFC 6455 §5.6", tags: [t1]}
cases:
  - id: text-${size}
    title: text ${size}
    params: {size: [0, 126]}
    steps: [{send: {opcode: text, payload: {fill: {size: "${size}"}}}}]
  - id: ab-${n}
    title: row
    autobahn: "${ab}"
    params: [{n: 1, ab: "2.1"}, {n: 2, ab: "2.2"}]
    steps: [{ping: "x"}]
""",
    )
    cases = load_file(path, tmp_path)
    assert [c.id for c in cases] == ["text-0", "text-126", "ab-1", "ab-2"]
    assert cases[1].model.steps[0].payload.fill.size == 126  # type: ignore[union-attr]
    assert cases[3].model.autobahn == "2.2"
    assert cases[0].model.tags == ["fam", "t1"] and cases[0].model.spec == "RFC 6455 §5.6"
    assert cases[0].nodeid == "fam/x.yaml::text-0"


@pytest.mark.parametrize(
    ("body", "line", "field", "msg"),
    [
        (
            "  - id: a\n    title: t\n    spec: s\n    steps:\n      - send: {opcode: bogus}\n",
            5,
            "cases[0].steps[0].send.opcode",
            "unknown opcode name",
        ),
        (
            "  - id: a\n    title: t\n    spec: s\n    steps:\n      - sned: {}\n",
            5,
            "cases[0].steps[0]",
            "unknown step kind",
        ),
        (
            "  - id: a\n    title: t\n    spec: s\n    expect: {fail_fast: true}\n",
            4,
            "cases[0].expect",
            "fail_fast needs fail",
        ),
        ("  - id: Bad_Id\n    title: t\n    spec: s\n", 1, "cases[0].id", "pattern"),
        # load-time checks of role and step order
        (
            "  - id: a\n    title: t\n    spec: s\n    steps:\n      - response: {status: 404}\n",
            5,
            "cases[0].steps[0].response",
            "this case has role server",
        ),
        (
            "  - id: a\n    title: t\n    spec: s\n    role: client\n    steps:\n      - handshake: {}\n",
            6,
            "cases[0].steps[0].handshake",
            "this case has role client",
        ),
        (
            "  - id: a\n    title: t\n    spec: s\n    steps:\n      - ping: x\n      - handshake: {}\n",
            6,
            "cases[0].steps[1].handshake",
            "must be the first step",
        ),
        (
            "  - id: a\n    title: t\n    spec: s\n    role: client\n    steps:\n      - ping: x\n"
            "      - response: {}\n",
            7,
            "cases[0].steps[1].response",
            "must be the first step",
        ),
        (
            "  - id: a\n    title: t\n    spec: s\n    steps:\n"
            "      - message: {payload: abc, fragments: [2, 2]}\n",
            5,
            "cases[0].steps[0].message.fragments",
            "add up to 4, more than the 3-byte payload",
        ),
        (
            "  - id: a\n    title: t\n    spec: s\n    steps:\n"
            "      - flood: {count: 1, size: max_message_size}\n",
            5,
            "cases[0].steps[0].flood.size",
            "requires: {max_message_size: true}",
        ),
    ],
)
def test_errors_name_file_line_field(tmp_path: Path, body: str, line: int, field: str, msg: str) -> None:
    path = write(tmp_path, "cases:\n" + body)
    with pytest.raises(CaseError) as info:
        load_file(path, tmp_path)
    err = info.value
    assert err.file == "fam/x.yaml"
    assert err.line == line + 1, str(err)
    assert err.field.startswith(field), str(err)
    assert msg in str(err)


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = write(tmp_path, "cases:\n  - id: a\n    title: [unclosed\n")
    with pytest.raises(CaseError) as info:
        load_file(path, tmp_path)
    assert info.value.line >= 3 and "YAML syntax" in str(info.value)


def test_duplicate_ids_are_reported_with_both_places(tmp_path: Path) -> None:
    case = "cases:\n  - id: same\n    title: t\n    spec: s\n"
    write(tmp_path, case, "a/one.yaml")
    write(tmp_path, case, "b/two.yaml")
    cases, errors = load_all(tmp_path)
    assert len(cases) == 1 and len(errors) == 1
    assert "duplicate case id 'same'" in str(errors[0]) and "a/one.yaml:2" in str(errors[0])


def test_repository_cases_are_valid() -> None:
    root = Path(__file__).resolve().parents[1] / "cases"
    cases, errors = load_all(root)
    assert not errors, "\n".join(map(str, errors))
    assert len(cases) > 300
