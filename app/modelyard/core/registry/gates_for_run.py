"""The promotion gates for a run that is not registered yet: would it pass as the next version?

A pipeline's ``gate`` step asks this between training and registering, so a model that would
be blocked is never registered. The rules are the registry's own (:func:`versions._judge`): the
run's test metrics (as :func:`versions.register` would copy them) against the model's gates (or
``gates`` given here) and its current champion, on the same test split.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from modelyard.core.registry import versions
from modelyard.core.registry.versions import GateReport
from modelyard.core.store import Store, lookup
from modelyard.core.store import models as m


def check_gates_for_run(store: Store, model: str, run_id: str, *, gates: dict[str, Any] | None = None) -> GateReport:
    """Whether run ``run_id`` would pass the gates of ``model`` (its stored gates, or ``gates``)
    against the current champion. A model not registered yet has no champion to beat; a run that
    is already a version of the model (the champion, say) is judged as that version."""
    from modelyard.core.experiments.tracking.active import _resolve_run

    name, _, _ = versions.parse_ref(model)
    clean = versions._validate_gates(gates) if gates is not None else None
    with store.session() as s:
        run = _resolve_run(s, run_id)
        row = lookup.find_model(s, name)
        use = clean if clean is not None else (row.gates or {}) if row is not None else {}
        ref = f"run {run.uuid[:12]} (for {name})"
        mine = versions._split_key_of(s, run.split_id, run.spec)
        # a version registered from this run already (a pipeline run again) is judged as that version
        mv_id = s.scalar(select(m.ModelVersion.id).where(m.ModelVersion.model_id == row.id, m.ModelVersion.run_id == run.id)
                         .order_by(m.ModelVersion.version.desc()).limit(1)) if row is not None else None
        return versions._judge(s, row, ref, versions._test_metrics(s, run.id), mine, mv_id, use)
