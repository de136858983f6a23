"""What the CLI says to people: every option a hint or message names is one the parser knows,
names are printed safely, and ``--json`` output is valid JSON."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli, unknown_options

PACKAGE = Path(__file__).resolve().parent.parent / "app" / "modelyard"

# The commands a CLI module's help and messages are about (None: any command of the CLI).
CLI_CONTEXTS: dict[str, list[list[str]]] = {"train.py": [["train"], ["run", "reproduce"]]}


def _texts(node: ast.AST) -> Iterator[str]:
    """The text of a string expression: literals, f-strings (values as ``{}``), ``+`` and ``a if c else b``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.JoinedStr):
        yield "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        for left in _texts(node.left):
            for right in _texts(node.right):
                yield left + right
    elif isinstance(node, ast.IfExp):
        yield from _texts(node.body)
        yield from _texts(node.orelse)


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def messages(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every message a user may read in a module: the messages and hints of errors
    raised, ``hint=`` anywhere, and in cli/ argparse's help, description and epilog."""
    is_cli = path.parent.name == "cli"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        exprs = [kw.value for kw in node.keywords if kw.arg == "hint"
                 or (is_cli and kw.arg in ("help", "description", "epilog"))]
        if name.endswith(("Error", "Failed", "Exception")) or name == "error":
            exprs += node.args
        for expr in exprs:
            for text in _texts(expr):
                yield node.lineno, text


def _contexts(path: Path) -> list[list[str]] | None:
    if path.parent.name != "cli" or path.name.startswith("_") or path.name == "main.py":
        return None
    return CLI_CONTEXTS.get(path.name, [[path.stem]])


def _all_modules() -> list[Path]:
    return sorted([*(PACKAGE / "core").rglob("*.py"), *(PACKAGE / "cli").glob("*.py")])


def test_the_scan_finds_the_messages_it_checks() -> None:
    found = [text for _, text in messages(PACKAGE / "core" / "datasets" / "service.py")]
    assert any("--force" in t for t in found)
    assert unknown_options("Give it with --column.", ["train"]) == ["--column (not an option of 'modelyard train')"]
    assert unknown_options("'modelyard dataset split NAME --column COL'", ["train"]) == []
    assert unknown_options("'modelyard train --column COL'", ["dataset", "split"]) != []


def test_every_option_a_message_names_is_one_the_parser_knows() -> None:
    bad = []
    for path in _all_modules():
        contexts = _contexts(path)
        for line, text in messages(path):
            if contexts is None:
                problems = unknown_options(text, None)
            else:  # known to any of the module's commands
                per_context = [set(unknown_options(text, c)) for c in contexts]
                problems = sorted(set.intersection(*per_context))
            bad += [f"{path.relative_to(PACKAGE)}:{line}: {p}: {text!r}" for p in problems]
    assert not bad, "\n".join(bad)


# --------------------------------------------------------------------------- --json is valid JSON


def strict_json(text: str) -> Any:
    """Parse JSON as the standard says it (no NaN, Infinity or -Infinity, which Python accepts)."""
    def refuse(constant: str) -> None:
        raise AssertionError(f"--json output holds {constant}, which is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def store_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    root = tmp_path / "store"
    assert cli(capsys, "store", "init", str(root))[0] == 0
    return root


def test_json_output_of_non_finite_metrics_is_valid_json_with_null(capsys: pytest.CaptureFixture[str],
                                                                    store_dir: Path) -> None:
    from modelyard.core import tracking
    from modelyard.core.store import Store

    with Store.open(store_dir) as store, tracking.start_run("exp", name="wild", store=store) as run:
        run.log_metrics({"loss": float("inf"), "gain": float("-inf"), "f1": 0.5})
    s = str(store_dir)
    code, out, err = cli(capsys, "--store", s, "--json", "run", "show", run.id)
    assert code == 0, err
    shown = strict_json(out)
    assert shown["metrics"]["loss"] is None and shown["metrics"]["gain"] is None and shown["metrics"]["f1"] == 0.5
    code, out, err = cli(capsys, "--store", s, "--json", "run", "list")
    assert code == 0, err
    assert strict_json(out)[0]["metrics"]["loss"] is None


def test_the_json_printer_writes_null_for_every_non_finite_number() -> None:
    import numpy as np
    from modelyard.cli._common import to_json_text

    class Report:
        def to_json(self) -> dict[str, Any]:
            return {"psi": float("inf"), "rows": [float("nan"), 1.5]}

    data = {"a": float("nan"), "b": [np.float32("nan"), np.float64("-inf"), np.float32(0.25)],
            "c": (Report(), np.int64(3)), "d": {"e": float("inf")}, "ok": True, "n": 2}
    assert strict_json(to_json_text(data)) == {
        "a": None, "b": [None, None, 0.25], "c": [{"psi": None, "rows": [None, 1.5]}, 3], "d": {"e": None},
        "ok": True, "n": 2}
