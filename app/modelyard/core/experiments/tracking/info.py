"""Plain records the tracking API returns: :class:`RunInfo`, :class:`ExperimentInfo`, :class:`LoggedArtifact`."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

# =========================================================================== plain records


@dataclass(frozen=True)
class LoggedArtifact:
    path: str
    sha256: str
    size: int
    kind: str | None


@dataclass(frozen=True)
class RunInfo:
    """A run as plain data: safe to keep, compare and hand to another thread."""

    id: str
    experiment: str
    experiment_id: int
    name: str | None
    status: str
    start_time: dt.datetime
    end_time: dt.datetime | None
    duration_s: float | None
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    parent_id: str | None
    artifacts: list[LoggedArtifact]
    user: str | None
    source_type: str | None
    source: str | None
    error: str | None
    host: str | None = None
    pid: int | None = None
    heartbeat_at: dt.datetime | None = None
    dataset_version_id: int | None = None
    spec: dict[str, Any] | None = None
    deleted_at: dt.datetime | None = None
    metric_steps: dict[str, int] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.id

    @property
    def duration(self) -> float | None:
        return self.duration_s

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("start_time", "end_time", "heartbeat_at", "deleted_at"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        d["run_id"] = d.pop("id")
        return d


@dataclass(frozen=True)
class ExperimentInfo:
    id: int
    name: str
    description: str | None
    created_at: dt.datetime
    runs: int
    last_run_at: dt.datetime | None
    deleted_at: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("created_at", "last_run_at", "deleted_at"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        return d
