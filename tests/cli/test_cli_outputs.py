"""Writing where the user asked: an output path that cannot be written (a missing folder, a path
through a file, a read-only folder) is a one-line error naming the path, with a hint — never a
traceback — and leaves no file behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import backend_params, module_db_url, module_store, use_module_database
from cli_helpers import cli
from factories import make_frame
from factories import train_drift_model as train_model
from modelyard.core.store import Store


@pytest.fixture(scope="module", params=backend_params())
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A store with a registered model (shop@v1), a drift check of it and a batch file to score,
    on each backend."""
    root = tmp_path_factory.mktemp("outputs")
    with module_store(request, root / "store") as store:
        train_model(store, make_frame(400, 1), "shop")
        batch = root / "batch.csv"
        make_frame(200, 2).drop(columns=["label"]).to_csv(batch, index=False)
        yield {"store": str(root / "store"), "batch": str(batch), "db_url": module_db_url(store)}


@pytest.fixture(autouse=True)
def _lab_database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI opens the lab's store by its folder, and on PostgreSQL by its database's URL."""
    use_module_database(request, monkeypatch, "lab")


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may write into: mode 0555, or for root (whom modes do not stop) immutable."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a file system without chattr +i: no folder is read-only")
    try:
        yield folder
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def _commands(lab: dict[str, Any], path: Path, check_id: int) -> dict[str, list[str]]:
    return {
        "bundle export": ["bundle", "export", "shop@v1", "-o", str(path.with_suffix(".mybundle"))],
        "model card": ["model", "card", "shop@v1", "--html", str(path.with_suffix(".html"))],
        "monitor report": ["monitor", "report", str(check_id), "-o", str(path.with_suffix(".html"))],
        "predict": ["predict", "shop@v1", lab["batch"], "-o", str(path.with_suffix(".csv"))],
        "bundle keygen": ["bundle", "keygen", str(path.with_suffix(".key")), str(path.with_suffix(".pub"))],
    }


@pytest.fixture(scope="module")
def check_id(lab: dict[str, Any]) -> int:
    from modelyard.cli.main import (
        run_cli,  # a module-scoped fixture cannot use capsys: stdout to a file
    )

    out = Path(lab["store"]).parent / "check.json"
    with open(out, "w") as fh, contextlib.redirect_stdout(fh):
        db = ["--db-url", lab["db_url"]] if lab["db_url"] else []  # before the per-test environment
        assert run_cli(["--store", lab["store"], *db, "--json", "monitor", "check", "shop", lab["batch"]]) in (0, 3)
    return int(json.loads(out.read_text())["check"]["id"])


@pytest.mark.parametrize("where", ["missing folder", "through a file", "read-only folder"])
@pytest.mark.parametrize("command", ["bundle export", "model card", "monitor report", "predict", "bundle keygen"])
def test_an_output_path_that_cannot_be_written_is_a_one_line_error(
        command: str, where: str, lab: dict[str, Any], check_id: int, tmp_path: Path,
        request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    if where == "missing folder":
        folder = tmp_path / "no" / "such"
    elif where == "through a file":
        folder = tmp_path / "a-file"
        folder.write_text("not a folder")
    else:
        folder = request.getfixturevalue("read_only_dir")
    args = _commands(lab, folder / "out", check_id)[command]
    code, out, err = cli(capsys, "--store", lab["store"], *args)
    assert code in (1, 2), err
    lines = [ln for ln in err.splitlines() if not ln.startswith("[")]  # progress lines of a job
    assert lines[0].startswith("error: ") and str(folder) in lines[0], err
    assert len(lines) == 2 and lines[1].startswith("hint: "), err
    if folder.is_dir():
        assert list(folder.iterdir()) == []
    if command == "predict":  # refused before scoring: no predictions recorded in the store either
        code, out, _ = cli(capsys, "--store", lab["store"], "--json", "dataset", "list")
        assert not [d["name"] for d in json.loads(out) if "predictions" in d["name"]]


def test_a_full_disk_while_writing_is_a_one_line_error_and_leaves_no_file(
        lab: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import pandas as pd
    from modelyard.core import bundles
    from modelyard.core.bundles import exporting
    from modelyard.core.common.errors import ModelyardError
    from modelyard.core.serving import scoring

    def full(*_a: Any, **_k: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    with pytest.raises(ModelyardError) as info:
        scoring.write_table_file(pd.DataFrame({"a": [1]}), tmp_path / "p.csv")
    assert str(tmp_path / "p.csv") in info.value.message and "No space left" in info.value.message
    assert info.value.hint and "disk is full" in info.value.hint

    with Store.open(lab["store"]) as store, pytest.raises(ModelyardError) as info:
        monkeypatch.setattr(exporting.os, "fsync", full)  # the disk fills up as the bundle is flushed
        bundles.export_bundle(store, "shop@v1", tmp_path / "b.mybundle")
    monkeypatch.undo()
    assert "Cannot write the bundle to" in info.value.message and "disk is full" in (info.value.hint or "")
    assert list(tmp_path.iterdir()) == []


def test_a_path_too_long_for_the_file_system_is_a_one_line_error(lab: dict[str, Any], check_id: int,
                                                                 tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    long = str(tmp_path / ("x" * 300))
    for args in (["bundle", "inspect", long], ["bundle", "import", long], ["model", "card", "shop@v1", "--html", long],
                 ["predict", "shop@v1", long], ["bundle", "export", "shop@v1", "-o", long],
                 ["monitor", "report", str(check_id), "-o", long]):
        code, out, err = cli(capsys, "--store", lab["store"], *args)
        assert code in (1, 2), (args, err)
        assert err.startswith("error: ") and "too long" in err and len(err.splitlines()) <= 2, (args, err)


@pytest.mark.parametrize("args", [["run", "purge", "--older-than", "nan"], ["run", "purge", "--older-than", "1e999"],
                                  ["dataset", "split", "shop", "--test", "nan"],
                                  ["train", "--dataset", "shop", "--model", "knn", "--validation", "inf"],
                                  ["monitor", "watch", "--once", "--settle", "-1"],
                                  ["jobs", "show", str(2**64)], ["monitor", "show", str(2**64)],
                                  ["run", "list", "--limit", str(2**64)], ["jobs", "list", "--limit", "0"],
                                  ["dataset", "split", "shop", "--test", "0.2", "--seed", str(2**40)],
                                  ["bundle", "export", "shop@v1", "-o", "/"]])
def test_numbers_out_of_range_are_usage_errors(args: list[str], lab: dict[str, Any],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "--store", lab["store"], *args)
    assert code == 2 and "error: " in err, err
