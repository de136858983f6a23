"""A user's edit of a run's tags and note (tracking.edit_run): one transaction, one audit entry
naming each change; the note lives in its own tag."""

from __future__ import annotations

import pytest
from modelyard.core.common.errors import ModelyardError
from modelyard.core.experiments import tracking
from modelyard.core.store import models as m
from sqlalchemy import func, select


def edits(store) -> list[dict]:
    with store.session() as s:
        return [e.details for e in s.scalars(select(m.AuditEvent).where(m.AuditEvent.action == "edit")
                                             .order_by(m.AuditEvent.id))]


def test_tags_and_a_note_are_set_changed_removed_and_audited(store):
    with tracking.start_run("churn", store=store, tags={"team": "risk", "old": "x"}) as run:
        run.log_metric("f1", 0.5)
    changes = tracking.edit_run(run.id, tags={"team": "growth", "old": None, "new": 3}, note=" tried deeper trees ",
                                store=store)
    assert changes == {"team": ["risk", "growth"], "old": ["x", None], "new": [None, "3"],
                       tracking.NOTE_TAG: [None, "tried deeper trees"]}
    info = tracking.get_run(run.id, store=store)
    assert {k: v for k, v in info.tags.items() if k != tracking.NOTE_TAG} == {"team": "growth", "new": "3"}
    assert tracking.run_note(info) == "tried deeper trees"
    assert edits(store) == [{"tags": {"team": ["risk", "growth"], "old": ["x", None], "new": [None, "3"],
                                      "note": [None, "tried deeper trees"]}}]
    # the same values again: nothing written, nothing audited
    assert tracking.edit_run(run.id, tags={"team": "growth"}, note="tried deeper trees", store=store) == {}
    assert len(edits(store)) == 1
    # an empty note removes it
    tracking.edit_run(run.id, note="", store=store)
    assert tracking.run_note(tracking.get_run(run.id, store=store)) == ""
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Tag).where(m.Tag.key == tracking.NOTE_TAG)) == 0


def test_the_note_tag_is_not_edited_as_a_tag_and_bad_names_write_nothing(store):
    with tracking.start_run("churn", store=store, tags={"team": "risk"}) as run:
        pass
    with pytest.raises(ModelyardError, match="note"):
        tracking.edit_run(run.id, tags={tracking.NOTE_TAG: "sneaky"}, store=store)
    with pytest.raises(ModelyardError):
        tracking.edit_run(run.id, tags={"ok": "1", " bad ": "2"}, store=store)
    assert tracking.get_run(run.id, store=store).tags == {"team": "risk"}
    assert edits(store) == []
