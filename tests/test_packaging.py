"""The wheel ships what an installed Modelyard needs: resources, and the store's migrations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "app" / "modelyard" / "core" / "store" / "migrations"


def test_checkout_finds_the_repository_resources() -> None:
    from modelyard.core.common.paths import resource_path, resources_dir

    assert resources_dir() == ROOT / "resources"
    assert resource_path("icons", "app.svg") == ROOT / "resources" / "icons" / "app.svg"
    assert resource_path("icons", "app.svg").is_file()


def test_files_named_in_pyproject_exist() -> None:
    """Hatchling refuses to build when any of these is missing (fast check, no network)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    hatch = config["tool"]["hatch"]
    readme = config["project"]["readme"]
    readme = readme.get("file", "README.md") if isinstance(readme, dict) else readme
    named = [readme, hatch["version"]["path"], *hatch["build"]["targets"]["wheel"]["packages"],
             *hatch["build"]["targets"]["wheel"]["force-include"]]
    missing = [p for p in named if not (ROOT / p).exists()]
    assert not missing, f"pyproject.toml names files that do not exist: {missing}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the project's wheel the way a release does (pip fetches hatchling from the index)."""
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-w", str(dist), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"building the wheel failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    wheels = list(dist.glob("modelyard-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.slow
def test_wheel_contains_resources_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "modelyard/resources/icons/app.svg" in names
    assert "modelyard/core/store/migrations/env.py" in names
    assert "modelyard/core/store/migrations/script.py.mako" in names
    shipped = {n.rsplit("/", 1)[1] for n in names if n.startswith("modelyard/core/store/migrations/versions/")
               and n.endswith(".py")}
    in_source = {p.name for p in (MIGRATIONS / "versions").glob("*.py")}
    assert in_source and shipped == in_source
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith(("tests/", "app/"))]


INSTALLED_CHECK = textwrap.dedent("""
    import json, sys
    from pathlib import Path

    import modelyard
    from modelyard.core.common.paths import resource_path, resources_dir
    from modelyard.core.store import HEAD_REVISION, Store
    from modelyard.core.store.migrate import MIGRATIONS_DIR

    with Store.open(sys.argv[1]) as store:
        revision = store.current_revision()
        store_id = store.meta().get("store_id")
    print(json.dumps({
        "package": modelyard.__file__,
        "resources": str(resources_dir()),
        "icon": resource_path("icons", "app.svg").is_file(),
        "migrations": str(MIGRATIONS_DIR),
        "revision": revision,
        "head": HEAD_REVISION,
        "store_id": store_id,
    }))
""")


@pytest.mark.slow
def test_installed_wheel_finds_resources_and_creates_a_store(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "--target",
         str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # Only the installed copy is importable: PYTHONPATH is the target folder (the venv's
    # site-packages still provide the dependencies), and cwd is not the checkout.
    env = dict(os.environ)
    env["PYTHONPATH"] = str(target)
    env["PYTHONNOUSERSITE"] = "1"
    work = tmp_path / "elsewhere"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-c", INSTALLED_CHECK, str(tmp_path / "new-store")], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    facts = json.loads(proc.stdout.strip().splitlines()[-1])

    target = target.resolve()
    assert Path(facts["package"]).resolve().is_relative_to(target), facts
    assert Path(facts["resources"]).resolve() == target / "modelyard" / "resources"
    assert facts["icon"] is True
    assert Path(facts["migrations"]).resolve().is_relative_to(target)
    assert facts["revision"] == facts["head"]
    assert facts["store_id"]
    assert (tmp_path / "new-store" / "modelyard.db").is_file()
