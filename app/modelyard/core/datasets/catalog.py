"""The dataset catalog: what datasets, versions and splits a store holds, as plain data.

Only SQL and the standard library: the GUI lists datasets at start-up and the CLI answers
``dataset list`` without loading pandas or pyarrow. Everything here is re-exported by
:mod:`modelyard.core.datasets.service`, the public API.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelyard.core.common.errors import NotFoundError
from modelyard.core.store import Store
from modelyard.core.store import models as m
from modelyard.core.store.lookup import dataset_version_by_id


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class DatasetInfo:
    id: int
    name: str
    description: str | None
    created_at: dt.datetime
    created_by: str | None
    deleted_at: dt.datetime | None
    n_versions: int
    latest_version: int | None
    latest_version_id: int | None
    n_rows: int | None
    n_cols: int | None
    target: str | None
    task: str | None
    updated_at: dt.datetime | None
    # "imported" (a user's file or sample) or "generated" (made by a model: see GENERATED_RELATIONS)
    origin: str = "imported"

    @property
    def ref(self) -> str:
        return self.name if self.latest_version is None else f"{self.name}@v{self.latest_version}"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("created_at", "deleted_at", "updated_at"):
            d[k] = _iso(d[k])
        d["ref"] = self.ref
        return d


@dataclass(frozen=True)
class DatasetVersionInfo:
    id: int
    dataset_id: int
    name: str
    version: int
    parent_id: int | None
    parent_version: int | None
    content_hash: str
    snapshot_sha256: str | None
    n_rows: int
    n_cols: int
    source_path: str | None
    source_size: int | None
    source_mtime: dt.datetime | None
    source_format: str | None
    schema: dict[str, Any] | None
    profile: dict[str, Any] | None
    target: str | None
    task: str | None
    note: str | None
    created_at: dt.datetime
    created_by: str | None
    job_id: int | None
    dataset_deleted: bool = False

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"

    @property
    def columns(self) -> list[dict[str, Any]]:
        return list((self.schema or {}).get("columns", []))

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return list((self.profile or {}).get("warnings", []))

    def to_json(self, *, profile: bool = True) -> dict[str, Any]:
        d = asdict(self)
        for k in ("source_mtime", "created_at"):
            d[k] = _iso(d[k])
        d["ref"] = self.ref
        if not profile:
            d.pop("profile")
        return d


@dataclass(frozen=True)
class SplitInfo:
    id: int
    dataset_version_id: int
    ref: str  # "name@v3"
    name: str
    method: str
    seed: int | None
    spec: dict[str, Any]
    assignment_sha256: str | None
    created_at: dt.datetime

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.spec.get("counts", {}))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = _iso(self.created_at)
        d["counts"] = self.counts
        return d


_REF = re.compile(r"^(?P<name>.+)@(?:v(?P<v>\d+)|(?P<n>\d+)|(?P<latest>latest))$", re.I)


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``"name@v3"`` -> ("name", 3); ``"name@latest"`` and ``"name"`` -> ("name", None)."""
    ref = ref.strip()
    match = _REF.match(ref)
    if not match:
        return ref, None
    if match.group("latest"):
        return match.group("name"), None
    return match.group("name"), int(match.group("v") or match.group("n"))


def _version_info(s: Session, v: m.DatasetVersion, *, profile: bool = True) -> DatasetVersionInfo:
    ds = s.get(m.Dataset, v.dataset_id)
    assert ds is not None
    parent_version = None
    if v.parent_id is not None:
        parent_version = s.scalar(select(m.DatasetVersion.version).where(m.DatasetVersion.id == v.parent_id))
    return DatasetVersionInfo(
        id=v.id, dataset_id=v.dataset_id, name=ds.name, version=v.version, parent_id=v.parent_id,
        parent_version=parent_version, content_hash=v.content_hash, snapshot_sha256=v.snapshot_sha256,
        n_rows=v.n_rows, n_cols=v.n_cols, source_path=v.source_path, source_size=v.source_size,
        source_mtime=v.source_mtime, source_format=v.source_format, schema=v.schema,
        profile=v.profile if profile else None, target=v.target, task=v.task, note=v.note,
        created_at=v.created_at, created_by=v.created_by, job_id=v.job_id, dataset_deleted=ds.deleted_at is not None)


