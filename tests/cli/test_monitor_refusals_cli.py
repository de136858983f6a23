"""``modelyard monitor check`` refuses a file that is not a batch of the model's data, and
``monitor retrain`` says in one line why a check cannot be retrained from, with an error exit code."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import cli
from factories import check_file, drifted_batch, write_batch
from factories import train_churn_model as train_model
from modelyard.core.monitoring import drift
from modelyard.core.store import Store


def test_check_refuses_a_foreign_file_and_retrain_says_why_it_cannot(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = tmp_path / "store"
    with Store.open(root) as store:
        train_model(store)
        no_target = check_file(store, write_batch(tmp_path, drifted_batch().drop(columns=["churned"]), "may.csv"))
    foreign = write_batch(tmp_path, pd.DataFrame({"city": ["Oslo"] * 30, "sales": range(30)}), "march.csv")
    code, out, err = cli(capsys, "monitor", "check", "churn", str(foreign), "--store", str(root))
    assert code != 0
    assert "march.csv has none of churn@v1's columns: age, plan, visits — check it is a batch of this model's data." \
        in err
    with Store.open(root) as store:
        assert len(drift.list_checks(store, "churn")) == 1  # only the earlier one

    code, out, err = cli(capsys, "monitor", "retrain", str(no_target["check_id"]), "--store", str(root))
    assert code != 0 and out == ""
    first = err.strip().splitlines()[0]
    assert "The batch may.csv has no 'churned' column (the target of churn@v1)" in first
