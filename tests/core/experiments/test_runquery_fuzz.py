"""Fuzzing the runs filter: any text gives a parsed filter or a FilterError (a ModelyardError),
never a traceback; a filter that parses runs in SQL and in memory with the same result."""

from __future__ import annotations

import datetime as dt

import pytest
from backends import backend_params, module_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelyard.core.common.errors import ModelyardError
from modelyard.core.experiments import runquery as rq
from modelyard.core.experiments import tracking
from modelyard.core.store import Store

FUZZ = settings(max_examples=80, deadline=dt.timedelta(seconds=5),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# not 'duration': a run shorter than a millisecond can have duration 0 in SQL and not in memory
FIELDS = ["metrics.f1", "metrics.`val loss`", 'metric."a b"', "params.model", "params.depth", "tags.team",
          "status", "name", "run_id", "experiment", "user", "start_time", "attributes.status",
          "accuracy", "params.", "tags.`x``y`", "métrique", "²", "٣"]
OPS = ["=", "==", "!=", "<>", "<", "<=", ">", ">=", "like", "not like", "ilike", "in", "not in", "!", "=<"]
NUMBERS = st.one_of(st.integers(min_value=-(10**30), max_value=10**30).map(str),
                    st.floats(allow_nan=False).map(repr), st.just("9" * 400), st.just("-" + "9" * 5000),
                    st.just("1e999"), st.just(".5"), st.just("1.2.3"), st.just("0x10"))
STRINGS = st.text(max_size=10).map(lambda t: "'" + t.replace("'", "''") + "'") | st.sampled_from(
    ["'2024-05-01'", "'2024-05-01 14:30'", "'0001-01-01'", "'9999-12-31 23:59+00:00'", "'0001-01-01T00:00-05:00'", "'rf'", "'%'", "'\\%'", "'FINISHED'", "'unterminated", '"x"'])
VALUES = NUMBERS | STRINGS | st.lists(NUMBERS | STRINGS, max_size=3).map(lambda v: "(" + ", ".join(v) + ")")
COMPARISONS = st.builds(lambda f, o, v: f"{f} {o} {v}", st.sampled_from(FIELDS), st.sampled_from(OPS), VALUES)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(children, min_size=2, max_size=4).map(" and ".join),
        st.lists(children, min_size=2, max_size=4).map(" OR ".join),
        children.map(lambda c: f"not {c}"),
        children.map(lambda c: f"({c})"),
    )


EXPRESSIONS = st.recursive(COMPARISONS, _combine, max_leaves=12)
# beyond the limits sometimes: wrapped up to 30 levels deep, or repeated up to 300 times
DEEP = st.builds(lambda e, n, wrap: (wrap * n) + e + (")" * n if wrap.startswith("(") else ""),
                 EXPRESSIONS, st.integers(min_value=0, max_value=30), st.sampled_from(["(", "not ", "(not "]))
LONG = st.builds(lambda e, n, j: j.join([e] * n), COMPARISONS, st.integers(min_value=1, max_value=300),
                 st.sampled_from([" and ", " or "]))
TOKENS = st.lists(st.sampled_from(FIELDS + OPS + ["(", ")", ",", "and", "or", "not", "'x'", '"', "`", "1e5", "-",
                                                  "in (", "'", "''", " ", "\n", "\x00", "é", "\ud800"]),
                  max_size=25).map(" ".join)
RUNS = {"a": ({"model": "rf", "depth": "8"}, {"f1": 0.9, "val loss": 0.1}, {"team": "risk"}),
        "b": ({"model": "gbm", "depth": "deep"}, {"f1": 0.5}, {"team": "growth"}),
        "c": ({}, {}, {})}


@pytest.fixture(scope="module", params=backend_params())
def runs_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Three runs, only read, on SQLite and on PostgreSQL."""
    with module_store(request, tmp_path_factory.mktemp("filterfuzz") / "store") as store:
        for name, (params, metrics, tags) in RUNS.items():
            with tracking.start_run("q", name=name, store=store, params=params, tags=tags) as run:
                run.log_metrics(metrics)
        yield store


def _parses_or_refuses(text: str) -> rq.Node | None:
    try:
        return rq.parse_filter(text)
    except ModelyardError as err:
        assert isinstance(err, rq.FilterError)
        assert "Traceback" not in str(err) and len(err.message) < 500
        return None


@FUZZ
@given(text=st.one_of(st.text(max_size=60), TOKENS))
def test_any_text_parses_or_is_a_filter_error(text: str) -> None:
    _parses_or_refuses(text)


@FUZZ
@given(text=st.one_of(EXPRESSIONS, DEEP, LONG))
def test_generated_filters_run_alike_in_sql_and_in_memory_or_are_refused(runs_store: Store, text: str) -> None:
    node = _parses_or_refuses(text)
    if node is None:
        return
    in_sql = set(tracking.search_runs("q", filter=text, store=runs_store)["name"])
    in_memory = set(rq.query_runs(runs_store, ["q"]).filter(node).column("name").tolist())
    assert in_sql == in_memory
