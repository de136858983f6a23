"""The runs filter language: parsing, precedence, errors, and SQL and in-memory evaluation agreeing."""

from __future__ import annotations

import datetime as dt

import pytest
from backends import backend_params, module_store
from modelyard.core.experiments import runquery as rq
from modelyard.core.experiments import tracking
from modelyard.core.experiments.runquery import (
    FilterError,
    parse_filter,
    parse_order_by,
)
from modelyard.core.store import Store

# name -> (params, metrics, tags, status)
RUNS = {
    "a": ({"model": "random_forest", "depth": "8", "lr": "0.1"}, {"f1": 0.91, "auc": 0.95}, {"team": "risk"}, "succeeded"),
    "b": ({"model": "random_forest", "depth": "4", "lr": "abc"}, {"f1": 0.75}, {"team": "growth"}, "succeeded"),
    "c": ({"model": "logreg", "depth": "12.0", "lr": "1e-05"}, {"f1": 0.85, "val loss": 0.2}, {"team": "risk"}, "failed"),
    "d": ({"model": "gbm"}, {"auc": 0.99}, {}, "succeeded"),
    "e": ({"model": "Random_Forest", "depth": "deep"}, {}, {"team": "Risk", "note": "50% off"}, "cancelled"),
}


@pytest.fixture(scope="module", params=backend_params())
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """One store for the whole module (the runs are only read), on SQLite and on PostgreSQL."""
    with module_store(request, tmp_path_factory.mktemp("runquery") / "store") as s:
        yield s


@pytest.fixture(scope="module")
def runs(store: Store) -> dict[str, str]:
    ids = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELYARD_USER", "tester")
        for name in RUNS:
            ids[name] = _record(store, name)
    return ids


def _record(store: Store, name: str) -> str:
    from modelyard.core.store import models as m
    from sqlalchemy import update

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
    ("start_time in (0)", set()),  # found by test_runquery_fuzz: 'in' on start_time failed in memory
    ("start_time not in (0, 1)", {"a", "b", "c", "d", "e"}),
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


# =========================================================================== limits and hostile filters

DEEP = "(" * 300 + "metrics.f1 > 0" + ")" * 300
MANY = " or ".join(f"metrics.f1 > {i}" for i in range(1001))


@pytest.mark.parametrize("expr, words", [
    (DEEP, ["nests", "20 levels", "column 21"]),
    ("not " * 1000 + "metrics.f1 > 0", ["nests", "20 levels", "column 81"]),
    ("(not " * 11 + "metrics.f1 > 0" + ")" * 11, ["nests", "20 levels"]),
    (MANY, ["200 comparisons", "column 3891"]),  # where the 201st starts
    (" and ".join(f"params.p{i} = 'x'" for i in range(5000)), ["200 comparisons"]),
], ids=["300-parentheses", "1000-nots", "parentheses-and-nots", "1001-terms", "5000-terms"])
def test_a_filter_beyond_the_limits_is_a_one_line_error_naming_the_limit(
        store: Store, runs: dict[str, str], expr: str, words: list[str]) -> None:
    for attempt in (lambda: parse_filter(expr), lambda: tracking.search_runs(filter=expr, store=store),
                    lambda: rq.query_runs(store, ["q"]).filter(expr)):
        with pytest.raises(FilterError) as info:
            attempt()
        err = info.value
        assert "\n" not in err.message and len(err.message) < 160, err.message
        for word in words:
            assert word in err.message
        assert err.hint and "in (" in err.hint


def _nested(depth: int, inner: str) -> str:
    """``inner`` under ``depth`` levels of alternating 'and' / 'or' with a metric comparison: the
    deepest SQL a filter of that depth makes."""
    expr = inner
    for level in range(depth):
        expr = f"(metrics.auc > -{level} {'or' if level % 2 else 'and'} {expr})"
    return expr


@pytest.mark.slow  # on PostgreSQL 2-30 s a term, by load: 200-comparison filters planned several times
@pytest.mark.parametrize("term", ["metrics.f1 > -{i}", "params.depth > -{i}", "params.lr not in ('{i}', 'x{i}')",
                                  "duration > -{i}", "experiment != 'e{i}'", "tags.team like 'r%{i}'"])
