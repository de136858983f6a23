"""What the CLI says to people: every option a hint or message names is one the parser knows,
names are printed safely, and ``--json`` output is valid JSON."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import unknown_options

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
