"""What the gates say: splits by their name and dataset version (never "split 1"), and the champion
is not told that it "passes" a gate it is the measure of."""

from __future__ import annotations

from modelyard.core.registry import cards
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store
from modelyard.core.store import models as m
from test_registry import make_run, make_split


def test_a_gate_names_the_split_and_dataset_version_not_an_internal_id(store: Store) -> None:
    dv, split = make_split(store)
    with store.write() as s:  # a second split of the same version, with its own name
        other = m.DatasetSplit(dataset_version_id=dv, name="stratified-test0.3-seed7", method="stratified", seed=7,
                               spec={"test": 0.3})
        s.add(other)
        s.flush()
        other_id = other.id
    registry.register(store, make_run(store, {"f1": 0.8}, dv=dv, split=split), "churn")
    registry.register(store, make_run(store, {"f1": 0.9}, dv=dv, split=other_id), "churn")
    registry.set_alias(store, "churn@v1", "champion", comment="first")
    registry.set_gates(store, "churn", {"beat_champion": {"metric": "f1"}}, comment="policy")
    report = registry.check_gates(store, "churn@v2")
    assert not report.passed and not report.is_champion
    reason = report.reasons[0]
    assert 'the split "stratified-test0.3-seed7" of iris@v1' in reason
    assert 'the split "default" of iris@v1' in reason
    assert f"split {split}" not in reason and f"split {other_id}" not in reason


def test_the_champion_is_reported_as_the_champion(store: Store) -> None:
    dv, split = make_split(store)
    registry.register(store, make_run(store, {"f1": 0.8}, dv=dv, split=split), "churn")
    registry.register(store, make_run(store, {"f1": 0.9}, dv=dv, split=split), "churn")
    registry.set_alias(store, "churn@v1", "champion", comment="first")
    registry.set_gates(store, "churn", {"beat_champion": {"metric": "f1"}}, comment="policy")
    champion = registry.check_gates(store, "churn@v1")
    assert champion.passed and champion.is_champion
    assert champion.checked == ["beating the champion on f1 applies to the other versions"]
    challenger = registry.check_gates(store, "churn@v2")
    assert challenger.passed and not challenger.is_champion
    assert challenger.checked == ["beat the champion on f1 (higher is better)"]


def test_the_card_says_how_to_write_notes_where_it_is_read(store: Store) -> None:
    dv, split = make_split(store)
    registry.register(store, make_run(store, {"f1": 0.8}, dv=dv, split=split), "churn")
    card = cards.model_card(store, "churn@v1")
    assert "modelyard model card churn@v1 --intended-use" in cards.render_html(card)  # the CLI's form
    window = cards.render_html(card, edit_hint=cards.WINDOW_EDIT_HINT)
    assert "Edit notes…" in window and "modelyard model" not in window
    exported = cards.render_html(card, edit_hint="")
    assert "Not written yet." in exported and "modelyard model" not in exported and "Edit notes" not in exported
