"""Concurrent registry edits: an edit made from an out-of-date view of a model is refused, naming
who changed it and when, and nothing is written; alias moves by several processes at once
serialise (no lost update, no duplicate-key error). On SQLite and PostgreSQL (tests/backends.py)."""

from __future__ import annotations

import multiprocessing
import re
from pathlib import Path

import pytest
import stale_workers
from modelyard.core.common.errors import StaleEditError
from modelyard.core.experiments import tracking
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store
from store_helpers import collect_reports, run_together

WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"


def make_versions(store: Store, n: int = 3, name: str = "churn") -> list[str]:
    """``n`` registered versions of ``name`` (a stand-in model file: nothing here loads it)."""
    refs = []
    for i in range(n):
        with tracking.start_run("team", store=store, name=f"r{i}") as run:
            run.log_metric("accuracy", 0.8 + i / 100)
            run.log_bytes(f"model {i}".encode(), "model/model.joblib", kind="model")
        refs.append(registry.register(store, run.id, name).ref)
    return refs


def as_member(monkeypatch: pytest.MonkeyPatch, who: str) -> None:
    monkeypatch.setenv("MODELYARD_USER", who)


def test_a_new_model_starts_at_revision_0_and_each_edit_bumps_it_once(store: Store) -> None:
    v1, v2, _ = make_versions(store)
    assert registry.get_model(store, "churn").revision == 0  # registering is not an edit of the registry state
    assert registry.get_version(store, v1).model_revision == 0
    info = registry.set_alias(store, v1, "champion", comment="first", expected_revision=0)
    assert info.model_revision == 1 and registry.get_model(store, "churn").revision == 1
    again = registry.set_alias(store, v1, "champion", comment="again", expected_revision=1)  # already there
    assert again.model_revision == 1 and registry.get_model(store, "churn").revision == 1
    assert [e["action"] for e in registry.timeline(store, "churn")].count("set_alias") == 1
    assert registry.set_stage(store, v2, "Staging", comment="try", expected_revision=1).model_revision == 2
    assert registry.set_stage(store, v2, "Staging", comment="same").model_revision == 2  # nothing changed
    assert registry.set_gates(store, "churn", {"min_metrics": {"accuracy": 0.5}}, comment="policy",
                              expected_revision=2).revision == 3
    assert registry.remove_alias(store, "churn", "champion", comment="off", expected_revision=3).revision == 4
    events = registry.timeline(store, "churn")
    assert [(e["action"], e["details"].get("revision")) for e in events if e["action"].startswith(("set_", "remove_"))] \
        == [("remove_alias", 4), ("set_gates", 3), ("set_stage", 2), ("set_alias", 1)]


