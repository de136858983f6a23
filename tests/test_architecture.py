"""The house's rules, checked: the core and the CLI work without Qt, the import contracts hold (and
do fail when broken), only the store boundary builds audit and lineage rows, no panel reaches into
another through the window, and docs/architecture.md's diagram is the one the imports draw."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"
PKG = APP / "modelyard"
QT_PACKAGES = ("PySide6", "shiboken6", "pyqtgraph", "superqt")


def _env(app: Path = APP) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(app)
    env["COLUMNS"] = "1000"  # lint-imports prints each contract's name and verdict on one line
    return env


# --------------------------------------------------------------------------- the core without Qt


def qt_free_modules() -> list[str]:
    """Every module of the core and the CLI (and the package itself), from the tree. The migration
    scripts are left out: Alembic runs them, importing one outside Alembic means nothing."""
    names = ["modelyard", "modelyard.__main__", "modelyard._version"]
    for part in ("core", "cli"):
        for f in sorted((PKG / part).rglob("*.py")):
            rel = f.relative_to(APP).with_suffix("")
            if "migrations" in rel.parts:
                continue
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            names.append(".".join(parts))
    return names


# Runs in ONE fresh interpreter: make every Qt package unimportable, import every module of the
# core and the CLI, check nothing Qt was loaded (not even half-way, as a failed import could
# leave), then open a store and run a job. Prints one JSON line.
NO_QT_CHILD = textwrap.dedent("""
    import importlib, json, sys, traceback

    BLOCKED = set({blocked!r})

    class BlockQt:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{{name}} is blocked: this test checks the code works without Qt")
            return None

    sys.meta_path.insert(0, BlockQt())
    report = {{"blocker_works": False, "failed": {{}}, "qt_loaded": [], "job": None}}
    try:
        import PySide6  # noqa: F401
    except ImportError:
        report["blocker_works"] = True
    for module in {modules!r}:
        try:
            importlib.import_module(module)
        except BaseException:
            report["failed"][module] = traceback.format_exc(limit=-3)
    report["qt_loaded"] = sorted(n for n in sys.modules if n.split(".")[0] in BLOCKED)
    try:
        from modelyard.core.jobs import housekeeping
        from modelyard.core.jobs.runner import run_job
        from modelyard.core.store import Store
        with Store.open({store!r}) as store:
            out = run_job(store, housekeeping.verify_spec())
        report["job"] = "ok" if out.ok else f"failed: {{out.error}}"
    except BaseException:
        report["job"] = traceback.format_exc()
    report["qt_loaded_after_job"] = sorted(n for n in sys.modules if n.split(".")[0] in BLOCKED)
    print(json.dumps(report))
""")


@pytest.fixture(scope="module")
def without_qt(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What one child process with Qt blocked saw (both tests below read it)."""
    tmp = tmp_path_factory.mktemp("no-qt")
    code = NO_QT_CHILD.format(blocked=sorted(QT_PACKAGES), modules=qt_free_modules(), store=str(tmp / "store"))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"the child failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["blocker_works"], "the Qt blocker does not work"
    return report


def test_every_core_and_cli_module_imports_without_qt(without_qt: dict) -> None:
    modules = qt_free_modules()
    assert len(modules) > 60 and "modelyard.cli.main" in modules and "modelyard.core.store.records" in modules
    assert not without_qt["failed"], "modules that do not import without Qt:\n" + "\n".join(
        f"{m}:\n{tb}" for m, tb in without_qt["failed"].items())
    assert without_qt["qt_loaded"] == [], f"Qt modules were imported: {without_qt['qt_loaded']}"


def test_core_works_without_qt(without_qt: dict) -> None:
    """Not just importable: a store opens and a job runs with Qt unavailable."""
    assert without_qt["job"] == "ok", without_qt["job"]
    assert without_qt["qt_loaded_after_job"] == [], without_qt["qt_loaded_after_job"]


# --------------------------------------------------------------------------- import contracts


def _lint_imports() -> str:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(exe).exists():
        pytest.fail("lint-imports is not installed (pip install import-linter); the contracts are not checked")
    return exe


