"""What the CLI says to people: every option a hint or message names is one the parser knows,
names are printed safely, and ``--json`` output is valid JSON."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli, run_cli, unknown_options

PACKAGE = Path(__file__).resolve().parents[2] / "app" / "modelyard"

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
    found = [text for _, text in messages(PACKAGE / "core" / "datasets" / "versions.py")]
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


def test_json_output_of_non_finite_metrics_is_valid_json_with_null(capsys: pytest.CaptureFixture[str],
                                                                    store_dir: Path) -> None:
    from modelyard.core.experiments import tracking
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


# --------------------------------------------------------------------------- names with control characters

ESC_NAMES = ["sales\x1b[2J", "churn\x9b31m", "model\u202egpj.exe", "two\nlines", "cr\rover", "del\x7f"]


@pytest.fixture
def logged_model(store_dir: Path) -> str:
    """A run in ``store_dir`` that logged a small fitted model; returns the run id."""
    return log_small_model(store_dir)


def log_small_model(store_dir: Path) -> str:
    import numpy as np
    from modelyard.core.experiments import tracking
    from modelyard.core.store import Store
    from sklearn.linear_model import LogisticRegression

    X = np.array([[i, i % 3] for i in range(20)], dtype=float)
    y = np.array([0] * 10 + [1] * 10)
    with Store.open(store_dir) as store, tracking.start_run("exp", store=store) as run:
        run.log_metric("accuracy", 0.9)
        run.log_model(LogisticRegression().fit(X, y), input_example=X[:3])
    return run.id


@pytest.mark.parametrize("bad", ESC_NAMES)
def test_new_names_with_control_characters_are_refused(bad: str, capsys: pytest.CaptureFixture[str],
                                                        store_dir: Path, tmp_path: Path, logged_model: str) -> None:
    from modelyard.core.common.errors import ModelyardError
    from modelyard.core.experiments import tracking
    from modelyard.core.registry import versions as registry
    from modelyard.core.store import Store

    s = str(store_dir)
    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n1,2\n3,4\n")
    code, _, err = cli(capsys, "--store", s, "dataset", "import", str(csv), "--name", bad)
    assert code == 1 and "control character" in err, err
    code, _, err = cli(capsys, "--store", s, "model", "register", logged_model, "--name", bad)
    assert code == 1 and "control character" in err, err
    code, _, err = cli(capsys, "--store", s, "train", "--dataset", "nope", "--model", "knn", "--experiment", bad)
    assert code == 1 and "control character" in err, err
    with Store.open(store_dir) as store:
        for attempt in (lambda: tracking.start_run(bad, store=store),
                        lambda: tracking.start_run("exp", name=bad, store=store),
                        lambda: registry.register(store, logged_model, bad)):
            with pytest.raises(ModelyardError, match="control character"):
                attempt()
        with tracking.start_run("exp", store=store) as run:
            for log in (lambda: run.log_metric(bad, 1.0), lambda: run.log_param(bad, 1),
                        lambda: run.set_tag(bad, "x")):
                with pytest.raises(ModelyardError, match="control character|not allowed"):
                    log()
        assert [e.name for e in tracking.list_experiments(store=store)] == ["exp"]
        assert registry.list_models(store) == []


def _control_chars(text: str) -> list[str]:
    from modelyard.core.common.names import display

    return [c for c in text if display(c, keep_newlines=True) != c]


def test_names_stored_before_the_rule_are_printed_escaped(capsys: pytest.CaptureFixture[str],
                                                          store_dir: Path) -> None:
    from modelyard.core.store import Store
    from modelyard.core.store import models as m

    evil = "x\x1b[2J\x1b]0;owned\x07\r\u202e"
    with Store.open(store_dir) as store, store.write() as s:  # as an older Modelyard could have stored them
        exp = m.Experiment(name=evil, created_at=m.utcnow())
        s.add(exp)
        s.add(m.RegisteredModel(name=evil))
        s.flush()
        s.add(m.Run(uuid=m.new_uuid(), experiment_id=exp.id, name=evil, status="finished", start_time=m.utcnow(),
                    user=evil, host="h"))
    s_ = str(store_dir)
    for args in (["experiment", "list"], ["run", "list"], ["model", "list"], ["model", "show", evil],
                 ["run", "list", "--experiment", evil], ["dataset", "show", evil]):
        code, out, err = cli(capsys, "--store", s_, *args)
        assert _control_chars(out + err) == [], (args, out, err)
        assert "\\x1b[2J" in out + err, (args, out, err)
        code, out, err = cli(capsys, "--store", s_, "--json", *args)
        assert _control_chars(out + err) == [], (args, out, err)


@pytest.fixture(scope="module")
def plain_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle of ``plain@v1`` exported with the CLI, once for the module (an export's job runs in a
    child process: 3-4 s); each case edits a copy of its members."""
    folder = tmp_path_factory.mktemp("plain-bundle")
    store_dir = folder / "store"
    run_id = log_small_model(store_dir)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MODELYARD_DB_URL", raising=False)
        assert run_cli(["--store", str(store_dir), "model", "register", run_id, "--name", "plain"]) == 0
        assert run_cli(["--store", str(store_dir), "bundle", "export", "plain@v1", "-o",
                        str(folder / "b.mybundle")]) == 0
    return folder / "b.mybundle"


@pytest.mark.parametrize(("field", "edit"), [
    ("model.name", lambda man: man["model"].update(name="iris\x1b[2J")),
    ("model.aliases", lambda man: man["model"].update(aliases=["champion\x9b"])),
    ("lineage.experiment", lambda man: man["lineage"].update(experiment="exp\u202e")),
    ("model.description", lambda man: man["model"].update(description="line one\nline two\x1b]0;owned\x07")),
    ("metrics", lambda man: man["metrics"].update({"acc\x1b[8m": 0.5})),
])
@pytest.mark.sqlite_only("two stores in one test; MODELYARD_DB_URL names one database")
def test_a_bundle_carrying_a_name_with_a_control_character_is_refused_naming_the_field(
        field: str, edit: Any, capsys: pytest.CaptureFixture[str], plain_bundle: Path, tmp_path: Path) -> None:
    from factories import read_members, remanifest, write_zip

    items = remanifest(read_members(plain_bundle), edit)
    bad = write_zip(tmp_path / "bad.mybundle", list(items.items()))
    other = tmp_path / "other"
    assert cli(capsys, "store", "init", str(other))[0] == 0
    for command in ("import", "inspect"):
        code, out, err = cli(capsys, "--store", str(other), "bundle", command, str(bad))
        assert code == 1 and f"in its field {field}" in err and "control character" in err, err
    code, out, _ = cli(capsys, "--store", str(other), "--json", "model", "list")
    assert json.loads(out) == []