def test_a_stale_alias_move_is_refused_naming_who_moved_it_and_when(store: Store,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    v1, v2, v3 = make_versions(store)
    registry.set_alias(store, v1, "champion", comment="first")
    seen = registry.get_model(store, "churn").revision  # bob looks at the model
    as_member(monkeypatch, "alice")
    registry.set_alias(store, v2, "champion", comment="alice: better f1", expected_revision=seen)
    before = registry.timeline(store, "churn")
    as_member(monkeypatch, "bob")
    with pytest.raises(StaleEditError) as err:
        registry.set_alias(store, v3, "champion", comment="bob: v3", expected_revision=seen)
    message = err.value.message
    assert re.fullmatch(rf"Not changed: alice moved champion to churn@v2 at {WHEN}, after you loaded churn\.",
                        message), message
    assert err.value.who == "alice" and err.value.when == before[0]["at"].isoformat()
    assert err.value.revision == seen + 1
    assert "Reload churn" in (err.value.hint or "") and str(seen + 1) in (err.value.hint or "")
    assert registry.get_version(store, "churn@champion").ref == v2  # alice's move stands
    assert registry.timeline(store, "churn") == before  # nothing written, not even an attempt
    assert registry.get_model(store, "churn").revision == seen + 1
    # reloaded: bob's move from the fresh revision goes through
    assert registry.set_alias(store, v3, "champion", comment="bob: v3 after all",
                              expected_revision=err.value.revision).ref == v3


def test_stale_stage_gates_and_alias_removal_are_refused_and_change_nothing(store: Store,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    v1, v2, _ = make_versions(store)
    registry.set_alias(store, v1, "challenger", comment="try v1")
    seen = registry.get_model(store, "churn").revision
    as_member(monkeypatch, "alice")
    registry.set_stage(store, v1, "Staging", comment="alice stages v1")
    registry.set_gates(store, "churn", {"min_metrics": {"accuracy": 0.5}}, comment="alice's policy")
    as_member(monkeypatch, "bob")
    before = registry.timeline(store, "churn")
    model_before = registry.get_model(store, "churn")
    attempts = [
        lambda: registry.set_stage(store, v2, "Production", comment="bob", expected_revision=seen),
        lambda: registry.set_gates(store, "churn", None, comment="bob clears", expected_revision=seen),
        lambda: registry.remove_alias(store, "churn", "challenger", comment="bob", expected_revision=seen),
        lambda: registry.set_alias(store, v2, "challenger", comment="bob", expected_revision=seen),
    ]
    for attempt in attempts:
        with pytest.raises(StaleEditError, match=rf"^Not changed: alice changed the gates at {WHEN} \(and 1 more "
                                                 r"edit\), after you loaded churn\.\n") as err:
            attempt()
        assert err.value.who == "alice" and err.value.revision == seen + 2
    assert registry.timeline(store, "churn") == before
    assert registry.get_model(store, "churn") == model_before
    assert registry.get_version(store, v2).stage == "None"
    assert registry.get_version(store, "churn@challenger").ref == v1


def test_the_stage_refusal_says_which_version_moved_where(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    v1, _, _ = make_versions(store)
    as_member(monkeypatch, "alice")
    registry.set_stage(store, v1, "Staging", comment="alice stages v1", expected_revision=0)
    as_member(monkeypatch, "bob")
    with pytest.raises(StaleEditError, match=rf"^Not changed: alice moved v1 to Staging at {WHEN}, after you "
                                             r"loaded churn\.\n"):
        registry.set_stage(store, v1, "Archived", comment="bob", expected_revision=0)
    with pytest.raises(StaleEditError, match=r"^Not changed: churn is at revision 1, not 5; it changed after you "
                                             r"loaded it\.\n"):
        registry.set_stage(store, v1, "Archived", comment="bob", expected_revision=5)
    assert registry.get_version(store, v1).stage == "Staging"


@pytest.mark.slow
def test_two_processes_moving_champion_at_once_serialise(tmp_path: Path, store_dir: Path, db_url: str | None) -> None:
    """From one revision, exactly one of two members' moves lands and the other is refused naming
    the winner; without an expected revision every move lands in some order, each once, each
    from where the one before left it (no lost update, no duplicate alias row)."""
    with Store.open(store_dir, db_url=db_url) as store:
        refs = make_versions(store, 4)
        start = registry.get_model(store, "churn").revision

    def race(moves: dict[str, list[str]], expected: int | None) -> dict[str, list[dict]]:
        ctx = multiprocessing.get_context("spawn")
        queue, go = ctx.Queue(), ctx.Event()
        procs = [ctx.Process(target=stale_workers.move_champion,
                             args=(str(store_dir), db_url, member, refs_, expected, go, queue), name=f"mover-{member}")
                 for member, refs_ in moves.items()]
        reports = run_together(procs, queue, go, timeout=120)
        return {member: outcomes for _, member, outcomes in reports}

    # both from the same revision, no champion yet: both would insert the alias row
    first = race({"alice": [refs[0]], "bob": [refs[1]]}, start)
    won = [m for m, (o,) in first.items() if o["moved"]]
    lost = [m for m, (o,) in first.items() if not o["moved"]]
    assert len(won) == 1 and len(lost) == 1, first
    (refused,) = first[lost[0]]
    assert refused["who"] == won[0] and f"{won[0]} put champion on " in refused["message"], refused
    with Store.open(store_dir, db_url=db_url) as store:
        assert registry.get_version(store, "churn@champion").ref == first[won[0]][0]["ref"]
        assert registry.get_model(store, "churn").revision == start + 1

    # no expected revision: ten moves each, interleaved
    second = race({"alice": [refs[2], refs[3]] * 5, "bob": [refs[3], refs[2]] * 5}, None)
    assert all(o["moved"] for outcomes in second.values() for o in outcomes)
    with Store.open(store_dir, db_url=db_url) as store:
        moves = [e for e in reversed(registry.timeline(store, "churn")) if e["action"] == "set_alias"]
        final = registry.get_model(store, "churn")
        champion = registry.get_version(store, "churn@champion").ref
    revisions = [e["details"]["revision"] for e in moves]
    assert revisions == list(range(start + 1, final.revision + 1))  # each move once, one revision each
    for before, after in zip(moves, moves[1:], strict=False):
        assert after["from_value"] == before["to_value"], (before, after)  # each saw the one before it
    assert champion == moves[-1]["to_value"]
    assert len(moves) >= 2


def _constant_version(store: Store, label: str) -> str:
    import pandas as pd
    from sklearn.dummy import DummyClassifier

    X = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    model = DummyClassifier(strategy="constant", constant=label).fit(X, ["a", "b", "c", label])
    with tracking.start_run("constants", store=store) as run:
        run.log_model(model, input_example=X)
    return registry.register(store, run.id, "const").ref


def _predict(url: str) -> str:
    import json
    import urllib.request

    body = json.dumps({"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}).encode()
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["predictions"][0]


def test_a_server_of_the_champion_follows_a_move_made_by_another_member(store: Store, store_dir: Path,
                                                                         db_url: str | None) -> None:
    """``NAME@champion`` served here; alice moves champion from another process: the server answers
    with her version once its watcher has polled (and loaded it), never failing meanwhile."""
    import time

    from modelyard.core.serving.server import ModelServer

    v1, v2 = _constant_version(store, "first"), _constant_version(store, "second")
    registry.set_alias(store, v1, "champion", comment="start")
    events: list[dict] = []
    poll = 0.25
    server = ModelServer(store, "const@champion", port=0, poll_interval=poll, on_event=events.append).start()
    try:
        assert server.host == "127.0.0.1" and _predict(server.url) == "first"
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        mover = ctx.Process(target=stale_workers.move_alias_later,
                            args=(str(store_dir), db_url, "alice", v2, "champion", 0.0, queue), name="alice-moves")
        mover.start()
        (report,) = collect_reports([mover], queue, timeout=90)
        moved_at = time.monotonic()
        assert report[2]["ref"] == v2
        answers = []
        while time.monotonic() < moved_at + 30 and (not answers or answers[-1] != "second"):
            answers.append(_predict(server.url))
            time.sleep(0.02)
        swapped_after = time.monotonic() - moved_at
        stats = server.stats()
    finally:
        server.shutdown()
    assert answers[-1] == "second" and set(answers) <= {"first", "second"}
    assert answers == sorted(answers, key=["first", "second"].index)  # once swapped, never back
    (swap,) = [e for e in events if e["event"] == "swapped"]
    assert (swap["from"], swap["to"]) == (v1, v2)
    assert swapped_after < poll + swap["load_s"] + 2.0, (swapped_after, swap)  # noticed at its next poll
    assert stats["swaps"] == 1 and stats["errors"] == 0 and stats["swap_error"] is None
    moves = [(e["actor"], e["to_value"]) for e in registry.timeline(store, "const") if e["action"] == "set_alias"]
    assert moves[0] == ("alice", v2)