def run_contracts(app: Path, config: Path) -> tuple[dict[str, str], str]:
    """Run lint-imports on the package under ``app`` with ``config``: {contract name: KEPT|BROKEN}."""
    proc = subprocess.run([_lint_imports(), "--no-cache", "--no-logo", str(config)], cwd=config.parent, env=_env(app),
                          capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    verdicts = dict(re.findall(r"^(.+?) (KEPT|BROKEN)$", output, re.MULTILINE))
    assert verdicts, f"lint-imports printed no verdicts (exit {proc.returncode}):\n{output}"
    assert (proc.returncode == 0) == all(v == "KEPT" for v in verdicts.values()), output
    return verdicts, output


def contract_names() -> list[str]:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [c["name"] for c in config["tool"]["importlinter"]["contracts"]]


def test_import_linter_contracts_are_kept() -> None:
    verdicts, output = run_contracts(APP, ROOT / "pyproject.toml")
    assert sorted(verdicts) == sorted(contract_names()), output
    assert all(v == "KEPT" for v in verdicts.values()), output


LIFECYCLE = "Core rooms follow the lifecycle: a lower room never imports a higher one"
UI_ROOMS = "UI rooms never import each other; what they share is in ui.common"
NO_ORM = "UI and CLI never touch the ORM or SQLAlchemy (going through core services is fine)"

# (contract it breaks, package in the copy, line appended to its __init__.py). Room packages, so
# the test does not depend on how a room splits its modules.
PLANTS = [
    (NO_ORM, "modelyard.ui.experiments", "import modelyard.core.store.models"),
    (UI_ROOMS, "modelyard.ui.datasets", "from modelyard.ui.registry import panel"),
    (LIFECYCLE, "modelyard.core.datasets", "import modelyard.core.monitoring"),
]


def test_contracts_fail_on_a_planted_forbidden_import(tmp_path: Path) -> None:
    """The contracts are not vacuous: in a temporary copy of the package, each planted import breaks
    its contract (and only the contracts it should); the untouched copy keeps them all."""
    assert {name for name, _, _ in PLANTS} <= set(contract_names())
    config = tmp_path / "pyproject.toml"
    shutil.copyfile(ROOT / "pyproject.toml", config)
    copies = {}
    for case in ("untouched", "planted"):
        app = tmp_path / case / "app"
        shutil.copytree(PKG, app / "modelyard", ignore=shutil.ignore_patterns("__pycache__"))
        copies[case] = app
    for _, package, line in PLANTS:
        target = copies["planted"].joinpath(*package.split("."), "__init__.py")
        target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # planted by the test\n",
                          encoding="utf-8")

    untouched, output = run_contracts(copies["untouched"], config)
    assert sorted(untouched) == sorted(contract_names()), output
    assert all(v == "KEPT" for v in untouched.values()), f"the untouched copy breaks a contract:\n{output}"

    planted, output = run_contracts(copies["planted"], config)
    broken = {name for name, v in planted.items() if v == "BROKEN"}
    assert broken == {name for name, _, _ in PLANTS}, output
    for _, package, line in PLANTS:  # each report names the planted import
        imported = line.split()[1]
        assert f"{package} -> {imported}" in output, f"{package} -> {imported} not in the report:\n{output}"


# --------------------------------------------------------------------------- greps the contracts cannot do


def _sources(*parts: str) -> list[Path]:
    return sorted(f for part in parts for f in (PKG / part).rglob("*.py"))


def _where(f: Path, text: str, offset: int) -> str:
    return f"{f.relative_to(ROOT)}:{text.count(chr(10), 0, offset) + 1}"


ORM_MODULE = "modelyard.core.store.models"
RECORD_CLASSES = {"AuditEvent", "LineageEdge"}
STORE_BOUNDARY = {PKG / "core" / "store" / "records.py", PKG / "core" / "store" / "models.py"}


