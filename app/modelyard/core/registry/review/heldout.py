"""The held-out rows a version's evidence is computed on: the TEST part of the split it was trained
with (:func:`modelyard.core.registry.reference.load_reference_data` with ``part="test"``; the same
reader that gives the drift check the TRAIN part), with the columns the candidate and the champion
take and the sensitive columns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from modelyard.core.common.errors import ModelyardError
from modelyard.core.registry.reference import load_reference_data
from modelyard.core.store import Store, lookup
from modelyard.core.store import models as m

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class HeldOut:
    frame: pd.DataFrame
    target: str
    task: str  # "classification" | "regression"
    features: list[str]  # the candidate's input columns
    split_label: str  # the split as the user knows it
    dataset_version: str | None  # NAME@vN of the rows
    split_id: int | None


def _inputs(signature: dict[str, Any] | None) -> list[str]:
    return [str(c.get("name")) for c in (signature or {}).get("inputs") or []]


def heldout_problem(store: Store, version_id: int) -> str | None:
    """Why a version has no held-out rows to compute evidence on (cheap: no rows are read), or None."""
    with store.session() as s:
        mv = lookup.model_version_by_id(s, version_id)
        dv = s.get(m.DatasetVersion, mv.dataset_version_id) if mv.dataset_version_id is not None else None
        if dv is None or dv.snapshot_sha256 is None or not store.artifacts.exists(dv.snapshot_sha256):
            return "it has no dataset version in this store"
        split_id = (mv.card or {}).get("split_id")
        if split_id is None and mv.run_id is not None:
            split_id = s.scalar(select(m.Run.split_id).where(m.Run.id == mv.run_id))
        split = s.get(m.DatasetSplit, int(split_id)) if split_id is not None else None
        if split is None or split.dataset_version_id != dv.id:
            return "it has no stored test split"
    return None


def load_heldout(store: Store, ref: str, version_id: int, *, also: Sequence[str] = ()) -> HeldOut:
    """The test rows of ``ref``'s split with its inputs, its target and ``also`` (when present).

    Refuses, naming the version, when it has no stored split (or its data is not in this store),
    no target, or an empty test part."""
    from modelyard.core.registry.gates import _split_label

    with store.session() as s:
        mv = lookup.model_version_by_id(s, version_id)
        inputs = _inputs(mv.signature)
        row = s.execute(select(m.Dataset.name, m.DatasetVersion.version)
                        .join(m.DatasetVersion, m.DatasetVersion.dataset_id == m.Dataset.id)
                        .where(m.DatasetVersion.id == mv.dataset_version_id)).first()
        dv_ref = f"{row[0]}@v{row[1]}" if row is not None else None
    data = load_reference_data(store, version_id, also=[*inputs, *also], part="test")
    how = ("Evidence is computed on the test part of the split the version was trained with; train it "
           "with a test split ('modelyard train DATASET --test 0.2') and register that run.")
    if data is None:
        raise ModelyardError(f"{ref} has no dataset version in this store, so there are no held-out rows to "
                             "compute its evidence on.", hint=how)
    if data.part == "none" or data.split_id is None:
        raise ModelyardError(f"{ref} has no stored test split, so there are no held-out rows to compute its "
                             "evidence on.", hint=how)
    if data.target is None or not data.task:
        raise ModelyardError(f"{ref} has no target column recorded, so its predictions cannot be scored.",
                             hint="Register a version trained on a dataset with a target.")
    frame = data.frame
    assert frame is not None
    if len(frame) == 0:
        raise ModelyardError(f"The test part of the split of {ref} is empty, so there are no held-out rows.",
                             hint=how)
    frame = frame[frame[data.target].notna()].reset_index(drop=True)
    with store.session() as s:
        label = _split_label(s, data.split_id)
    return HeldOut(frame=frame, target=data.target, task=data.task, features=[c for c in inputs if c in frame.columns]
                   or list(data.features), split_label=label, dataset_version=dv_ref, split_id=data.split_id)

