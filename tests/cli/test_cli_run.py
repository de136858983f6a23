"""``modelyard run list|show|delete|restore|purge`` and ``modelyard experiment list``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli
from modelyard.core.experiments import tracking
from modelyard.core.store import Store


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code, out, err = cli(capsys, *args, "--json")
    return code, json.loads(out)


@pytest.fixture
def runs(tmp_path: Path) -> tuple[str, dict[str, str]]:
    root = tmp_path / "store"
    ids = {}
    with Store.open(root) as store:
        for name, model, f1 in (("a", "rf", 0.9), ("b", "gbm", 0.7), ("c", "rf", 0.8)):
            with tracking.start_run("churn", name=name, store=store, tags={"team": "risk"}) as run:
                run.log_params({"model": model})
                run.log_metrics({"f1": f1, "auc": f1 + 0.05})
            ids[name] = run.id
        tracking.start_run("other", name="d", store=store).end()
    return str(root), ids


def test_run_list_text_and_json(capsys: pytest.CaptureFixture[str], runs: tuple[str, dict[str, str]]) -> None:
    root, ids = runs
    code, out, _ = cli(capsys, "run", "list", "--store", root)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["RUN", "ID", "EXPERIMENT", "NAME", "STATUS", "STARTED"]
    assert "AUC" in lines[0] and "F1" in lines[0]
    assert len(lines) == 5 and ids["a"][:12] in out

    code, data = cli_json(capsys, "run", "list", "--store", root, "--experiment", "churn",
                          "--filter", 'metrics.f1 >= 0.8 and params.model = "rf"', "--order-by", "metrics.f1 DESC")
    assert code == 0
    assert [r["name"] for r in data] == ["a", "c"]
    first = data[0]
    assert first["run_id"] == ids["a"] and first["status"] == "succeeded" and first["experiment"] == "churn"
    assert first["params"] == {"model": "rf"} and first["metrics"]["f1"] == 0.9 and first["tags"] == {"team": "risk"}
    assert first["start_time"].endswith("+00:00") and first["duration_s"] >= 0

    code, data = cli_json(capsys, "run", "list", "--store", root, "--limit", "1", "--order-by", "metrics.auc")
    assert [r["name"] for r in data] == ["b"]


def test_run_list_bad_filter_is_a_usage_error_with_a_caret(capsys: pytest.CaptureFixture[str],
                                                            runs: tuple[str, dict[str, str]]) -> None:
    root, _ = runs
    code, out, err = cli(capsys, "run", "list", "--store", root, "--filter", "metrics.f1 >")
    assert code == 2
    assert "expected a value after '>'" in err
    assert "  metrics.f1 >\n" in err and "              ^" in err
    code, out, err = cli(capsys, "run", "list", "--store", root, "--filter", "f1 > 1", "--json")
    assert code == 2 and json.loads(out)["error"]["message"].startswith("unknown field 'f1'")
    code, out, err = cli(capsys, "run", "list", "--store", root, "--experiment", "nope")
    assert code == 1 and "no experiment named 'nope'" in err


def test_run_list_with_a_filter_beyond_the_limits_is_one_line_not_a_traceback(
        capsys: pytest.CaptureFixture[str], runs: tuple[str, dict[str, str]]) -> None:
    root, _ = runs
    for expr in ("(" * 300 + "metrics.f1 > 0" + ")" * 300,
                 " or ".join(f"metrics.f1 > {i}" for i in range(1200))):
        code, out, err = cli(capsys, "run", "list", "--store", root, "--filter", expr)
        assert code == 2 and out == ""
        assert "Traceback" not in err and "SELECT" not in err and "Unexpected" not in err
        assert len(err.strip().splitlines()) <= 2 and len(err) < 500, err
        assert "--filter" in err or "filter" in err


def test_run_show(capsys: pytest.CaptureFixture[str], runs: tuple[str, dict[str, str]]) -> None:
    root, ids = runs
    code, out, _ = cli(capsys, "run", "show", ids["a"][:8], "--store", root)
    assert code == 0
    assert "run id:" in out and ids["a"] in out and "params:" in out and "model: rf" in out
    assert "metrics:" in out and "f1:  0.9" in out and "artifacts: (none)" in out
    code, data = cli_json(capsys, "run", "show", ids["a"], "--store", root)
    assert data["run_id"] == ids["a"] and data["metrics"] == {"auc": 0.9 + 0.05, "f1": 0.9}
    assert data["params"] == {"model": "rf"} and data["status"] == "succeeded" and data["artifacts"] == []
    code, out, err = cli(capsys, "run", "show", "f" * 32, "--store", root)
    assert code == 1 and "There is no run" in err


def test_run_delete_restore_purge(capsys: pytest.CaptureFixture[str], runs: tuple[str, dict[str, str]]) -> None:
    root, ids = runs
    code, out, _ = cli(capsys, "run", "delete", ids["b"], "--store", root)
    assert code == 0 and "to the trash" in out
    code, data = cli_json(capsys, "run", "list", "--store", root)
    assert ids["b"] not in [r["run_id"] for r in data]
    code, data = cli_json(capsys, "run", "list", "--store", root, "--deleted")
    assert [r["run_id"] for r in data] == [ids["b"]]
    code, data = cli_json(capsys, "run", "restore", ids["b"], "--store", root)
    assert data == {"run_id": ids["b"], "deleted": False, "runs": 1}
    code, data = cli_json(capsys, "run", "list", "--store", root)
    assert ids["b"] in [r["run_id"] for r in data]
    cli(capsys, "run", "delete", ids["b"], "--store", root)
    code, data = cli_json(capsys, "run", "purge", "--store", root)
    assert code == 0 and data["runs"] == 1
    code, out, err = cli(capsys, "run", "show", ids["b"], "--store", root)
    assert code == 1


def test_experiment_list(capsys: pytest.CaptureFixture[str], runs: tuple[str, dict[str, str]]) -> None:
    root, _ = runs
    code, out, _ = cli(capsys, "experiment", "list", "--store", root)
    assert code == 0 and out.splitlines()[0].split() == ["ID", "NAME", "RUNS", "LAST", "RUN", "CREATED"]
    code, data = cli_json(capsys, "experiment", "list", "--store", root)
    assert [(e["name"], e["runs"]) for e in data] == [("churn", 3), ("other", 1)]


@pytest.mark.sqlite_only("a store named by its folder; with MODELYARD_DB_URL the database decides")
def test_missing_store_is_not_created(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = cli(capsys, "run", "list", "--store", str(tmp_path / "nowhere"))
    assert code == 1 and "No Modelyard store" in err
    assert not (tmp_path / "nowhere").exists()
