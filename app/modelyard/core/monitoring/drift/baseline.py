"""The reference of a model version, ready for drift checks: its training rows (read column by
column) or, for an imported bundle, its stored reference profile (binned)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelyard.core.common.errors import ModelyardError
from modelyard.core.monitoring.drift.columns import Columns, TableColumns
from modelyard.core.monitoring.drift.compare import (
    _profile_column,
    _raw_column,
    _RefColumn,
)
from modelyard.core.registry import reference as refmod
from modelyard.core.registry import versions as registry
from modelyard.core.store import Store
from modelyard.core.store import models as m

Progress = Callable[[float, str], None]


# =========================================================================== the reference of a version


@dataclass
class Reference:
    """A reference ready for checks (see :func:`~modelyard.core.monitoring.drift.check.prepare_reference`)."""

    source: str  # "rows" | "profile"
    kinds: dict[str, str]  # numeric | categorical, of the features and the target
    features: list[str]
    target: str | None
    task: str | None
    inputs: list[str]
    rows: Columns | None  # raw rows (features, target, every model input); None for a profile
    profile: dict[str, Any] | None
    info: dict[str, Any]
    skipped: dict[str, str]
    columns: dict[str, _RefColumn] = field(default_factory=dict)  # built on first use (sorting takes time)

    def column(self, name: str) -> _RefColumn:
        col = self.columns.get(name)
        if col is None:
            assert self.rows is not None
            col = self.columns[name] = _raw_column(name, self.rows, self.kinds[name])
        return col

    def prepare(self) -> Reference:
        """Build every column now (to reuse the reference for several batches)."""
        for name in self.kinds:
            self.column(name)
        return self


def _kinds(source: Columns, names: Sequence[str], categorical: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    kinds: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name in names:
        if source.is_datetime(name):
            skipped[name] = refmod.SKIPPED_TYPES["datetime"]
        else:
            kinds[name] = "categorical" if name in categorical or source.is_categorical(name) else "numeric"
    return kinds, skipped


def _need_reference(store: Store, info: registry.ModelVersionInfo) -> None:
    """Raise unless the version has training rows in this store or a stored profile (cheap: no data read)."""
    with store.session() as s:
        mv = s.get(m.ModelVersion, info.id)
        dv = s.get(m.DatasetVersion, mv.dataset_version_id) if mv is not None and mv.dataset_version_id else None
        sha = ((mv.card if mv is not None else None) or {}).get("reference_profile_sha256")
    if dv is not None and dv.snapshot_sha256 and store.artifacts.exists(dv.snapshot_sha256):
        return
    if sha and store.artifacts.exists(sha):
        return
    raise _no_reference(info)


def _no_reference(info: registry.ModelVersionInfo) -> ModelyardError:
    return ModelyardError(
        f"{info.ref} has no training reference to compare with: its dataset version is not in this store and "
        "it carries no reference profile.",
        hint="Register a version trained in this store, or import a bundle that carries its reference profile.")


def _load_reference(store: Store, info: registry.ModelVersionInfo, progress: Progress) -> Reference:
    sig = info.signature or {}
    inputs = [str(c["name"]) for c in sig.get("inputs") or []]
    target = (sig.get("target") or {}).get("name")
    wanted = list(dict.fromkeys([*inputs, *([target] if target else [])])) or None
    progress(0.02, "Reading the reference")
    data = refmod.load_reference_data(store, info.id, columns=wanted, as_table=True)
    if data is not None:
        source = TableColumns(data.table)
        features = [f for f in data.features if f in source.names]
        target = data.target if data.target and data.target in source.names else None
        kinds, skipped = _kinds(source, [*features, *([target] if target else [])], set(data.categorical))
        return Reference("rows", kinds, [f for f in features if f in kinds], target if target in kinds else None,
                         data.task, inputs or features, source, None, {**data.source(), "source": "rows"},
                         {**data.skipped, **skipped})
    profile = refmod.stored_profile(store, info.id)
    if profile is None:
        raise _no_reference(info)
    return _profile_reference(profile, (sig.get("target") or {}).get("task"), None, inputs)


def _profile_reference(profile: dict[str, Any], task: str | None, features: Sequence[str] | None,
                       inputs: Sequence[str] | None = None) -> Reference:
    n_rows = int(profile.get("n_rows") or 0)
    target = profile.get("target")
    cols = profile["columns"]
    feats = list(features) if features is not None else list(profile.get("features")
                                                             or [c for c in cols if c != target])
    feats = [f for f in feats if f in cols]
    names = [*feats, *([target] if target in cols else [])]
    columns = {name: _profile_column(name, cols[name], n_rows) for name in names}
    task = profile.get("task") or task
    skipped = dict(profile.get("skipped") or {})
    return Reference("profile", {n: c.kind for n, c in columns.items()}, feats, target if target in cols else None,
                     task, list(inputs or feats), None, profile,
                     {"source": "profile", "n_rows": n_rows,
                      "dataset_version_id": (profile.get("source") or {}).get("dataset_version_id")},
                     skipped, columns)