def record_rows_built(source: str) -> list[tuple[int, str]]:
    """(line, class) for each ORM ``AuditEvent`` / ``LineageEdge`` row ``source`` builds: a call of
    the class (``m.AuditEvent(...)``, or the class imported by name) or a bulk ``insert(...)`` of
    it. Other classes of the same name (the lineage graph's ``LineageEdge``) are not the ORM's."""
    tree = ast.parse(source)
    modules: set[str] = set()  # local names of the ORM module
    classes: dict[str, str] = {}  # local name -> ORM class
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == ORM_MODULE.rpartition(".")[0]:
            modules.update(a.asname or a.name for a in node.names if a.name == "models")
        elif isinstance(node, ast.ImportFrom) and node.module == ORM_MODULE:
            classes.update({a.asname or a.name: a.name for a in node.names if a.name in RECORD_CLASSES})
        elif isinstance(node, ast.Import):
            modules.update(a.asname for a in node.names if a.name == ORM_MODULE and a.asname)

    def orm_class(node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return classes.get(node.id)
        if isinstance(node, ast.Attribute) and node.attr in RECORD_CLASSES:
            value = node.value
            if isinstance(value, ast.Name) and value.id in modules:
                return node.attr
            if ast.unparse(value) == ORM_MODULE:
                return node.attr
        return None

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            cls = orm_class(node.func)
            if cls is None and isinstance(node.func, ast.Name) and node.func.id == "insert" and node.args:
                cls = orm_class(node.args[0])
            if cls is not None:
                found.append((node.lineno, cls))
    return sorted(found)


def test_only_the_store_boundary_builds_audit_and_lineage_rows() -> None:
    """Audit entries and lineage links are written by ``modelyard.core.store.records`` (``audit``,
    ``link``); nothing else constructs ``AuditEvent`` or ``LineageEdge`` rows."""
    files = _sources("core", "cli", "ui")
    assert STORE_BOUNDARY <= set(files)
    offenders = [f"{f.relative_to(ROOT)}:{line}: {cls}(...)"
                 for f in files if f not in STORE_BOUNDARY
                 for line, cls in record_rows_built(f.read_text(encoding="utf-8"))]
    assert not offenders, "audit or lineage rows built outside core/store/records.py:\n" + "\n".join(offenders)


def test_record_row_finder_catches_what_it_should() -> None:
    source = textwrap.dedent("""
        import modelyard.core.store.models as orm
        from modelyard.core.store import models as m
        from modelyard.core.store.models import AuditEvent as Event
        from sqlalchemy import insert, select

        def f(s):
            s.add(m.AuditEvent(entity_type="run"))
            s.add(orm.LineageEdge(src_type="run"))
            s.add(Event(entity_type="run"))
            s.execute(insert(m.LineageEdge).values([]))
            select(m.AuditEvent).where(m.AuditEvent.id == 1)
            m.LineageEdge.relation
            LineageEdge(src, dst, "trained", {}, True)  # the lineage graph's own edge
    """)
    assert [cls for _, cls in record_rows_built(source)] == ["AuditEvent", "LineageEdge", "AuditEvent",
                                                             "LineageEdge"]


# A panel finds the window (``self.window()``) for its status bar or to start a job, never to reach
# a panel: it navigates with the client's ``navigate`` signal and refreshes on ``changed``.
PANEL_REACH = re.compile(r"_panel$|^panels$|^show_panel$")


def window_reaches(source: str) -> list[tuple[int, str]]:
    """(line, attribute) for each panel reached through ``<widget>.window()`` in ``source``: an
    attribute read or a ``getattr``/``hasattr`` on the window, directly or through a local name."""
    tree = ast.parse(source)

    def is_window_call(node: ast.AST) -> bool:
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "window" and not node.args)

    found = []
    for func in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
        names = {t.id for n in ast.walk(func) if isinstance(n, ast.Assign) and is_window_call(n.value)
                 for t in n.targets if isinstance(t, ast.Name)}

        def is_window(node: ast.AST) -> bool:
            return is_window_call(node) or (isinstance(node, ast.Name) and node.id in names)  # noqa: B023

        for n in ast.walk(func):
            if isinstance(n, ast.Attribute) and is_window(n.value) and PANEL_REACH.search(n.attr):
                found.append((n.lineno, n.attr))
            elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("getattr", "hasattr")
                  and len(n.args) >= 2 and is_window(n.args[0]) and isinstance(n.args[1], ast.Constant)
                  and isinstance(n.args[1].value, str) and PANEL_REACH.search(n.args[1].value)):
                found.append((n.lineno, n.args[1].value))
    return sorted(set(found))


