"""``modelyard monitor check|list|show|config``: exit codes, text and --json output."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import backend_params, module_db_url, module_store, use_module_database
from cli_helpers import cli, cli_json
from factories import make_frame
from factories import train_drift_model as train_model


@pytest.fixture(scope="module", params=backend_params())
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A store with a trained model (shop@v1) on each backend, and batches to check against it."""
    root = tmp_path_factory.mktemp("drift-cli")
    with module_store(request, root / "store") as store:
        train_model(store, make_frame(2000, 1), "shop")
        files = {}
        for shift in (None, "mean", "drop"):
            path = root / f"batch-{shift}.csv"
            make_frame(1200, 21, shift).to_csv(path, index=False)
            files[shift] = str(path)
        yield {"store": str(root / "store"), "files": files, "db_url": module_db_url(store)}


@pytest.fixture(autouse=True)
def _lab_database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI opens the lab's store by its folder, and on PostgreSQL by its database's URL."""
    use_module_database(request, monkeypatch, "lab")


def test_check_exit_codes_follow_the_verdict(capsys: pytest.CaptureFixture[str], lab: dict[str, Any]) -> None:
    store, files = lab["store"], lab["files"]
    code, out, err = cli(capsys, "monitor", "check", "shop", files[None], "--store", store)
    assert code == 0, err
    assert out.startswith("Check 1 of shop@v1: OK") and "FEATURE" in out and "domain classifier: ROC AUC" in out
    # one feature drifts: a warning (exit 0), unless asked to fail on warnings
    code, out, _ = cli(capsys, "monitor", "check", "shop@v1", files["mean"], "--store", store)
    assert code == 0 and "WARNING" in out.splitlines()[0] and "n1" in out
    code, _, _ = cli(capsys, "monitor", "check", "shop@v1", files["mean"], "--fail-on", "warning", "--store", store)
    assert code == 3
    # a critical feature drifting is drift: exit 3 so CI can gate on it
    code, data, _ = cli_json(capsys, "monitor", "check", "shop", files["mean"], "--critical", "n1", "--store", store)
    assert code == 3 and data["status"] == "succeeded"
    check = data["check"]
    assert check["verdict"] == "drift" and check["drifted"] == ["n1"] and check["config"]["critical"] == ["n1"]
    assert data["result"]["check_id"] == check["id"] and check["features"][0]["name"] == "n1"
    assert {"test", "statistic", "p_value", "effect", "threshold", "drift", "score", "histogram"} <= \
        set(check["features"][0])
    # a dropped column is named
    code, data, _ = cli_json(capsys, "monitor", "check", "shop", files["drop"], "--store", store)
    assert code == 3 and data["check"]["schema"][0]["column"] == "n3"
    assert data["check"]["schema"][0]["kind"] == "missing_column"


def test_check_options_and_bad_input(capsys: pytest.CaptureFixture[str], lab: dict[str, Any]) -> None:
    store, files = lab["store"], lab["files"]
    code, data, _ = cli_json(capsys, "monitor", "check", "shop", files["mean"], "--threshold", "n1=0.9",
                             "--test", "c0=psi", "--set", "multivariate.enabled=false", "--store", store)
    assert code == 0, data
    check = data["check"]
    rows = {r["name"]: r for r in check["features"]}
    assert rows["n1"]["threshold"] == 0.9 and rows["n1"]["drift"] is False and rows["c0"]["test"] == "psi"
    assert check["multivariate"] is None and check["skipped"]["multivariate"] == "turned off in the configuration"
    # the stored batch can be checked again by its dataset version
    code, data, _ = cli_json(capsys, "monitor", "check", "shop", "shop-batches@v2", "--store", store)
    assert code == 0 and data["check"]["batch_ref"] == "shop-batches@v2"
    code, _, err = cli(capsys, "monitor", "check", "shop", "no-such-file.csv", "--store", store)
    assert code == 2 and "neither a file nor a dataset version" in err
    code, _, err = cli(capsys, "monitor", "check", "shop", files[None], "--threshold", "p_value=7", "--store", store)
    assert code == 1 and "thresholds.p_value must be between 0 and 1" in err
    code, _, err = cli(capsys, "monitor", "check", "nope", files[None], "--store", store)
    assert code == 1 and "no registered model 'nope'" in err


def test_list_and_show(capsys: pytest.CaptureFixture[str], lab: dict[str, Any]) -> None:
    store, files = lab["store"], lab["files"]
    cli(capsys, "monitor", "check", "shop", files["mean"], "--store", store)
    code, checks, _ = cli_json(capsys, "monitor", "list", "shop", "--store", store)
    assert code == 0 and checks and checks[0]["id"] == max(c["id"] for c in checks)
    assert checks[0]["verdict"] == "warning" and checks[0]["drifted"] == ["n1"] and checks[0]["batch_rows"] == 1200
    code, out, _ = cli(capsys, "monitor", "list", "shop", "--limit", "1", "--store", store)
    assert code == 0 and out.splitlines()[0].split()[:3] == ["ID", "CHECKED", "MODEL"] and len(out.splitlines()) == 2
    code, out, _ = cli(capsys, "monitor", "show", str(checks[0]["id"]), "--store", store)
    assert code == 0 and f"Check {checks[0]['id']} of shop@v1: WARNING" in out and "performance on" in out
    code, full, _ = cli_json(capsys, "monitor", "show", str(checks[0]["id"]), "--store", store)
    assert full["performance"]["metrics"] and full["prediction"]["output"] == "label"
    code, _, err = cli(capsys, "monitor", "show", "9999", "--store", store)
    assert code == 1 and "no drift check 9999" in err


def test_config_show_set_unset_reset(capsys: pytest.CaptureFixture[str], lab: dict[str, Any]) -> None:
    store = lab["store"]
    code, data, _ = cli_json(capsys, "monitor", "config", "shop", "--store", store)
    assert code == 0 and data["config"]["rule"] == {"drift_share": 0.5} and data["stored"] == {}
    code, _, err = cli(capsys, "monitor", "config", "shop", "--critical", "n1", "--store", store)
    assert code == 1 and "comment" in err
    code, data, _ = cli_json(capsys, "monitor", "config", "shop", "--critical", "n1", "--set", "thresholds.psi=0.3",
                             "--set", "features.c0.test=psi", "--comment", "n1 matters", "--store", store)
    assert code == 0 and data["stored"] == {"critical": ["n1"], "thresholds": {"psi": 0.3},
                                            "features": {"c0": {"test": "psi"}}}
    code, out, _ = cli(capsys, "monitor", "config", "shop", "--store", store)
    lines = {line.split()[0].rstrip(":"): line for line in out.splitlines() if line.strip()}
    assert "n1" in lines["critical"] and "(set)" in lines["critical"] and "(set)" not in lines["seed"]
    assert "test=psi" in lines["features.c0"]
    code, _, err = cli(capsys, "monitor", "config", "shop", "--set", "rule.drift_share=2", "--comment", "x",
                       "--store", store)
    assert code == 1 and "rule.drift_share" in err
    code, data, _ = cli_json(capsys, "monitor", "config", "shop", "--unset", "thresholds.psi", "--not-critical", "n1",
                             "--comment", "less", "--store", store)
    assert code == 0 and data["stored"] == {"features": {"c0": {"test": "psi"}}}
    code, _, err = cli(capsys, "monitor", "config", "shop", "--unset", "seed", "--comment", "x", "--store", store)
    assert code == 2 and "'seed' is not set" in err
    code, data, _ = cli_json(capsys, "monitor", "config", "shop", "--reset", "--comment", "defaults", "--store", store)
    assert code == 0 and data["stored"] == {}
    code, events, _ = cli_json(capsys, "model", "timeline", "shop", "--store", store)
    actions = [e["action"] for e in events]
    assert actions.count("set_monitoring") == 3 and "drift_check" in actions


def test_monitor_module_loads_nothing_heavy() -> None:
    import subprocess
    import sys

    code = ("import sys; import modelyard.cli.monitor; "
            "heavy = [m for m in ('pandas', 'numpy', 'sklearn', 'scipy', 'pyarrow', 'sqlalchemy') "
            "if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2] / "app")
    assert out.stdout.strip() == "[]"
