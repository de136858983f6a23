"""Fuzzing the tracking API's values: whatever a script passes, the only error is a
ModelyardError, and every value a call accepted is in the store after the run ends."""

from __future__ import annotations

import datetime as dt
import math
import warnings
from typing import Any

import numpy as np
import pytest
from backends import backend_params, module_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelyard.core.common.errors import ModelyardError
from modelyard.core.experiments import tracking
from modelyard.core.store import Store

ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=()), max_size=12)  # surrogates and NUL too
KEYS = st.one_of(st.sampled_from(["loss", "acc", "val loss", "ключ", "a/b:c@d", "x" * 250, "x" * 251]),
                 ANY_TEXT, st.integers(), st.none(), st.builds(lambda: 10**5000))
HUGE_INTS = (st.integers(min_value=-(2**80), max_value=2**80) | st.integers(min_value=-(10**400), max_value=10**400)
             | st.builds(lambda sign: sign * 10**5000, st.sampled_from([1, -1])))  # beyond Python's int -> text limit


def _numpy(values: st.SearchStrategy[Any], *types: type) -> st.SearchStrategy[Any]:
    def convert(args: tuple[type, Any]) -> Any:
        kind, value = args
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return kind(value)
        except (OverflowError, ValueError, TypeError):
            return value
    return st.tuples(st.sampled_from(types), values).map(convert)


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.floats(min_value=-1e6, max_value=1e6), HUGE_INTS,
    _numpy(st.floats(), np.float64, np.float32, np.float16),
    _numpy(HUGE_INTS, np.int64, np.uint64, np.int8),
    st.booleans(), st.complex_numbers(max_magnitude=10), st.just(np.complex64(1 + 2j)),
)
VALUES = st.one_of(NUMBERS, ANY_TEXT, st.none(), st.binary(max_size=4), st.lists(st.floats(), max_size=2))
STEPS = st.one_of(st.none(), HUGE_INTS, st.integers(min_value=-3, max_value=50), NUMBERS, ANY_TEXT)
STAMPS = st.one_of(st.none(), HUGE_INTS, st.integers(min_value=0, max_value=tracking.MAX_TIMESTAMP_MS + 3), NUMBERS)

CALLS = st.one_of(
    st.tuples(st.just("metric"), KEYS, VALUES, STEPS, STAMPS),
    st.tuples(st.just("metrics"), st.dictionaries(KEYS, VALUES, max_size=3), STEPS, STAMPS),
    st.tuples(st.just("params"), st.dictionaries(KEYS, VALUES, max_size=3)),
    st.tuples(st.just("tags"), st.dictionaries(KEYS, VALUES, max_size=3)),
    st.tuples(st.just("flush")),
)


class Expected:
    """What the store must hold: the run's values as the API documents them."""

    def __init__(self) -> None:
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.points: dict[str, list[tuple[int, int | None, float]]] = {}
        self.next_step: dict[str, int] = {}

    def metrics(self, metrics: dict[Any, Any], step: Any, stamp: Any) -> None:
        for key, value in metrics.items():
            v = float(value)
            if math.isnan(v):  # not recorded on SQLite (documented, with a warning)
                continue
            if step is None:
                s = self.next_step.get(key, 0)
            else:
                s = int(step)
            self.next_step[key] = max(self.next_step.get(key, 0), s + 1)
            self.points.setdefault(key, []).append((s, None if stamp is None else int(math.floor(stamp)), v))


@pytest.fixture(scope="module", params=backend_params())
def fuzz_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """One store every example logs a new run into, on SQLite and on PostgreSQL."""
    with module_store(request, tmp_path_factory.mktemp("fuzz") / "store") as s:
        yield s


@settings(max_examples=60, deadline=dt.timedelta(seconds=5), suppress_health_check=[HealthCheck.too_slow])
@given(calls=st.lists(CALLS, max_size=12))
def test_any_value_is_stored_or_refused_with_a_modelyard_error_and_nothing_accepted_is_lost(
        fuzz_store: Store, calls: list[tuple[Any, ...]]) -> None:
    store = fuzz_store
    expected = Expected()
    run = tracking.start_run("fuzz", store=store)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN skipped: documented, with a warning
        for call in calls:
            kind, args = call[0], call[1:]
            try:
                if kind == "metric":
                    key, value, step, stamp = args
                    run.log_metric(key, value, step=step, timestamp=stamp)
                    expected.metrics({key: value}, step, stamp)
                elif kind == "metrics":
                    metrics, step, stamp = args
                    run.log_metrics(metrics, step=step, timestamp=stamp)
                    expected.metrics(metrics, step, stamp)
                elif kind == "params":
                    run.log_params(args[0])
                    expected.params.update({k: str(v) for k, v in args[0].items()})
                elif kind == "tags":
                    run.set_tags(args[0])
                    expected.tags.update({k: str(v) for k, v in args[0].items()})
                else:
                    run.flush()
            except ModelyardError:
                pass  # refused, naming what: fine; anything else escaping fails the test
        run.end()
    info = tracking.get_run(run.id, store=store)
    assert info.status == "succeeded"
    assert info.params == dict(sorted(expected.params.items()))
    assert info.tags == dict(sorted(expected.tags.items()))
    assert set(info.metrics) == set(expected.points)
    for key, points in expected.points.items():
        steps, stamps, values = tracking.metric_history(run.id, key, store=store, as_numpy=True)
        stored = list(zip(steps.tolist(), stamps.tolist(), values.tolist()))
        assert sorted((s, v) for s, _, v in stored) == sorted((s, v) for s, _, v in points)
        for s, ts, v in points:
            assert ts is None or (s, ts, v) in stored
