"""``modelyard model register|list|show|alias|stage|gate|timeline``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import cli
from modelyard.core.experiments import tracking
from modelyard.core.store import Store

X = np.array([[i, i % 3] for i in range(20)], dtype=float)
Y = np.array([0] * 10 + [1] * 10)


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code, out, _ = cli(capsys, *args, "--json")
    return code, json.loads(out)


@pytest.fixture
def runs(tmp_path: Path) -> tuple[str, list[str]]:
    from sklearn.dummy import DummyClassifier

    root = tmp_path / "store"
    ids = []
    with Store.open(root) as store:
        for acc in (0.8, 0.95):
            with tracking.start_run("churn", store=store, spec={"split": {"test": 0.2, "seed": 1}}) as run:
                run.log_metrics({"accuracy": acc})
                run.log_model(DummyClassifier().fit(X, Y))
            ids.append(run.id)
        with tracking.start_run("churn", store=store) as run:
            run.log_metrics({"accuracy": 0.5})
        ids.append(run.id)
    return str(root), ids


def test_model_cli_round_trip(capsys: pytest.CaptureFixture[str], runs: tuple[str, list[str]]) -> None:
    root, ids = runs
    code, out, _ = cli(capsys, "model", "register", ids[0][:12], "--name", "churn", "--store", root)
    assert code == 0 and "churn@v1" in out
    code, data = cli_json(capsys, "model", "register", ids[1], "--name", "churn", "--comment", "retrain",
                          "--store", root)
    assert code == 0 and data["ref"] == "churn@v2" and data["run_id"] == ids[1]
    assert data["metrics"] == {"accuracy": 0.95} and data["stage"] == "None"

    code, data = cli_json(capsys, "model", "register", ids[2], "--name", "churn", "--store", root)
    assert code == 1 and ids[2] in data["error"]["message"] and "no logged model" in data["error"]["message"]

    code, data = cli_json(capsys, "model", "list", "--store", root)
    assert code == 0 and [(d["name"], d["latest_version"]) for d in data] == [("churn", 2)]
    code, out, _ = cli(capsys, "model", "list", "--store", root)
    assert code == 0 and out.splitlines()[0].split()[:2] == ["NAME", "LATEST"]

    code, data = cli_json(capsys, "model", "show", "churn@v1", "--store", root)
    assert code == 0 and data["version"] == 1 and data["run_id"] == ids[0]
    code, out, _ = cli(capsys, "model", "show", "churn", "--store", root)
    assert code == 0 and "churn@v2" in out and "accuracy" in out

    # gates: accuracy >= 0.9 blocks v1 with exit code 3
    code, _, err = cli(capsys, "model", "gate", "churn", "--min", "accuracy=0.9", "--store", root)
    assert code == 1 and "--comment" in err
    code, _, err = cli(capsys, "model", "gate", "churn", "--min", "accuracy", "--comment", "x", "--store", root)
    assert code == 2
    code, data = cli_json(capsys, "model", "gate", "churn", "--min", "accuracy=0.9", "--beat-champion", "accuracy",
                          "--comment", "policy", "--store", root)
    assert code == 0 and data["gates"] == {"min_metrics": {"accuracy": 0.9},
                                           "beat_champion": {"metric": "accuracy", "higher_is_better": True}}
    code, out, _ = cli(capsys, "model", "gate", "churn", "--store", root)
    assert code == 0 and "accuracy >= 0.9" in out

    code, data = cli_json(capsys, "model", "alias", "churn@v1", "champion", "--comment", "go", "--store", root)
    assert code == 3 and data["error"]["exit_code"] == 3
    assert "accuracy 0.8" in data["error"]["message"] and "minimum 0.9" in data["error"]["message"]
    code, _, err = cli(capsys, "model", "stage", "churn@v1", "Production", "--force", "--store", root)
    assert code == 1 and "--force needs a --comment" in err
    code, data = cli_json(capsys, "model", "stage", "churn@v1", "Production", "--force", "--comment", "risk ok",
                          "--store", root)
    assert code == 0 and data["stage"] == "Production"

    code, data = cli_json(capsys, "model", "alias", "churn@v2", "champion", "--comment", "best", "--store", root)
    assert code == 0 and data["aliases"] == ["champion"]
    code, out, _ = cli(capsys, "model", "alias", "churn@v1", "challenger", "--comment", "next", "--store", root)
    assert code == 0 and "churn@v1" in out
    code, data = cli_json(capsys, "model", "alias", "churn", "challenger", "--remove", "--comment", "done",
                          "--store", root)
    assert code == 0 and data["removed"] is True
    code, data = cli_json(capsys, "model", "show", "churn@champion", "--store", root)
    assert code == 0 and data["version"] == 2
    code, data = cli_json(capsys, "model", "show", "churn@challenger", "--store", root)
    assert code == 1

    code, data = cli_json(capsys, "model", "timeline", "churn", "--store", root)
    assert code == 0
    assert [e["action"] for e in data] == ["remove_alias", "set_alias", "set_alias", "set_stage", "gate_override",
                                          "set_gates", "register", "register", "create_model"]
    override = data[4]
    assert override["comment"] == "risk ok" and override["actor"] == "tester" and override["version"] == 1
    code, out, _ = cli(capsys, "model", "timeline", "churn", "--store", root)
    assert code == 0 and "gate_override" in out and "set_alias champion" in out

    code, _, err = cli(capsys, "model", "stage", "churn@v2", "Live", "--comment", "x", "--store", root)
    assert code == 1 and "not a stage" in err
    code, _, err = cli(capsys, "model", "show", "nope", "--store", root)
    assert code == 1 and "no registered model 'nope'" in err


def test_model_card_and_lineage_cli(capsys: pytest.CaptureFixture[str], runs: tuple[str, list[str]],
                                    tmp_path: Path) -> None:
    root, ids = runs
    assert cli(capsys, "model", "register", ids[0], "--name", "churn", "--store", root)[0] == 0
    code, data = cli_json(capsys, "model", "card", "churn@v1", "--store", root)
    assert code == 0 and data["ref"] == "churn@v1" and data["metrics"] == {"accuracy": 0.8}
    assert data["notes"]["intended_use"] == data["notes"]["notes"] == "" and data["drift"] is None
    assert data["html"] is None
    code, out, _ = cli(capsys, "model", "card", "churn@v1", "--store", root)
    assert code == 0 and re.search(r"intended use: +\(required before a promotion request", out)
    assert "drift:" in out and "never checked" in out
    assert "accuracy:" in out
    # editing needs a comment; a comment alone edits nothing
    code, _, err = cli(capsys, "model", "card", "churn@v1", "--intended-use", "Scoring", "--store", root)
    assert code == 1 and "--comment" in err
    code, _, err = cli(capsys, "model", "card", "churn@v1", "--comment", "x", "--store", root)
    assert code == 2 and "--intended-use" in err
    page = tmp_path / "card.html"
    code, data = cli_json(capsys, "model", "card", "churn@v1", "--intended-use", "Monthly <b>churn</b> scoring",
                          "--notes", "", "--comment", "first card", "--html", str(page), "--store", root)
    assert code == 0 and data["notes"]["intended_use"] == "Monthly <b>churn</b> scoring"
    assert data["html"] == str(page.resolve()) and "Monthly &lt;b&gt;churn&lt;/b&gt; scoring" in page.read_text()
    code, out, _ = cli(capsys, "model", "card", "churn", "--html", str(tmp_path / "latest.html"), "--store", root)
    assert code == 0 and out.startswith("Wrote the model card of churn@v1 to") and (tmp_path / "latest.html").exists()
    code, out, _ = cli(capsys, "model", "card", "churn@v1", "--store", root)
    assert re.search(r"intended use: +Monthly <b>churn</b> scoring", out)
    code, data = cli_json(capsys, "model", "timeline", "churn", "--store", root)
    assert (data[0]["action"], data[0]["comment"], data[0]["version"]) == ("edit_card", "first card", 1)
    # lineage
    code, data = cli_json(capsys, "model", "lineage", "churn@v1", "--store", root)
    assert code == 0 and data["focus"] == data["columns"][-1][0]
    assert [(n["type"], n["role"]) for n in data["nodes"]] == [("model_version", "focus"), ("run", "upstream")]
    assert [(e["relation"], e["recorded"]) for e in data["edges"]] == [("registered_as", True)]
    code, out, _ = cli(capsys, "model", "lineage", "churn@v1", "--store", root)
    assert code == 0 and "* churn@v1" in out and f"run {ids[0][:8]}" in out and "registered_as" in out
    code, _, err = cli(capsys, "model", "lineage", "nope", "--store", root)
    assert code == 1 and "no registered model 'nope'" in err


@pytest.mark.parametrize(("value", "said"), [(float("nan"), "NaN"), ("high", "'high'")])
def test_a_gate_refuses_a_nan_or_non_numeric_metric_from_the_command_line(
        capsys: pytest.CaptureFixture[str], runs: tuple[str, list[str]], value: Any, said: str) -> None:
    from modelyard.core.registry import versions as registry
    from modelyard.core.store import models as m

    root, ids = runs
    assert cli(capsys, "model", "register", ids[1], "--name", "churn", "--store", root)[0] == 0
    with Store.open(root) as store:  # e.g. what a bundle's manifest recorded
        with store.write() as s:
            s.get(m.ModelVersion, registry.get_version(store, "churn@v1").id).metrics = {"accuracy": value}
    code, _, err = cli(capsys, "model", "gate", "churn", "--min", "accuracy=0.9", "--comment", "policy",
                       "--store", root)
    assert code == 0, err
    for args in (("alias", "churn@v1", "champion"), ("stage", "churn@v1", "Production")):
        code, out, err = cli(capsys, "model", *args, "--comment", "go", "--store", root)
        assert code == 3 and "Traceback" not in err and said in err and "accuracy" in err, err
        assert len(err.strip().splitlines()) == 2  # the message and its hint
    code, data = cli_json(capsys, "model", "show", "churn@v1", "--store", root)
    assert data["aliases"] == [] and data["stage"] == "None"
    code, data = cli_json(capsys, "model", "timeline", "churn", "--store", root)
    assert "gate_override" not in [e["action"] for e in data]