def _split_info(s: Session, sp: m.DatasetSplit) -> SplitInfo:
    v = s.get(m.DatasetVersion, sp.dataset_version_id)
    assert v is not None
    ds = s.get(m.Dataset, v.dataset_id)
    assert ds is not None
    return SplitInfo(id=sp.id, dataset_version_id=sp.dataset_version_id, ref=f"{ds.name}@v{v.version}",
                     name=sp.name, method=sp.method, seed=sp.seed, spec=dict(sp.spec or {}),
                     assignment_sha256=sp.assignment_sha256, created_at=sp.created_at)


# name -> (scikit-learn loader, target column name, description)
SAMPLES: dict[str, tuple[str, str, str]] = {
    "iris": ("load_iris", "species", "Iris flowers: 150 rows, 4 measurements, 3 species (classification)"),
    "wine": ("load_wine", "cultivar", "Wines: 178 rows, 13 chemical measurements, 3 cultivars (classification)"),
    "breast_cancer": ("load_breast_cancer", "diagnosis",
                      "Breast cancer biopsies: 569 rows, 30 measurements, malignant or benign (classification)"),
    "diabetes": ("load_diabetes", "progression",
                 "Diabetes patients: 442 rows, 10 measurements, disease progression after a year (regression)"),
}


# What makes a dataset "generated" (a model's output, listed apart from the user's data):
# a version that is the destination of one of these lineage edges (scoring writes
# ``model_version -scored-> dataset_version`` and ``input -scored_into-> output``; retraining
# writes ``dataset_version -combined_into-> dataset_version``), or that a job other than a user's
# import made (a drift check importing its batch file, a scoring or retraining job). A dataset is
# generated when every one of its versions is; one version a user imported makes it the user's.
GENERATED_RELATIONS = ("scored", "scored_into", "combined_into")
USER_IMPORT_JOB_KINDS = ("dataset.import", "dataset.sample")


def _generated_version_ids(s: Session) -> set[int]:
    edges = s.scalars(select(m.LineageEdge.dst_id).where(m.LineageEdge.dst_type == "dataset_version",
                                                         m.LineageEdge.relation.in_(GENERATED_RELATIONS)))
    made = {int(i) for i in edges if str(i).isdigit()}
    made.update(s.scalars(select(m.DatasetVersion.id).join(m.Job, m.Job.id == m.DatasetVersion.job_id)
                          .where(m.Job.kind.not_in(USER_IMPORT_JOB_KINDS))))
    return made


def list_datasets(store: Store, *, include_deleted: bool = False) -> list[DatasetInfo]:
    """Every dataset with its latest version's shape and its ``origin``, by name."""
    with store.session() as s:
        generated = _generated_version_ids(s)
        versions_of: dict[int, list[int]] = {}
        for ds_id, v_id in s.execute(select(m.DatasetVersion.dataset_id, m.DatasetVersion.id)):
            versions_of.setdefault(ds_id, []).append(v_id)
        q = select(m.Dataset).order_by(func.lower(m.Dataset.name))
        if not include_deleted:
            q = q.where(m.Dataset.deleted_at.is_(None))
        datasets = list(s.scalars(q))
        counts = dict(s.execute(select(m.DatasetVersion.dataset_id, func.count())
                                .group_by(m.DatasetVersion.dataset_id)).all())
        latest_ids = dict(s.execute(select(m.DatasetVersion.dataset_id, func.max(m.DatasetVersion.version))
                                    .group_by(m.DatasetVersion.dataset_id)).all())
        out = []
        for ds in datasets:
            latest = None
            if ds.id in latest_ids:
                latest = s.scalar(select(m.DatasetVersion).where(m.DatasetVersion.dataset_id == ds.id,
                                                                 m.DatasetVersion.version == latest_ids[ds.id]))
            out.append(DatasetInfo(
                id=ds.id, name=ds.name, description=ds.description, created_at=ds.created_at,
                created_by=ds.created_by, deleted_at=ds.deleted_at, n_versions=counts.get(ds.id, 0),
                latest_version=latest.version if latest else None, latest_version_id=latest.id if latest else None,
                n_rows=latest.n_rows if latest else None, n_cols=latest.n_cols if latest else None,
                target=latest.target if latest else None, task=latest.task if latest else None,
                updated_at=latest.created_at if latest else None,
                origin="generated" if versions_of.get(ds.id) and all(v in generated for v in versions_of[ds.id])
                else "imported"))
        return out


