"""Which column the import dialog pre-selects as the target (core/datasets/targets.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from modelyard.core.datasets import service as ds
from modelyard.core.datasets.targets import guess_target


def test_a_column_named_like_a_target_wins_even_when_not_last():
    assert guess_target(["age", "Species", "note"], {"note": ["a", "b", "c"]}) == "Species"
    assert guess_target(["x", "is_fraud", "label"], {}) == "label"  # the last of the named ones


def test_a_low_cardinality_last_column_is_taken_but_not_a_measurement_or_an_id():
    assert guess_target(["a", "b", "outlook"], {"outlook": ["sun", "rain", "sun", "fog", "rain", "sun"]}) == "outlook"
    assert guess_target(["a", "b", "weight"], {"weight": [1.5, 2.25, 1.5, 2.25, 3.5, 1.5]}) is None
    assert guess_target(["a", "b", "code"], {"code": ["A1", "A2", "A3", "A4"]}) is None  # all differ
    assert guess_target(["a", "b", "flag"], {"flag": [None, None, 1]}) is None
    assert guess_target(["only"], {"only": ["x", "y", "x", "y"]}) is None


def test_sniff_reports_the_likely_target(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "loans.csv"
    pd.DataFrame({"amount": rng.normal(100, 10, 200).round(2), "grade_letter": rng.choice(list("ABC"), 200),
                  "repaid": rng.choice(["yes", "no"], 200)}).to_csv(path, index=False)
    assert ds.sniff(path).likely_target == "repaid"
    plain = tmp_path / "measures.csv"
    pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)}).to_csv(plain, index=False)
    assert ds.sniff(plain).likely_target is None
