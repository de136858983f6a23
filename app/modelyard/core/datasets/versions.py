"""What is written about existing versions: schema edits (a child version), deleting a dataset,
and its stored splits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.parquet as pq
from sqlalchemy import func, or_, select

from modelyard.core.common.errors import ModelyardError, NotFoundError
from modelyard.core.common.procs import current_user
from modelyard.core.datasets import splits
from modelyard.core.datasets.catalog import (
    DatasetVersionInfo,
    SplitInfo,
    _find_dataset,
    _split_info,
    _version_info,
    get_split,
    get_version,
    parse_ref,
)
from modelyard.core.datasets.profile import with_types
from modelyard.core.datasets.rows import snapshot_path
from modelyard.core.datasets.schema import SchemaError, apply_changes
from modelyard.core.store import Store
from modelyard.core.store import models as m
from modelyard.core.store.records import audit
from modelyard.core.store.server import xact_lock

if TYPE_CHECKING:
    pass


SPLIT_MEDIA_TYPE = "application/x-npz"


# --------------------------------------------------------------------------- schema edits


def update_schema(store: Store, version_ref: str | int, changes: Mapping[str, Any], *,
                  comment: str | None = None) -> DatasetVersionInfo:
    """A new version with ``changes`` applied to the schema of ``version_ref`` (its parent).

    ``changes``: ``{"columns": {name: {"type": T, "role": R}}, "target": name or None,
    "task": "classification" | "regression"}`` (any subset). The new version shares the
    parent's snapshot; its profile warnings are recomputed. When nothing changes, the version
    itself is returned and nothing is written.
    """
    parent = get_version(store, version_ref)
    if parent.schema is None or parent.profile is None:
        raise SchemaError(f"{parent.ref} has no schema to change.", hint="Import the data again.")
    new_schema = apply_changes(parent.schema, parent.profile, changes)
    if new_schema == parent.schema:
        return parent
    new_profile = with_types(parent.profile, new_schema)
    with store.write() as s:
        xact_lock(s, "dataset", parent.name)  # PostgreSQL: one next version number
        top = s.scalar(select(func.max(m.DatasetVersion.version))
                       .where(m.DatasetVersion.dataset_id == parent.dataset_id)) or 0
        v = m.DatasetVersion(
            dataset_id=parent.dataset_id, version=top + 1, parent_id=parent.id, content_hash=parent.content_hash,
            snapshot_sha256=parent.snapshot_sha256, n_rows=parent.n_rows, n_cols=parent.n_cols,
            source_path=parent.source_path, source_size=parent.source_size, source_mtime=parent.source_mtime,
            source_format=parent.source_format, schema=new_schema, profile=new_profile,
            target=new_schema.get("target"), task=new_schema.get("task"), note=comment, created_by=current_user(),
        )
        s.add(v)
        s.flush()
        audit(s, "dataset_version", v.id, "update_schema", from_value=parent.ref,
               to_value=f"{parent.name}@v{top + 1}", comment=comment, details={"changes": _jsonable(changes)})
        return _version_info(s, v)


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))


# --------------------------------------------------------------------------- deleting


def delete_dataset(store: Store, name: str, *, force: bool = False, comment: str | None = None) -> dict[str, Any]:
    """Soft-delete dataset ``name`` (hidden, data kept). Refused while models or runs use it, unless forced."""
    name = parse_ref(name)[0]
    with store.write() as s:
        ds = _find_dataset(s, name)
        ids = list(s.scalars(select(m.DatasetVersion.id).where(m.DatasetVersion.dataset_id == ds.id)))
        numbers = dict(s.execute(select(m.DatasetVersion.id, m.DatasetVersion.version)
                                 .where(m.DatasetVersion.dataset_id == ds.id)).all())
        model_versions = [
            {"model": mname, "version": ver, "dataset_version": f"{name}@v{numbers[dvid]}"}
            for mname, ver, dvid in s.execute(
                select(m.RegisteredModel.name, m.ModelVersion.version, m.ModelVersion.dataset_version_id)
                .join(m.RegisteredModel, m.RegisteredModel.id == m.ModelVersion.model_id)
                .where(m.ModelVersion.dataset_version_id.in_(ids))
                .order_by(m.RegisteredModel.name, m.ModelVersion.version))
        ] if ids else []
        runs = [
            {"run": uuid, "name": rname, "dataset_version": f"{name}@v{numbers[dvid]}"}
            for uuid, rname, dvid in s.execute(
                select(m.Run.uuid, m.Run.name, m.Run.dataset_version_id)
                .where(m.Run.dataset_version_id.in_(ids), m.Run.deleted_at.is_(None)).order_by(m.Run.id))
        ] if ids else []
        checks = s.scalar(select(func.count()).select_from(m.MonitoringCheck).where(or_(
            m.MonitoringCheck.batch_dataset_version_id.in_(ids),
            m.MonitoringCheck.reference_dataset_version_id.in_(ids)))) if ids else 0
        referenced = bool(model_versions or runs)
        if referenced and not force:
            parts = []
            if model_versions:
                shown = ", ".join(f"{mv['model']} v{mv['version']}" for mv in model_versions[:5])
                more = f" and {len(model_versions) - 5} more" if len(model_versions) > 5 else ""
                parts.append(f"model version(s) {shown}{more}")
            if runs:
                shown = ", ".join(r["name"] or r["run"][:8] for r in runs[:5])
                more = f" and {len(runs) - 5} more" if len(runs) > 5 else ""
                parts.append(f"run(s) {shown}{more}")
            raise ModelyardError(
                f"Dataset '{name}' was not deleted: it was used to train {' and by '.join(parts)}.",
                hint="Those records would lose their data. Delete with --force to hide the dataset anyway "
                     "(its files are kept for them).")
        ds.deleted_at = m.utcnow()
        details = {"forced": force, "versions": len(ids), "model_versions": model_versions, "runs": runs,
                   "monitoring_checks": checks or 0}
        audit(s, "dataset", ds.id, "delete", from_value=name, comment=comment, details=details)
    return {"name": name, "deleted": True, "forced": bool(force and referenced), "versions": len(ids),
            "model_versions": model_versions, "runs": runs}


# --------------------------------------------------------------------------- splits


def _split_name(method: str, test: float, validation: float, seed: int, column: str | None) -> str:
    name = f"{method}-test{test:g}" + (f"-val{validation:g}" if validation else "") + \
        (f"-by-{column}" if column else "") + f"-seed{seed}"
    if len(name) > 100:
        import hashlib

        name = name[:83] + "-" + hashlib.sha256(name.encode()).hexdigest()[:16]
    return name


def create_split(store: Store, version_ref: str | int, *, test: float, validation: float = 0.0,
                 method: str = "random", column: str | None = None, seed: int = 0,
                 name: str | None = None) -> SplitInfo:
    """Define and store a train/test (and validation) split of a version.

    ``method``: random, stratified (by ``column``, default the target) or time (ordered by
    ``column``, default the only datetime column). The same parameters give the same split:
    asking again returns the stored one.
    """
    v = get_version(store, version_ref)
    if method not in splits.METHODS:
        raise splits.SplitError(f"Unknown split method '{method}'.", hint=f"Use one of {', '.join(splits.METHODS)}.")
    names = [c["name"] for c in v.columns]
    if method == "stratified" and column is None:
        column = v.target
        if column is None:
            raise splits.SplitError(f"{v.ref} has no target to stratify on.",
                                    hint="Set the dataset's target first, or name the column: "
                                         "'modelyard dataset split NAME --method stratified --column COL'.")
    if method == "time" and column is None:
        dates = [c["name"] for c in v.columns if c.get("type") == "datetime"]
        if len(dates) != 1:
            raise splits.SplitError(f"A time split of {v.ref} needs the time column"
                                    + (f" (it has {len(dates)} date/time columns)." if dates else "."),
                                    hint="Name it: 'modelyard dataset split NAME --method time --column COL', "
                                         "or 'modelyard train ... --split-method time --split-column COL' "
                                         "(split: {method: time, column: COL} in a training spec).")
        column = dates[0]
    if method == "random":
        column = None
    if column is not None and column not in names:
        raise splits.SplitError(f"{v.ref} has no column '{column}'.",
                                hint=f"Its columns are {', '.join(repr(n) for n in names[:20])}.")
    split_name = name or _split_name(method, test, validation, seed, column)
    splits.part_sizes(v.n_rows, test, validation)  # refuse bad shares before reading anything
    with store.session() as s:
        existing = s.scalar(select(m.DatasetSplit).where(m.DatasetSplit.dataset_version_id == v.id,
                                                         m.DatasetSplit.name == split_name))
        if existing is not None:
            same = (existing.method == method and existing.seed == seed
                    and (existing.spec or {}).get("test") == test
                    and (existing.spec or {}).get("validation") == validation
                    and (existing.spec or {}).get("column") == column)
            if same:
                return _split_info(s, existing)
            raise splits.SplitError(f"{v.ref} already has a different split named '{split_name}'.",
                                    hint="Choose another name.")
    values = None
    if column is not None:
        values = pq.read_table(snapshot_path(store, v.id), columns=[column]).column(0)
    assignment, facts = splits.make_assignment(v.n_rows, test=test, validation=validation, method=method,
                                               seed=seed, column=column, values=values)
    spec = {"test": test, "validation": validation, "column": column, "n_rows": v.n_rows, **facts}
    with store.write() as s:
        existing = s.scalar(select(m.DatasetSplit).where(m.DatasetSplit.dataset_version_id == v.id,
                                                         m.DatasetSplit.name == split_name))
        if existing is not None:  # made by someone else meanwhile, from the same parameters
            return _split_info(s, existing)
        ref = store.artifacts.put_bytes(splits.to_bytes(assignment), session=s, media_type=SPLIT_MEDIA_TYPE)
        sp = m.DatasetSplit(dataset_version_id=v.id, name=split_name, method=method, seed=seed, spec=spec,
                            assignment_sha256=ref.sha256)
        s.add(sp)
        s.flush()
        audit(s, "dataset_split", sp.id, "create", to_value=f"{v.ref}:{split_name}", details=spec)
        return _split_info(s, sp)


def load_split(store: Store, split_id: int) -> dict[str, np.ndarray]:
    """The row indices (into the version's rows, ascending) of train, validation and test."""
    info = get_split(store, split_id)
    if info.assignment_sha256 is None or not store.artifacts.exists(info.assignment_sha256):
        raise NotFoundError(f"The row assignment of the split '{info.name}' of {info.ref} is missing from the store.",
                            hint="'modelyard store verify' checks every artifact; create the split again.")
    return splits.indices(splits.from_bytes(store.artifacts.read_bytes(info.assignment_sha256)))
