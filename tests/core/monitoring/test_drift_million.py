"""Drift checks at 1,000,000 rows: the issue's acceptance scenarios at scale (in-memory frames
through ``check_frames``; the store and the job are tested on small data in test_drift.py)."""

from __future__ import annotations

import pandas as pd
import pytest
from factories import CATEGORICAL, SHIFTS, assert_scenario, make_frame, shift_frame
from modelyard.core.monitoring.drift import check as dc


@pytest.fixture(scope="module")
def ref_1m() -> dc.Reference:
    return dc.prepare_reference(make_frame(1_000_000, 1), target="label", categorical=CATEGORICAL)


@pytest.fixture(scope="module")
def batch_1m() -> pd.DataFrame:
    return make_frame(1_000_000, 2)


@pytest.mark.parametrize("shift", SHIFTS)
def test_known_shifts_at_a_million_rows(ref_1m: dc.Reference, batch_1m: pd.DataFrame, shift: str | None) -> None:
    batch = shift_frame(batch_1m, shift, 2)
    result = dc.check_frames(ref_1m, batch)  # the default settings
    assert_scenario(result, shift)
    # large samples: distances decide (Evidently's defaults): normed Wasserstein, Jensen-Shannon
    assert result.feature("n0")["test"] == "wasserstein" and result.feature("c0")["test"] == "js"
    assert result.feature("n14")["test"] == "js"
    if shift is not None and shift not in ("drop",):
        assert result.verdict in ("warning", "drift")


def test_a_trivial_shift_in_a_huge_sample_is_significant_but_not_drift(ref_1m: dc.Reference,
                                                                      batch_1m: pd.DataFrame) -> None:
    batch = batch_1m.assign(n0=batch_1m["n0"] + 0.03)  # 3 % of a standard deviation
    result = dc.check_frames(ref_1m, batch, config={"multivariate": {"enabled": False}})
    n0 = result.feature("n0")
    assert n0["stats"]["ks_p"] < 1e-10  # a p-value alone would flag it
    assert n0["effect"] == pytest.approx(0.03, abs=0.01) and n0["drift"] is False
    assert result.drifted == []
