"""What the Monitoring panel lists: every registered model with its checks at a glance.

One call, a fixed number of queries however many models there are (the panel used to run one
more query per model). Qt-free; returns plain dataclasses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select

from modelyard.core.registry.versions import CHAMPION
from modelyard.core.store import Store
from modelyard.core.store import models as m


@dataclass(frozen=True)
class ModelOverview:
    """One registered model as the Monitoring panel lists it."""

    name: str
    n_checks: int
    last: dt.datetime | None  # when the latest check ran
    status: str | None  # the latest check's verdict (ok | warning | drift), None if never checked
    ref: str  # what checks run against: "churn@v2 (champion)" or "churn@v3"
    watch_folder: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def models_overview(store: Store) -> list[ModelOverview]:
    """Every registered model (by name) with its check count, latest verdict, reference and watch
    folder, in five queries whatever the number of models."""
    with store.session() as s:
        models = s.execute(select(m.RegisteredModel.id, m.RegisteredModel.name, m.RegisteredModel.monitoring)
                           .order_by(m.RegisteredModel.name)).all()
        latest = dict(s.execute(select(m.ModelVersion.model_id, func.max(m.ModelVersion.version))
                                .group_by(m.ModelVersion.model_id)).all())
        champion = dict(s.execute(select(m.ModelAlias.model_id, m.ModelVersion.version)
                                  .join(m.ModelVersion, m.ModelVersion.id == m.ModelAlias.version_id)
                                  .where(m.ModelAlias.alias == CHAMPION)).all())
        counts = {mid: (n, last) for mid, n, last in s.execute(
            select(m.ModelVersion.model_id, func.count(m.MonitoringCheck.id), func.max(m.MonitoringCheck.created_at))
            .join(m.MonitoringCheck, m.MonitoringCheck.model_version_id == m.ModelVersion.id)
            .group_by(m.ModelVersion.model_id)).all()}
        newest = (select(m.ModelVersion.model_id.label("model_id"), m.MonitoringCheck.verdict.label("verdict"),
                         func.row_number().over(partition_by=m.ModelVersion.model_id,
                                                order_by=(m.MonitoringCheck.created_at.desc(),
                                                          m.MonitoringCheck.id.desc())).label("n"))
                  .join(m.ModelVersion, m.ModelVersion.id == m.MonitoringCheck.model_version_id)
                  .subquery())
        verdicts = dict(s.execute(select(newest.c.model_id, newest.c.verdict).where(newest.c.n == 1)).all())
    if verdicts:  # the drift module (and numpy) loads only for a store with checks
        from modelyard.core.monitoring.drift.check import VERDICTS
    out = []
    for mid, name, monitoring in models:
        n, last = counts.get(mid, (0, None))
        verdict = verdicts.get(mid)
        status = None if verdict is None else verdict if verdict in VERDICTS else "warning"
        number = champion.get(mid)
        out.append(ModelOverview(
            name=name, n_checks=n, last=last, status=status if n else None,
            ref=f"{name}@v{number} (champion)" if number else f"{name}@v{latest.get(mid)}",
            watch_folder=(monitoring or {}).get("watch_folder")))
    return out