def test_filters_at_the_limits_work_alike_in_sql_and_in_memory(store: Store, runs: dict[str, str], term: str) -> None:
    depth, terms = rq.MAX_FILTER_DEPTH, rq.MAX_FILTER_TERMS
    assert (depth, terms) == (20, 200)
    many = [term.format(i=i) for i in range(terms - depth)]
    # the worst shape for SQL: an AND of the comparisons, 'depth' levels down
    # (names() evaluates in SQL and in memory and checks that they agree; each list of terms
    # here selects the runs its first term selects)
    alone = names(store, runs, _nested(depth - 1, many[0]))
    assert names(store, runs, _nested(depth - 1, "(" + " and ".join(many) + ")")) == alone
    assert names(store, runs, _nested(depth - 1, "(" + " or ".join(many) + ")")) == alone
    deepest = _nested(depth - 1, "(" + " and ".join(many) + ")")  # the other queries that embed a filter
    rq.query_runs(store, ["q"], filter=deepest, order_by="metrics.f1 DESC", limit=2).refresh()
    assert names(store, runs, "not " * depth + "params.model = 'gbm'") == {"d"}
    assert names(store, runs, "params.model in (" + ", ".join(f"'m{i}'" for i in range(20_000)) + ", 'gbm')") == {"d"}


def test_numbers_beyond_any_float_or_date_are_errors_or_infinite_never_a_traceback(
        store: Store, runs: dict[str, str]) -> None:
    huge = "9" * 400
    assert names(store, runs, f"metrics.f1 > {huge}") == set()
    assert names(store, runs, f"metrics.f1 < {huge}") == {"a", "b", "c"}
    assert names(store, runs, f"params.depth > -{'9' * 5000}") == {"a", "b", "c"}  # beyond Python's int limit
    for bad in ("start_time > 1e300", "start_time > 99999999999999999", f"start_time < {huge}"):
        with pytest.raises(FilterError, match="start_time.*out of range"):
            parse_filter(bad)


def test_a_long_filter_shows_the_part_around_the_error(store: Store) -> None:
    half = " and ".join(f"params.p{i} = 'x'" for i in range(50))
    expr = f"{half} and params.q ! 1 and {half}"
    with pytest.raises(FilterError) as info:
        parse_filter(expr)
    lines = info.value.message.splitlines()
    assert len(lines) == 3 and all(len(line) < 130 for line in lines)
    assert lines[1][lines[2].index("^")] == "!"
    assert f"column {expr.index('!') + 1}" in lines[0]


# =========================================================================== the block cache


