"""The runs filter language: parsing, precedence, errors, and SQL and in-memory evaluation agreeing."""

from __future__ import annotations

import datetime as dt

import pytest

from modelyard.core import runquery as rq
from modelyard.core import tracking
from modelyard.core.runquery import FilterError, parse_filter, parse_order_by
from modelyard.core.store import Store

# name -> (params, metrics, tags, status)
RUNS = {
    "a": ({"model": "random_forest", "depth": "8", "lr": "0.1"}, {"f1": 0.91, "auc": 0.95}, {"team": "risk"}, "succeeded"),
    "b": ({"model": "random_forest", "depth": "4", "lr": "abc"}, {"f1": 0.75}, {"team": "growth"}, "succeeded"),
    "c": ({"model": "logreg", "depth": "12.0", "lr": "1e-05"}, {"f1": 0.85, "val loss": 0.2}, {"team": "risk"}, "failed"),
    "d": ({"model": "gbm"}, {"auc": 0.99}, {}, "succeeded"),
    "e": ({"model": "Random_Forest", "depth": "deep"}, {}, {"team": "Risk", "note": "50% off"}, "cancelled"),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    """One store for the whole module (the runs are only read)."""
    s = Store.open(tmp_path_factory.mktemp("runquery") / "store")
    yield s
    s.close()


@pytest.fixture(scope="module")
def runs(store: Store) -> dict[str, str]:
    ids = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELYARD_USER", "tester")
        for name in RUNS:
            ids[name] = _record(store, name)
    return ids


def _record(store: Store, name: str) -> str:
    from sqlalchemy import update

    from modelyard.core.store import models as m

    params, metrics, tags, status = RUNS[name]
    with tracking.start_run("q", name=name, store=store, tags=tags) as run:
        run.log_params(params)
        if metrics:
            run.log_metrics(metrics)
    if status != "succeeded":
        with store.write() as s:
            s.execute(update(m.Run).where(m.Run.uuid == run.id).values(status=status))
    return run.id


def names(store: Store, runs: dict[str, str], expr: str) -> set[str]:
    """Evaluate in SQL (search_runs) and in memory (RunsTable.filter); they must agree."""
    by_id = {v: k for k, v in runs.items()}
    sql = {by_id[r] for r in tracking.search_runs("q", filter=expr, store=store)["run_id"]}
    table = rq.query_runs(store, ["q"])
    mem = {by_id[r] for r in table.filter(expr).run_ids}
    assert sql == mem, f"SQL and in-memory disagree on {expr!r}: {sql} vs {mem}"
    return sql


@pytest.mark.parametrize("expr, expected", [
    ("metrics.f1 > 0.8", {"a", "c"}),
    ("metrics.f1 >= 0.85", {"a", "c"}),
    ("metrics.f1 < 0.8", {"b"}),
    ("metrics.f1 <= 0.75", {"b"}),
    ("metrics.f1 = 0.75", {"b"}),
    ("metrics.f1 == 0.75", {"b"}),
    ("metrics.f1 != 0.75", {"a", "c"}),          # runs without f1 never match a comparison
    ("not metrics.f1 = 0.75", {"a", "c", "d", "e"}),
    ("metrics.`val loss` < 0.5", {"c"}),
    ('metrics."val loss" < 0.5', {"c"}),
    ("metrics.f1 in (0.75, 0.85)", {"b", "c"}),
    ("metrics.f1 not in (0.75, 0.85)", {"a"}),
    ('params.model = "random_forest"', {"a", "b"}),
    ("params.model = 'random_forest'", {"a", "b"}),
    ('params.model != "random_forest"', {"c", "d", "e"}),
    ('params.model like "random%"', {"a", "b"}),          # like is case-sensitive
    ('params.model ilike "random%"', {"a", "b", "e"}),
    ('params.model not like "random%"', {"c", "d", "e"}),
    ('params.model like "_ogreg"', {"c"}),
    ('params.model in ("gbm", "logreg")', {"c", "d"}),
    ('params.model not in ("gbm", "logreg")', {"a", "b", "e"}),
    ('tags.team = "risk"', {"a", "c"}),
    ('tags.note like "50\\% %"', {"e"}),
    ('tags.note like "50%"', {"e"}),
    ('tags.note like "50\\%"', set()),
    # params: numbers compare numerically with plain-number values only
    ("params.depth > 5", {"a", "c"}),
    ("params.depth = 12", {"c"}),
    ('params.depth = "12"', set()),
    ('params.depth = "12.0"', {"c"}),
    ("params.depth in (4, 12)", {"b", "c"}),
    ("params.lr < 0.01", {"c"}),
    ('params.depth > "5"', {"a", "e"}),                   # text order: "8" and "deep" come after "5"
    # attributes
    ('status = "failed"', {"c"}),
    ('status = "FINISHED"', {"a", "b", "d"}),
    ('status != "succeeded"', {"c", "e"}),
    ('status in ("failed", "cancelled")', {"c", "e"}),
    ('name = "a"', {"a"}),
    ('name like "%"', {"a", "b", "c", "d", "e"}),
    ('attributes.name in ("b", "d")', {"b", "d"}),
    ('experiment = "q"', {"a", "b", "c", "d", "e"}),
    ('user = "tester"', {"a", "b", "c", "d", "e"}),
    ("duration >= 0", {"a", "b", "c", "d", "e"}),
    ('start_time > "2000-01-01"', {"a", "b", "c", "d", "e"}),
    ("start_time < 0", set()),
    # boolean structure and precedence: and binds tighter than or, not tighter than and
    ('metrics.f1 > 0.9 or metrics.f1 < 0.8 and tags.team = "risk"', {"a"}),
    ('(metrics.f1 > 0.9 or metrics.f1 < 0.8) and tags.team = "growth"', {"b"}),
    ('not tags.team = "risk" and params.model = "gbm"', {"d"}),
    ('not (tags.team = "risk" or params.model = "gbm")', {"b", "e"}),
    ('NOT not metrics.auc > 0.9 AND metrics.f1 > 0', {"a"}),
    ('metrics.f1 > 0.8 and params.model = "random_forest" and tags.team = "risk"', {"a"}),
    ("(((metrics.auc > 0.96)))", {"d"}),
])
def test_operators_and_precedence(store: Store, runs: dict[str, str], expr: str, expected: set[str]) -> None:
    assert names(store, runs, expr) == expected


def test_run_id_prefix_like_and_order_by(store: Store, runs: dict[str, str]) -> None:
    rid = runs["c"]
    assert names(store, runs, f'run_id = "{rid}"') == {"c"}
    assert names(store, runs, f'run_id like "{rid[:10]}%"') == {"c"}
    frame = tracking.search_runs("q", order_by=["metrics.f1 DESC"], store=store)
    assert [runs_by(runs, r) for r in frame["run_id"]][:3] == ["a", "c", "b"]  # runs without f1 last
    frame = tracking.search_runs("q", order_by="metrics.f1", max_results=2, store=store)
    assert [runs_by(runs, r) for r in frame["run_id"]] == ["b", "c"]
    # params: numbers first (numerically), then text, missing last; same in SQL and in memory
    sql = [runs_by(runs, r) for r in tracking.search_runs("q", order_by="params.depth", max_results=10,
                                                           store=store)["run_id"]]
    mem = [runs_by(runs, r) for r in rq.query_runs(store, ["q"]).sort("params.depth").run_ids]
    assert sql == mem == ["b", "a", "c", "e", "d"]
    sql = [runs_by(runs, r) for r in tracking.search_runs("q", order_by="params.depth desc", max_results=10,
                                                           store=store)["run_id"]]
    mem = [runs_by(runs, r) for r in rq.query_runs(store, ["q"]).sort("params.depth", ascending=False).run_ids]
    assert sql == mem == ["e", "c", "a", "b", "d"]


def runs_by(runs: dict[str, str], run_id: str) -> str:
    return {v: k for k, v in runs.items()}[run_id]


def test_parse_tree_shape() -> None:
    node = parse_filter('metrics.x > 1 or metrics.y > 2 and not tags.t = "v"')
    assert isinstance(node, rq.Or)
    assert isinstance(node.items[1], rq.And)
    assert isinstance(node.items[1].items[1], rq.Not)
    assert parse_filter("   ") is None
    assert parse_filter(None) is None
    order = parse_order_by(["metrics.f1 DESC", "params.model", "start_time asc, name desc"])
    assert [(f.column, d) for f, d in order] == [("metrics.f1", True), ("params.model", False),
                                                 ("start_time", False), ("name", True)]


@pytest.mark.parametrize("expr, position, fragment", [
    ("metrics.f1 >", 12, "expected a value after '>'"),
    ("metrics.f1 > ", 13, "expected a value after '>'"),
    ("metrics.f1 0.5", 11, "expected an operator"),
    ("metrics.f1 > 0.5 and", 20, "expected a field"),
    ("metrics.f1 > 0.5 metrics.auc > 1", 17, "expected 'and', 'or' or the end"),
    ("(metrics.f1 > 0.5", 17, "expected ')' to close the '(' at column 1"),
    ("metrics.f1 > 0.5)", 16, "unmatched ')'"),
    ("()", 1, "expected an expression inside the parentheses"),
    ("", 0, "the filter is empty"),
    ("accuracy > 0.5", 0, "unknown field 'accuracy'"),
    ('metrics.f1 > "high"', 13, "is a number: compare it with a number"),
    ('metrics.f1 like "0.%"', 11, "'like' works on params, tags and text attributes"),
    ("params.model = 'rf", 15, "unterminated text"),
    ("metrics.`val loss > 1", 8, "unterminated quoted key"),
    ("metrics. > 1", 8, "expected a key after 'metrics.'"),
    ("params.model in 'a'", 16, "expected '(' after 'in'"),
    ("params.model in ()", 17, "expected at least one value"),
    ("params.model in ('a' 'b')", 21, "expected ',' or ')' in the list"),
    ("params.model in ('a', 1)", 13, "mixes numbers and quoted text"),
    ("params.model not = 'a'", 17, "expected 'like', 'ilike' or 'in' after 'not'"),
    ("params.model like rf", 18, "expected a quoted pattern after 'like'"),
    ("metrics.f1 ! 1", 11, "'!' must be followed by '='"),
    ("metrics.f1 > 1.2.3", 13, "malformed number"),
    ("metrics.f1 > 0.5 & metrics.x > 1", 17, "unexpected character '&'"),
    ("name = 5", 7, "name is text: put the value in quotes"),
    ("start_time > 'yesterday'", 13, "expected a date or time"),
    ("status > 'failed'", 7, "status compares with = or !="),
    ("`val loss` > 1", 0, "a backquoted key needs a prefix"),
    ("metrics.f1 > 0.5 and or metrics.x > 1", 21, "expected a field"),
])
def test_malformed_filters_point_at_the_error(expr: str, position: int, fragment: str) -> None:
    with pytest.raises(FilterError) as info:
        parse_filter(expr) if expr else rq._Parser(expr).parse()
    err = info.value
    assert err.position == position, (err.position, str(err))
    message = err.message
    assert fragment in message
    assert f"at column {position + 1}" in message
    lines = message.splitlines()
    assert lines[1] == "  " + expr
    assert lines[2] == "  " + " " * position + "^"
    assert err.exit_code == 2


def test_order_by_errors_are_filter_errors() -> None:
    with pytest.raises(FilterError, match="expected ASC, DESC"):
        parse_order_by("metrics.f1 downwards")
    with pytest.raises(FilterError, match="unknown field"):
        parse_order_by("f1")


def test_filter_error_reaches_search_runs(store: Store) -> None:
    with pytest.raises(FilterError, match=r"(?s)expected a value.*\^"):
        tracking.search_runs(filter="metrics.f1 >", store=store)


def test_numeric_rule_helpers() -> None:
    for text in ("3", "-0.5", "1e-05", "12.0", " 7 ", ".5", "5."):
        assert rq.is_number_text(text), text
    for text in ("abc", "1_000", "inf", "nan", "0x10", "1,5", "", "True"):
        assert not rq.is_number_text(text), text
    assert rq.number_or_none("1e-05") == 1e-05


def test_start_time_literals_are_local_time_or_epoch_ms() -> None:
    node = parse_filter("start_time >= '2024-05-01 14:30'")
    local = dt.datetime(2024, 5, 1, 14, 30).astimezone()
    assert node.value == local.astimezone(dt.UTC)
    node = parse_filter("start_time >= 1714573800000")
    assert node.value == dt.datetime(2024, 5, 1, 14, 30, tzinfo=dt.UTC)
