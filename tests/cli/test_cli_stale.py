"""``--expect-revision`` on ``modelyard model alias|stage|gate``: a change made from an out-of-date
view of a model exits 1 with the core's one-line message (who changed it and when), and nothing is
overwritten; ``model show`` prints the revision. On SQLite and PostgreSQL (tests/backends.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import cli, run_modelyard
from modelyard.core.common.errors import StaleEditError
from modelyard.core.experiments import tracking
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store


@pytest.fixture
def churn(tmp_path: Path) -> str:
    """A store with churn@v1..v3 and champion on v1 (revision 1)."""
    root = tmp_path / "store"
    with Store.open(root) as store:
        for i in range(3):
            with tracking.start_run("team", store=store) as run:
                run.log_metric("accuracy", 0.8 + i / 100)
                run.log_bytes(f"model {i}".encode(), "model/model.joblib", kind="model")
            registry.register(store, run.id, "churn")
        registry.set_alias(store, "churn@v1", "champion", comment="first")
    return str(root)


def test_show_prints_the_revision(capsys: pytest.CaptureFixture[str], churn: str) -> None:
    code, out, _ = cli(capsys, "model", "show", "churn@champion", "--store", churn)
    assert code == 0 and re.search(r"^model revision:\s+1$", out, re.MULTILINE), out
    code, out, _ = cli(capsys, "model", "show", "churn", "--store", churn, "--json")
    assert code == 0 and json.loads(out)["revision"] == 1
    code, out, _ = cli(capsys, "model", "gate", "churn", "--store", churn, "--json")
    assert code == 0 and json.loads(out)["revision"] == 1


def test_a_stale_alias_move_exits_1_with_the_core_message_and_overwrites_nothing(
        capsys: pytest.CaptureFixture[str], churn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_USER", "alice")
    code, out, _ = cli(capsys, "model", "alias", "churn@v2", "champion", "--expect-revision", "1",
                       "--comment", "alice: better", "--store", churn, "--json")
    assert code == 0 and json.loads(out)["revision"] == 2
    with Store.open(Path(churn)) as store:
        before = registry.timeline(store, "churn")
        with pytest.raises(StaleEditError) as core:  # what the core says to the same change
            registry.set_alias(store, "churn@v3", "champion", comment="bob", expected_revision=1)
    monkeypatch.setenv("MODELYARD_USER", "bob")
    args = ["model", "alias", "churn@v3", "champion", "--expect-revision", "1", "--comment", "bob: v3", "--store",
            churn]
    code, out, err = cli(capsys, *args)
    assert code == 1 and out == ""
    first = err.splitlines()[0]
    assert first == f"error: {core.value.message}"
    assert re.fullmatch(r"error: Not changed: alice moved champion to churn@v2 at \d{4}-\d\d-\d\d \d\d:\d\d UTC, "
                        r"after you loaded churn\.", first), first
    assert "Reload churn" in err
    done = run_modelyard(*args, "--json")  # the real command, in its own process
    assert done.returncode == 1 and json.loads(done.stdout)["error"]["message"] == core.value.message
    with Store.open(Path(churn)) as store:
        assert registry.get_version(store, "churn@champion").ref == "churn@v2"
        assert registry.timeline(store, "churn") == before


def test_stale_stage_gate_and_alias_removal_exit_1(capsys: pytest.CaptureFixture[str], churn: str) -> None:
    code, _, _ = cli(capsys, "model", "stage", "churn@v1", "Staging", "--comment", "try", "--store", churn)
    assert code == 0
    for args in (["stage", "churn@v2", "Staging"], ["gate", "churn", "--min", "accuracy=0.5"],
                 ["alias", "churn", "champion", "--remove"]):
        code, out, err = cli(capsys, "model", *args, "--expect-revision", "1", "--comment", "stale", "--store", churn)
        assert code == 1, (args, out, err)
        assert err.startswith("error: Not changed: tester moved v1 to Staging at "), err
    code, out, _ = cli(capsys, "model", "gate", "churn", "--min", "accuracy=0.5", "--expect-revision", "2",
                       "--comment", "fresh", "--store", churn, "--json")
    assert code == 0 and json.loads(out) == {"model": "churn", "gates": {"min_metrics": {"accuracy": 0.5}},
                                             "revision": 3}
    code, _, err = cli(capsys, "model", "gate", "churn", "--expect-revision", "3", "--store", churn)
    assert code == 2 and "--expect-revision goes with a change of the gates" in err
