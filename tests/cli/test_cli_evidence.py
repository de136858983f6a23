"""``modelyard model evidence`` and the fairness options of ``model gate``; ``model register``
computes the evidence unless ``--no-evidence``. SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import cli, cli_json
from evidence_helpers import fair_frame, train_run
from modelyard.core.registry.review import evidence
from modelyard.core.store import Store


def test_evidence_gates_and_register_from_the_command_line(capsys, tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    with Store.open(root) as store:
        first = train_run(store, fair_frame(n=2000, noise=(0.25, 0.02)), "credit")
        second = train_run(store, fair_frame(n=2000, noise=(0.25, 0.02)), "credit", model="random_forest")
    s = ["--store", root]

    code, out, err = cli(capsys, *s, "model", "register", first, "--name", "credit", "--no-evidence")
    assert code == 0 and out.strip() == "Registered run " + first[:12] + " as credit@v1." and err == ""
    with Store.open(root) as store:
        assert evidence.latest_evidence(store, "credit@v1") is None

    code, out, _ = cli(capsys, *s, "model", "gate", "credit", "--max-gap", "sex:accuracy=0.05",
                       "--min-ratio", "sex:selection_rate=0.5", "--comment", "fairness policy")
    assert code == 0
    assert "  sensitive columns: sex" in out and "  accuracy gap between groups of sex at most 0.05" in out
    assert "  selection_rate ratio between groups of sex at least 0.5" in out

    code, _, err = cli(capsys, *s, "model", "alias", "credit@v1", "champion", "--comment", "go")
    assert code == 3 and "has no evidence to check the fairness gates on" in err
    assert "modelyard model evidence credit@v1" in err

    code, out, _ = cli(capsys, *s, "model", "evidence", "credit@v1", "--resamples", "100", "--repeats", "1")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("Evidence for credit@v1 on 500 held-out rows (the split ")
    assert lines[0].endswith("; 95 % intervals from 100 resamples.")
    assert lines[1] == "Metrics:" and lines[2].split()[0] == "accuracy"
    assert any(line.startswith("Groups of sex (") for line in lines)
    assert any(line.startswith("  accuracy: gap 0.") and "(worst F, best M)" in line for line in lines)
    assert any(line.startswith("Top features (drop in accuracy when shuffled): x1 ") for line in lines)

    code, _, err = cli(capsys, *s, "model", "alias", "credit@v1", "champion", "--comment", "go")
    assert code == 3 and "accuracy gap between groups of sex is 0." in err and "above the maximum 0.05." in err
    assert cli(capsys, *s, "model", "alias", "credit@v1", "champion", "--comment", "known gap, fixing it",
               "--force")[0] == 0

    code, data, err = cli_json(capsys, *s, "model", "register", second, "--name", "credit")
    assert code == 0 and data["ref"] == "credit@v2" and data["evidence"]["status"] == "succeeded"
    assert data["evidence"]["champion"] == "credit@v1" and data["evidence"]["rows"] == 500
    with Store.open(root) as store:
        doc = evidence.latest_evidence(store, "credit@v2").payload
    assert doc["sensitive"] == ["sex"] and doc["n_boot"] == 1000  # the gates' columns, the default resamples
    code, data, _ = cli_json(capsys, *s, "model", "evidence", "credit@v2", "--resamples", "50", "--repeats", "1",
                             "--sensitive", "age_band")
    assert code == 0 and data["document"]["champion"] == "credit@v1" and data["evidence"]["ref"] == "credit@v2"
    assert [g["column"] for g in data["document"]["groups"]] == ["age_band"]


def test_evidence_refusals_are_one_line(capsys, tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    with Store.open(root) as store:
        run = train_run(store, fair_frame(n=400), "credit")
    s = ["--store", root]
    code, out, err = cli(capsys, *s, "model", "register", run, "--name", "credit")
    assert code == 0 and "Computed its evidence on 100 held-out rows in " in out
    code, _, err = cli(capsys, *s, "model", "evidence", "credit@v1", "--sensitive", "region")
    assert code == 1 and "The sensitive column region is not in the rows of credit@v1." in err
    code, _, err = cli(capsys, *s, "model", "gate", "credit", "--max-gap", "sex-accuracy", "--comment", "x")
    assert code == 2 and "--max-gap expects COL:METRIC=VALUE, as in --max-gap sex:accuracy=0.05" in err
    code, _, err = cli(capsys, *s, "model", "gate", "credit", "--max-gap", "sex:auc=0.1", "--comment", "x")
    assert code == 1 and "needs a metric, one of accuracy" in err
