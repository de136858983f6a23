"""``modelyard dataset ...``: import, sample, list, show, versions, profile, split, delete; output and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import cli, cli_json
from modelyard.core.store import Store
from modelyard.core.store import models as m


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "churn.csv"
    rows = ["customer_id,age,plan,monthly,churned"]
    for i in range(40):
        rows.append(f"C{i:04d},{20 + i % 50},{['basic', 'pro', 'team'][i % 3]},{9.5 + i % 7},{'yes' if i % 4 == 0 else 'no'}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_import_list_show_versions_profile(capsys: pytest.CaptureFixture[str], store_dir: Path, csv_file: Path) -> None:
    s = str(store_dir)
    code, out, err = cli(capsys, "--store", s, "dataset", "import", str(csv_file), "--target", "churned")
    assert code == 0, err
    assert out.startswith("Imported churn.csv as churn@v1: 40 rows x 5 columns, target 'churned' (classification).")
    assert "warning: Column 'customer_id' looks like an identifier" in err

    code, data, _ = cli_json(capsys, "--store", s, "dataset", "import", str(csv_file))
    assert code == 0 and data["status"] == "succeeded"
    assert data["result"]["created"] is False and data["result"]["ref"] == "churn@v1"
    code, out, _ = cli(capsys, "--store", s, "dataset", "import", str(csv_file))
    assert "churn@v1 already holds exactly this data: nothing new was stored." in out

    code, out, _ = cli(capsys, "--store", s, "dataset", "list")
    assert code == 0 and out.splitlines()[0].split() == ["NAME", "LATEST", "VERSIONS", "ROWS", "COLS", "TARGET",
                                                         "TASK", "UPDATED"]
    assert out.splitlines()[1].split()[:7] == ["churn", "v1", "1", "40", "5", "churned", "classification"]
    code, data, _ = cli_json(capsys, "--store", s, "dataset", "list")
    assert [(d["name"], d["latest_version"], d["n_rows"]) for d in data] == [("churn", 1, 40)]

    code, out, _ = cli(capsys, "--store", s, "dataset", "show", "churn")
    assert code == 0 and "dataset:    churn@v1" in out and "target:     churned (classification)" in out
    assert "customer_id  id           identifier" in out
    code, data, _ = cli_json(capsys, "--store", s, "dataset", "show", "churn@v1")
    assert data["ref"] == "churn@v1" and data["source_path"] == str(csv_file.resolve())
    assert {c["name"]: c["role"] for c in data["schema"]["columns"]}["churned"] == "target"
    assert "profile" not in data and data["warnings"][0]["code"] == "identifier" and data["splits"] == []

    code, out, _ = cli(capsys, "--store", s, "dataset", "versions", "churn")
    assert code == 0 and out.splitlines()[1].split()[:3] == ["v1", "40", "5"]
    code, out, _ = cli(capsys, "--store", s, "dataset", "profile", "churn")
    assert code == 0 and "duplicate rows: 0 (0%)" in out and "monthly" in out
    code, data, _ = cli_json(capsys, "--store", s, "dataset", "profile", "churn@v1")
    assert data["ref"] == "churn@v1" and data["rows"] == 40
    assert {c["name"]: c["distinct"] for c in data["columns"]}["plan"] == 3


def test_import_options_and_a_second_version(capsys: pytest.CaptureFixture[str], store_dir: Path,
                                             tmp_path: Path) -> None:
    s = str(store_dir)
    src = tmp_path / "export.txt"
    src.write_bytes("1;Zürich;2,5\n2;Genève;3,5\n".encode("cp1252"))
    code, data, err = cli_json(capsys, "--store", s, "dataset", "import", str(src), "--delimiter", ";",
                               "--encoding", "cp1252", "--no-header", "--name", "towns")
    assert code == 0, err
    assert (data["result"]["n_rows"], data["result"]["n_cols"]) == (2, 3)
    src.write_bytes("1;Zürich;2,5\n2;Genève;3,5\n3;Bâle;4\n".encode("cp1252"))
    code, out, err = cli(capsys, "--store", s, "dataset", "import", str(src), "--delimiter", "semicolon",
                         "--encoding", "cp1252", "--no-header", "--name", "towns")
    assert code == 0, err
    assert out.startswith("Imported export.txt as towns@v2: 3 rows x 3 columns, after v1.")
    code, data, _ = cli_json(capsys, "--store", s, "dataset", "show", "towns@v1")
    assert [c["name"] for c in data["schema"]["columns"]] == ["column_1", "column_2", "column_3"]


def test_sample_split_and_delete(capsys: pytest.CaptureFixture[str], store_dir: Path) -> None:
    s = str(store_dir)
    code, out, err = cli(capsys, "--store", s, "dataset", "sample")
    assert code == 0, err
    assert out.startswith("Imported the iris sample as iris@v1: 150 rows x 5 columns, target 'species'")
    code, out, _ = cli(capsys, "--store", s, "dataset", "split", "iris", "--test", "0.2", "--validation", "0.1",
                       "--method", "stratified", "--seed", "7")
    assert code == 0
    assert out.strip().endswith("train 105, validation 15, test 30 rows.")
    code, data, _ = cli_json(capsys, "--store", s, "dataset", "split", "iris@v1", "--test", "0.2", "--validation",
                             "0.1", "--method", "stratified", "--seed", "7")
    assert data["counts"] == {"train": 105, "validation": 15, "test": 30} and data["method"] == "stratified"
    code, out, _ = cli(capsys, "--store", s, "dataset", "show", "iris")
    assert "stratified-test0.2-val0.1-by-species-seed7" in out

    with Store.open(store_dir, create=False) as store:
        with store.write() as sess:
            rm = m.RegisteredModel(name="flowers")
            sess.add(rm)
            sess.flush()
            sess.add(m.ModelVersion(model_id=rm.id, version=1, dataset_version_id=data["dataset_version_id"]))
    code, data_err, err = cli_json(capsys, "--store", s, "dataset", "delete", "iris")
    assert code == 1 and "flowers v1" in data_err["error"]["message"] and "--force" in data_err["error"]["hint"]
    assert "error: Dataset 'iris' was not deleted" in err
    code, out, _ = cli(capsys, "--store", s, "dataset", "delete", "iris", "--force")
    assert code == 0 and out.startswith("Deleted dataset 'iris' (1 version(s)) (forced")
    code, out, _ = cli(capsys, "--store", s, "dataset", "list")
    assert out.startswith("No datasets yet.")


@pytest.mark.sqlite_only("one of its cases is a missing store folder; with MODELYARD_DB_URL the database decides")
def test_errors(capsys: pytest.CaptureFixture[str], store_dir: Path, tmp_path: Path) -> None:
    s = str(store_dir)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,4,5\n")
    code, data, err = cli_json(capsys, "--store", s, "dataset", "import", str(bad))
    assert code == 1 and "line 3 (data row 2) has 3 fields" in data["error"]["message"]
    assert data["error"]["job_id"] and "--delimiter" in data["error"]["hint"]
    assert "error: " in err and "hint: " in err

    code, out, err = cli(capsys, "--store", s, "dataset", "show", "nope@v2")
    assert code == 1 and "There is no dataset 'nope'" in err
    cli(capsys, "--store", s, "dataset", "sample", "wine")
    code, out, err = cli(capsys, "--store", s, "dataset", "show", "wine@v4")
    assert code == 1 and "Dataset 'wine' has no version v4 (it has only v1)." in err
    code, out, err = cli(capsys, "--store", s, "dataset", "split", "wine", "--test", "1.2")
    assert code == 1 and "between 0 and 1" in err
    code, out, err = cli(capsys, "--store", s, "dataset", "delete", "wine@v1")
    assert code == 2 and "names a version" in err
    code, out, err = cli(capsys, "--store", s, "dataset", "sample", "mnist")
    assert code == 2  # argparse: not one of the choices
    code, out, err = cli(capsys, "--store", str(tmp_path / "missing"), "dataset", "list")
    assert code == 1 and "No Modelyard store" in err