def _cached_and_direct(store: Store, *args, **kwargs):
    """The same query through the block cache and straight from the rows."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rq.loader, "CACHE_MIN_RUNS", 10**9)
        direct = rq.query_runs(store, *args, **kwargs)
    return rq.query_runs(store, *args, **kwargs), direct


def _assert_same(cached, direct) -> None:
    import pandas.testing as pdt

    assert cached.columns == direct.columns
    # durations of finished runs are fixed; running ones count up to "now", which moved on
    pdt.assert_frame_equal(cached.frame.drop(columns="duration"), direct.frame.drop(columns="duration"))
    assert cached.pks.tolist() == direct.pks.tolist()


def _blocks(store: Store) -> dict[int, tuple[int, bool]]:
    """{block: (how many writes it saw, whether its stored snapshot is current)}. SQLite: the
    generation; PostgreSQL: the marks its stored snapshot does not see (models.RunsTableCache)."""
    from sqlalchemy import text

    with store.session() as s:
        if store.is_sqlite:
            return {b: (g, has) for b, g, has in s.execute(text(
                "SELECT block, generation, data IS NOT NULL FROM runs_table_cache")).all()}
        rows = s.execute(text(
            "SELECT b.block, (SELECT count(*) FROM runs_table_cache_marks k WHERE k.block = b.block AND "
            "(c.snapshot IS NULL OR NOT pg_visible_in_snapshot(k.xid::text::xid8, c.snapshot::pg_snapshot))), "
            "c.data IS NOT NULL FROM (SELECT block FROM runs_table_cache UNION SELECT block FROM runs_table_cache_marks) b "
            "LEFT JOIN runs_table_cache c ON c.block = b.block")).all()
        return {b: (stale, bool(has) and stale == 0) for b, stale, has in rows}


@pytest.fixture(params=backend_params())
def cache_store(request: pytest.FixtureRequest, tmp_path, monkeypatch: pytest.MonkeyPatch):
    """Runs in three blocks of the cache (ids 1-6, 4096-4101, 8192-8195), the cache used for any size;
    on SQLite and on PostgreSQL."""
    monkeypatch.setattr(rq.loader, "CACHE_MIN_RUNS", 0)
    with module_store(request, tmp_path / "store") as s:
        yield from _cache_runs(s)


def _cache_runs(s: Store):
    from sqlalchemy import text

    ids: dict[str, str] = {}

    def log(experiment: str, i: int, **kw) -> None:
        with tracking.start_run(experiment, store=s, name=None if i == 3 else f"{experiment}-{i}",
                                tags={"team": ["risk", "growth"][i % 2]} if i % 3 else None, **kw) as run:
            run.log_params({"model": ["rf", "gbm", "svm"][i % 3], "depth": i})
            if i % 4:
                run.log_metrics({"f1": i / 10, "auc": 0.5 + i / 100})
            else:
                run.log_metric("loss", 1.0 / (i + 1), step=i)
        ids[f"{experiment}-{i}"] = run.id

    def jump_to(next_id: int) -> None:  # a placeholder run so that the next ids start a new block
        with s.write() as w:
            mark = "?" if s.is_sqlite else "%s"
            w.connection().exec_driver_sql(
                "INSERT INTO runs (id, uuid, experiment_id, status, start_time) "
                f"SELECT {mark}, {mark}, id, 'succeeded', '2024-01-01 00:00:00' FROM experiments LIMIT 1",
                (next_id - 1, f"{next_id:032x}"))
            if not s.is_sqlite:  # a server's id sequence goes on after the id taken by hand
                w.connection().exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('runs', 'id'), {next_id - 1})")
        ids[f"placeholder-{next_id}"] = f"{next_id:032x}"

    for i in range(6):
        log("alpha", i)
    jump_to(4096)
    for i in range(6):
        log("beta" if i % 2 else "alpha", i + 10)
    jump_to(8192)
    for i in range(3):
        log("gamma", i + 20)
    with s.session() as r:
        assert r.execute(text("SELECT max(id) FROM runs")).scalar() == 8194
    yield s, ids


def test_block_cache_gives_the_table_the_rows_give(cache_store) -> None:
    store, ids = cache_store
    tracking.delete_run(ids["alpha-1"], store=store)
    with tracking.start_run("beta", store=store, name="child", parent=ids["beta-11"]) as child:
        child.log_metric("f1", 0.5)
    for args, kwargs in (((), {}), ((["alpha"],), {}), ((["beta", "gamma"],), {}), ((), {"include_deleted": True}),
                         ((), {"include_deleted": "only"}), ((), {"filter": 'params.model = "rf" or metrics.f1 > 0.3'}),
                         ((), {"columns": ["metrics.f1", "params.model", "tags.nothing"]}),
                         ((), {"order_by": "metrics.f1 DESC"})):
        cached, direct = _cached_and_direct(store, *args, **kwargs)
        _assert_same(cached, direct)
        again, _ = _cached_and_direct(store, *args, **kwargs)  # now from the stored blocks
        _assert_same(again, direct)
    blocks = _blocks(store)
    assert sorted(blocks) == [0, 1, 2] and all(has for _g, has in blocks.values())
    table = rq.query_runs(store)
    assert table.frame.loc[table.frame["name"] == "child", "parent_run_id"].tolist() == [ids["beta-11"]]
    assert table.frame["name"].isna().sum() == 3  # run 3 and the two placeholders have none
    assert "alpha-1" not in set(table.frame["name"])  # in the trash
    assert table.frame["params.depth"].dtype == object and table.frame["metrics.f1"].dtype == "float64"


def test_any_write_to_a_run_clears_its_block_and_only_its_block(cache_store) -> None:
    from sqlalchemy import text

    store, ids = cache_store

    def pk(name: str) -> str:
        return f"run_id = (SELECT id FROM runs WHERE uuid = '{ids[name]}')"

    rq.query_runs(store)
    before = _blocks(store)
    assert all(has for _g, has in before.values())
    writes = [
        ("tag", lambda: tracking.set_tags(ids["alpha-10"], {"team": "core", "extra": "x"}, store=store), 1),
        ("trash", lambda: tracking.delete_run(ids["gamma-20"], store=store), 2),
        ("restore", lambda: tracking.restore_run(ids["gamma-20"], store=store), 2),
        # straight SQL, as a script or a future feature might write: the triggers still see it
        ("raw SQL", lambda: _sql(store, f"UPDATE params SET value = 'patched' WHERE {pk('alpha-2')} AND key = 'model'"),
         0),
        ("raw metric", lambda: _sql(store, f"UPDATE latest_metrics SET value = 7.5 WHERE {pk('beta-11')} "
                                           "AND key = 'f1'"), 1),
        ("status", lambda: _sql(store, f"UPDATE runs SET status = 'failed' WHERE uuid = '{ids['gamma-21']}'"), 2),
        ("delete", lambda: _sql(store, f"DELETE FROM tags WHERE {pk('alpha-4')}"), 0),
    ]
    for what, write, block in writes:
        rq.query_runs(store)  # fill every block
        filled = _blocks(store)
        write()
        after = _blocks(store)
        assert not after[block][1] and after[block][0] > filled[block][0], what
        assert all(after[b] == filled[b] for b in after if b != block), what
        cached, direct = _cached_and_direct(store)
        _assert_same(cached, direct)
    frame = rq.query_runs(store).frame.set_index("run_id")
    assert frame.loc[ids["alpha-10"], "tags.team"] == "core" and frame.loc[ids["alpha-10"], "tags.extra"] == "x"
    assert frame.loc[ids["alpha-2"], "params.model"] == "patched"
    assert frame.loc[ids["beta-11"], "metrics.f1"] == 7.5 and frame.loc[ids["gamma-21"], "status"] == "failed"
    assert frame.loc[ids["alpha-4"], "tags.team"] is None
    # a new run, and a purge (rows deleted through the whole schema)
    with tracking.start_run("gamma", store=store, name="late") as run:
        run.log_metric("f1", 0.01)
    tracking.delete_run(ids["alpha-0"], store=store)
    tracking.purge_deleted(store)
    cached, direct = _cached_and_direct(store, include_deleted=True)
    _assert_same(cached, direct)
    assert "late" in set(cached.frame["name"]) and ids["alpha-0"] not in set(cached.frame["run_id"])
    with store.session() as s:
        assert s.execute(text("SELECT count(*) FROM runs_table_cache WHERE data IS NULL")).scalar() == 0


def _sql(store: Store, statement: str) -> None:
    with store.write() as s:
        s.connection().exec_driver_sql(statement)


def test_a_block_written_to_while_it_was_read_is_not_stored(cache_store) -> None:
    """The race the generations close: read a block, a writer changes it, then try to store it."""
    store, ids = cache_store
    q = rq._Query(None, False, None, None, [], None)
    dialect = store.engine.dialect.name
    with store.engine.connect() as conn:
        loader = rq._Loader(store, conn, q.conditions(dialect, scan=False), q.conditions(dialect, scan=True), None,
                            cache=True)
        loader.load(None)
    assert sorted(b for b, _g, _blob in loader.to_save) == [0, 1, 2]
    tracking.set_tags(ids["beta-11"], {"team": "late"}, store=store)  # block 1, after the snapshot
    assert rq._save_blocks(store, loader.to_save) == 2
    blocks = _blocks(store)
    assert blocks[0][1] and blocks[2][1] and not blocks[1][1]
    cached, direct = _cached_and_direct(store)
    _assert_same(cached, direct)
    assert cached.frame.set_index("run_id").loc[ids["beta-11"], "tags.team"] == "late"


def test_a_damaged_block_is_ignored_and_rebuilt(cache_store) -> None:
    store, _ids = cache_store
    rq.query_runs(store)
    damaged = "X'4d59525443310a00ff'" if store.is_sqlite else "'\\x4d59525443310a00ff'::bytea"
    _sql(store, f"UPDATE runs_table_cache SET data = {damaged} WHERE block = 1")
    cached, direct = _cached_and_direct(store)
    _assert_same(cached, direct)
    assert all(has for _g, has in _blocks(store).values())  # block 1 stored again, intact


def test_a_running_run_keeps_its_block_out_of_the_cache(cache_store) -> None:
    store, _ids = cache_store
    run = tracking.start_run("gamma", store=store, name="live")
    try:
        run.log_metric("f1", 0.2)
        run.flush()
        cached, direct = _cached_and_direct(store)
        _assert_same(cached, direct)
        blocks = _blocks(store)
        assert blocks[0][1] and blocks[1][1] and not blocks[2][1]
        if not store.is_sqlite:  # the read removed the marks it saw, though it stored no snapshot
            from sqlalchemy import text

            with store.session() as s:
                assert s.execute(text("SELECT count(*) FROM runs_table_cache_marks WHERE block = 2")).scalar() == 0
    finally:
        run.end()


def test_new_and_upgraded_stores_get_the_same_cache_triggers(tmp_path) -> None:
    from modelyard.core.store import migrate
    from sqlalchemy import create_engine, text

    def triggers(engine) -> dict[str, str]:
        with engine.connect() as conn:
            return dict(conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all())

    engine = create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    try:
        migrate.upgrade(engine)
        migrated = triggers(engine)
    finally:
        engine.dispose()
    with Store.open(tmp_path / "new") as store:
        fresh = triggers(store.engine)
    assert fresh == migrated
    assert sorted(migrated) == sorted(f"trg_runs_table_cache_{t}_{e}" for t in ("runs", "params", "latest_metrics", "tags")
                                      for e in ("insert", "update", "delete"))


def test_new_and_upgraded_server_stores_get_the_same_cache_triggers(tmp_path, pg_server_session) -> None:
    """PostgreSQL: migration 0006 and a new store's models make the same marking triggers and function."""
    from modelyard.core.store import migrate
    from sqlalchemy import create_engine, text

    def triggers(engine) -> dict[str, str]:
        with engine.connect() as conn:
            found = dict(conn.execute(text("SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                                           "WHERE tgname LIKE 'trg_runs_table_cache_%'")).all())
            found["function"] = conn.execute(text("SELECT prosrc FROM pg_proc WHERE proname = "
                                                  "'modelyard_runs_table_cache_mark'")).scalar()
            return found

    server = pg_server_session
    names = [server.create_database("template1") for _ in range(2)]
    try:
        engine = create_engine(server.url(names[0]))
        try:
            migrate.upgrade(engine)
            migrated = triggers(engine)
        finally:
            engine.dispose()
        with Store.open(tmp_path / "new", db_url=server.url(names[1])) as store:
            fresh = triggers(store.engine)
    finally:
        for name in names:
            server.drop_database(name)
    assert fresh == migrated and fresh["function"]
    assert sorted(k for k in migrated if k != "function") == sorted(
        f"trg_runs_table_cache_{t}_{e}" for t in ("runs", "params", "latest_metrics", "tags")
        for e in ("insert", "update", "delete"))


def test_a_refreshed_table_equals_a_fresh_load(cache_store) -> None:
    """refresh() extends the loaded columns; the frame it builds is the one a new query builds."""
    import pandas.testing as pdt

    store, ids = cache_store
    table = rq.query_runs(store)
    with tracking.start_run("delta", store=store, name="new-keys", tags={"stage": "x"}) as run:
        run.log_params({"model": "knn", "k": 5})
        run.log_metrics({"f1": 0.33, "brand_new": 1.5})
    tracking.set_tags(ids["beta-13"], {"team": "moved"}, store=store)
    tracking.delete_run(ids["alpha-5"], store=store)
    live = tracking.start_run("alpha", store=store, name="still running")
    try:
        live.log_metric("f1", 0.1)
        live.flush()
        fresh, refreshed = rq.query_runs(store), table.refresh()
        assert refreshed.columns == fresh.columns
        a = refreshed.frame.drop(columns="duration").sort_values("run_id", ignore_index=True)
        b = fresh.frame.drop(columns="duration").sort_values("run_id", ignore_index=True)
        pdt.assert_frame_equal(a, b)
        assert refreshed.frame.set_index("run_id").loc[live.id, "status"] == "running"
        assert refreshed.frame.set_index("run_id").loc[run.id, "metrics.brand_new"] == 1.5
        assert refreshed.row_of(ids["beta-13"]) == list(refreshed.run_ids).index(ids["beta-13"])
        assert refreshed.row_of(ids["alpha-5"]) == -1
    finally:
        live.end()


def test_cell_and_row_of_follow_sort_and_filter(store: Store, runs: dict[str, str]) -> None:
    """What the GUI's table model reads per visible cell, without converting whole columns."""
    import numpy as np

    table = rq.query_runs(store, ["q"]).sort("metrics.f1", ascending=False).filter("metrics.f1 > 0")
    names = table.column("name").tolist()
    assert names == ["a", "c", "b"]
    for row, name in enumerate(names):
        assert table.cell("name", row) == name
        assert table.cell("run_id", row) == runs[name]
        assert table.row_of(runs[name]) == row
        assert table.cell("status", row) == RUNS[name][3]
        assert table.cell("start_time", row) == table.column("start_time")[row]
        assert table.cell("metrics.f1", row) == RUNS[name][1]["f1"]
    assert isinstance(table.cell("start_time", 0), np.datetime64)
    assert table.cell("tags.note", 0) is None
    assert table.row_of(runs["d"]) == -1  # loaded, but filtered out
    assert table.row_of("0" * 32) == -1


class _NoDatabase:
    """Stands for a store's engine that must not be used: any use fails the test."""

    def __getattr__(self, name: str):
        raise AssertionError(f"a RunsTable read the store (engine.{name})")

    def __call__(self, *args, **kwargs):
        raise AssertionError("a RunsTable read the store (session)")


def test_a_runs_table_never_reads_the_store(store: Store, runs: dict[str, str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A RunsTable is plain data: sorting, filtering (a key left out by columns= included) and
    reading cells work with the store out of reach, so a view's main thread never waits on it.
    Only refresh() goes back to the store, through the loader."""
    by_id = {v: k for k, v in runs.items()}
    expr = 'params.model = "random_forest" or metrics.auc > 0.9'
    in_sql = {by_id[r] for r in tracking.search_runs("q", filter=expr, store=store)["run_id"]}
    table = rq.query_runs(store, ["q"])
    some = rq.query_runs(store, ["q"], columns=["metrics.f1", "params.nothing"])
    assert not some.complete and [c for c in some.columns if "." in c] == ["metrics.f1", "params.nothing"]

    monkeypatch.setattr(store, "engine", _NoDatabase())
    monkeypatch.setattr(store, "session", _NoDatabase())
    monkeypatch.setattr(store, "write", _NoDatabase())
    for t in (table, some):
        assert set(t.filter(expr).column("name").tolist()) == in_sql == {"a", "b", "d"}
        best = t.sort("metrics.f1", ascending=False).filter("metrics.f1 > 0").head(2)
        assert best.column("name").tolist() == ["a", "c"]
        assert best.cell("name", 1) == "c" and best.row_of(runs["c"]) == 1
        best.prepare(["name", "status"])
        assert best.numeric("metrics.f1").tolist() == [0.91, 0.85]
        assert best.frame["name"].tolist() == ["a", "c"] and len(best.pks) == 2
        assert list(best.run_ids) == [runs["a"], runs["c"]]
        assert sorted(t.filter("params.depth > 5").column("name").tolist()) == ["a", "c"]
        assert not t.filter('params.nothing = "x"') and t.keys("metrics")
    assert "model" in table.keys("params") and some.keys("params") == ["nothing"]
    with pytest.raises(AssertionError, match="read the store"):
        some.refresh()