def test_no_panel_reaches_another_through_the_window() -> None:
    files = [f for f in _sources("ui") if f.parent != PKG / "ui"]  # main_window.py and app.py own the panels
    assert any(f.name == "panel.py" for f in files)
    offenders = [f"{f.relative_to(ROOT)}:{line}: window.{attr}"
                 for f in files for line, attr in window_reaches(f.read_text(encoding="utf-8"))]
    assert not offenders, "panels reaching into the window's panels (use the client's navigate/changed):\n" + \
        "\n".join(offenders)


def test_window_reach_finder_catches_what_it_should() -> None:
    source = textwrap.dedent("""
        class P:
            def a(self):
                window = self.window()
                getattr(window, "registry_panel", None).refresh()
                window.show_panel(window.panels.index(self))
            def b(self):
                self.window().datasets_panel.refresh()
            def c(self):
                window = self.window()
                window.statusBar().showMessage("ok")
                hasattr(window, "start_job")
                self.client.navigate.emit("registry", "churn@v1")
    """)
    assert [attr for _, attr in window_reaches(source)] == ["registry_panel", "panels", "show_panel",
                                                            "datasets_panel"]


# --------------------------------------------------------------------------- the picture in the docs


def test_rooms_diagram_is_fresh() -> None:
    """docs/architecture.md's rooms diagram is what docs/make_architecture_diagram.py draws from
    today's imports (run that script after changing who imports whom)."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import make_architecture_diagram as diagram
    finally:
        sys.path.remove(str(ROOT / "docs"))
    fresh = diagram.render()
    assert "core_store --> core_common" in fresh  # it does read the imports
    committed = diagram.committed((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8"))
    assert committed == fresh, "the rooms diagram in docs/architecture.md is stale: run " \
        "python docs/make_architecture_diagram.py and commit the result"


# --------------------------------------------------------------------------- Qt stays out of the core


QT_IMPORT = re.compile(
    r"^\s*(?:from|import)\s+(?:PySide6|shiboken6|pyqtgraph|superqt|modelyard\.ui)\b"
    r"|import_module\(\s*[\"'](?:PySide6|shiboken6|pyqtgraph|superqt|modelyard\.ui)",
    re.MULTILINE,
)


def test_no_qt_imports_in_core_or_cli_sources() -> None:
    """Belt and braces next to import-linter: also catches imports inside functions and strings."""
    files = _sources("core", "cli")
    assert any(f.name == "jobs.py" for f in files)  # the scan does look at the real sources
    offenders = [_where(f, text, m.start()) + f": {m.group().strip()}"
                 for f in files for text in [f.read_text(encoding="utf-8")] for m in QT_IMPORT.finditer(text)]
    assert not offenders, "Qt or UI imported from the Qt-free layers:\n" + "\n".join(offenders)


def test_qt_import_pattern_catches_what_it_should() -> None:
    """Keeps the grep test honest: it would flag the forms of import it claims to."""
    caught = ["from PySide6.QtCore import QObject", "    import pyqtgraph as pg", "import superqt",
              "from modelyard.ui.common.jobrunner import JobRunner", "importlib.import_module('PySide6.QtWidgets')"]
    ignored = ["# PySide6 is not used here", "x = 'pyqtgraph'", "from modelyard.core import jobs"]
    assert all(QT_IMPORT.search(c) for c in caught)
    assert not any(QT_IMPORT.search(i) for i in ignored)


def test_no_two_test_modules_share_a_file_name() -> None:
    """The test folders have no __init__.py: pytest imports a module by its file name, and a second
    module of the same name in one process is an 'import file mismatch' error (a run of the whole
    suite in one process, or two such files on one xdist worker, would stop there)."""
    from collections import Counter

    names = Counter(p.name for p in (ROOT / "tests").rglob("test_*.py"))
    assert [n for n, c in names.items() if c > 1] == []