def _find_dataset(s: Session, name: str) -> m.Dataset:
    ds = s.scalar(select(m.Dataset).where(m.Dataset.name == name, m.Dataset.deleted_at.is_(None)))
    if ds is None:
        raise NotFoundError(f"There is no dataset '{name}' in this store.",
                            hint="'modelyard dataset list' shows the datasets; names are case-sensitive.")
    return ds


def _find_version(s: Session, ref: str | int) -> m.DatasetVersion:
    if isinstance(ref, int):
        return dataset_version_by_id(s, ref)
    name, number = parse_ref(str(ref))
    ds = _find_dataset(s, name)
    q = select(m.DatasetVersion).where(m.DatasetVersion.dataset_id == ds.id)
    if number is None:
        v = s.scalar(q.order_by(m.DatasetVersion.version.desc()).limit(1))
        if v is None:
            raise NotFoundError(f"Dataset '{name}' has no versions.", hint="Import a file into it.")
        return v
    v = s.scalar(q.where(m.DatasetVersion.version == number))
    if v is None:
        top = s.scalar(select(func.max(m.DatasetVersion.version)).where(m.DatasetVersion.dataset_id == ds.id))
        have = f"it has v1 to v{top}" if top and top > 1 else ("it has only v1" if top == 1 else "it has none")
        raise NotFoundError(f"Dataset '{name}' has no version v{number} ({have}).",
                            hint=f"'modelyard dataset versions {name}' lists them.")
    return v


def get_version(store: Store, ref: str | int) -> DatasetVersionInfo:
    """A version with its schema and profile: ``"name@v3"``, ``"name"`` (the latest) or its id."""
    with store.session() as s:
        return _version_info(s, _find_version(s, ref))


def list_versions(store: Store, name: str, *, with_profile: bool = False) -> list[DatasetVersionInfo]:
    """The versions of dataset ``name``, oldest first (without profiles unless asked)."""
    with store.session() as s:
        ds = _find_dataset(s, parse_ref(name)[0])
        versions = s.scalars(select(m.DatasetVersion).where(m.DatasetVersion.dataset_id == ds.id)
                             .order_by(m.DatasetVersion.version))
        return [_version_info(s, v, profile=with_profile) for v in versions]


def get_split(store: Store, split_id: int) -> SplitInfo:
    with store.session() as s:
        sp = s.get(m.DatasetSplit, split_id)
        if sp is None:
            raise NotFoundError(f"There is no split {split_id}.", hint="'modelyard dataset show NAME' lists splits.")
        return _split_info(s, sp)


def list_splits(store: Store, version_ref: str | int) -> list[SplitInfo]:
    with store.session() as s:
        v = _find_version(s, version_ref)
        return [_split_info(s, sp) for sp in s.scalars(select(m.DatasetSplit)
                                                       .where(m.DatasetSplit.dataset_version_id == v.id)
                                                       .order_by(m.DatasetSplit.id))]
