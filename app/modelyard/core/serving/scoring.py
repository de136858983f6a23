"""Scoring: check input against a model version's signature, predict, and the batch scoring job.

::

    from modelyard.core.serving import scoring

    frame = scoring.validate_input(version.signature, frame, model=model)   # InputError names the columns
    preds = scoring.predict_frame(model, version.signature, frame)        # prediction, proba_<class>...
    outcome = run_job(store, scoring.score_spec("churn@champion", dataset="march@v2"))
    outcome.result["output"]["ref"]                                       # 'churn-predictions@v4'

**Signatures** and **what is checked**: see :mod:`modelyard.core.serving.inputs` (the
input spec and the column conversions; :class:`InputError`, :func:`input_spec`).

**Batch scoring** (:func:`score_job`) reads a dataset version (or imports a file first, as a
dataset version of its own), scores it in chunks of :data:`CHUNK_ROWS` rows, and stores the
input's columns plus ``prediction`` and, for classifiers with probabilities, one
``proba_<class>`` column per class as a new version of a dataset (default name
``<model>-predictions``). The version, the lineage edges ``model_version -scored->
dataset_version`` and ``dataset_version(input) -scored_into-> dataset_version(output)``, and
an audit event ``batch_score`` of the registered model are written in one transaction. A bad
input fails the job before anything is written.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.core.common.errors import ModelyardError
from modelyard.core.jobs.progress import ProgressSlice
from modelyard.core.jobs.runner import JobContext, JobSpec
from modelyard.core.serving.inputs import (
    MAX_LISTED,
    InputError,
    Validated,
    _names,
    _plain,
    input_spec,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CHUNK_ROWS",
    "InputError",
    "Predictor",
    "Validated",
    "input_spec",
    "predict_frame",
    "proba_column",
    "score_job",
    "score_spec",
    "validate_input",
    "write_table_file",
]

CHUNK_ROWS = 50_000
PREDICTION = "prediction"
PROBA_PREFIX = "proba_"
OUTPUT_SUFFIX = "-predictions"
OUTPUT_FORMATS = (".csv", ".parquet")


# =========================================================================== predicting


def proba_column(label: Any) -> str:
    return f"{PROBA_PREFIX}{_plain(label)}"


class Predictor:
    """A fitted model with its signature, ready to score many inputs."""

    def __init__(self, model: Any, signature: Mapping[str, Any] | None) -> None:
        self.model = model
        self.signature = dict(signature) if isinstance(signature, Mapping) else None
        self.spec = input_spec(self.signature, model)
        classes = getattr(model, "classes_", None)
        self.classes: list[Any] | None = [_plain(c) for c in classes] if classes is not None else None
        self.has_proba = self.classes is not None and _has_method(model, "predict_proba")

    def validate(self, data: Any, *, strict: bool = False, row_offset: int = 0) -> Validated:
        return self.spec.validate(data, strict=strict, row_offset=row_offset)

    def predict_validated(self, v: Validated, *, proba: bool = True) -> tuple[Any, Any]:
        """(predictions, class probabilities or None) of validated input."""
        X = self.spec.model_input(v)
        try:
            pred = self.model.predict(X)
            probs = self.model.predict_proba(X) if proba and self.has_proba else None
        except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
            raise ModelyardError(f"The model could not score the input: {type(exc).__name__}: {exc}",
                                 hint="Check the input against the model's signature "
                                      "('modelyard model show NAME@vN --json').") from exc
        return pred, probs

    def predict_frame(self, frame: Any, *, strict: bool = False, proba: bool = True,
                      warnings: list[dict[str, Any]] | None = None, row_offset: int = 0) -> pd.DataFrame:
        v = self.validate(frame, strict=strict, row_offset=row_offset)
        if warnings is not None:
            warnings.extend(v.warnings)
        pred, probs = self.predict_validated(v, proba=proba)
        return self.output_frame(pred, probs)

    def output_frame(self, pred: Any, probs: Any) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        pred = np.asarray(pred)
        data: dict[str, Any] = {PREDICTION: pred if pred.ndim == 1 else list(pred)}
        if probs is not None and self.classes is not None:
            for j, label in enumerate(self.classes):
                data[proba_column(label)] = np.asarray(probs)[:, j]
        return pd.DataFrame(data)


def _has_method(model: Any, name: str) -> bool:
    try:
        return callable(getattr(model, name))
    except AttributeError:  # sklearn's available_if raises when the final step lacks it
        return False


def validate_input(signature: Mapping[str, Any] | None, frame: Any, *, model: Any = None, strict: bool = False,
                   warnings: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """``frame`` checked against ``signature`` (see the module docstring) and converted: the
    model's columns in order with the types it needs, extra columns dropped. Raises
    :class:`InputError`; warnings (extra columns, unseen categories) are appended to ``warnings``."""
    spec = input_spec(signature, model)
    v = spec.validate(frame, strict=strict)
    if warnings is not None:
        warnings.extend(v.warnings)
    X = spec.model_input(v)
    import pandas as pd

    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)


def predict_frame(model: Any, signature: Mapping[str, Any] | None, frame: Any, *, strict: bool = False,
                  warnings: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """Predictions of ``model`` for ``frame``: a ``prediction`` column, plus ``proba_<class>``
    per class for classifiers with probabilities (row order kept)."""
    return Predictor(model, signature).predict_frame(frame, strict=strict, warnings=warnings)


# =========================================================================== the batch job


def score_spec(model_ref: str, *, dataset: str | int | None = None, path: str | Path | None = None,
               output_name: str | None = None, strict: bool = False, process: bool = False) -> JobSpec:
    """The batch scoring job (run it with ``run_job``, or the GUI's runner; ``process=True``
    scores in a child process so a cancel kills it at once)."""
    if (dataset is None) == (path is None):
        raise ModelyardError("Score either a dataset version or a file.", hint="Give one of them.")
    params: dict[str, Any] = {"model_ref": model_ref, "output_name": output_name, "strict": strict}
    if path is not None:
        params["path"] = str(Path(path).expanduser().resolve())
        what = Path(path).name
    elif isinstance(dataset, int):
        params["dataset_version_id"] = dataset
        what = f"dataset version {dataset}"
    else:
        params["dataset"] = str(dataset)
        what = str(dataset)
    return JobSpec.for_kind("score", f"Score {what} with {model_ref}", params, process=process)


def _safe_name(text: str) -> str:
    return re.sub(r"[@\x00-\x1f]", "_", text).strip()[:200] or "predictions"


@dataclass
class _Scored:
    frame: Any  # the input's columns + the prediction columns
    columns: list[str]  # the prediction columns
    warnings: list[dict[str, Any]]


def _score_snapshot(path: Path, predictor: Predictor, *, strict: bool, progress: ProgressSlice, start: float,
                    end: float) -> _Scored:
    """Score a Parquet file chunk by chunk; raises InputError (rows numbered in the whole file)."""
    import pandas as pd
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    total = max(pf.metadata.num_rows, 1)
    warnings: dict[tuple[str, str], dict[str, Any]] = {}
    pieces: list[Any] = []
    pred_cols: list[str] = []
    done = 0
    try:
        for batch in pf.iter_batches(batch_size=CHUNK_ROWS):
            progress(start + (end - start) * done / total, f"Scoring rows {done + 1:,} to {done + batch.num_rows:,}")
            frame = batch.to_pandas()
            v = predictor.validate(frame, strict=strict, row_offset=done)
            _merge_warnings(warnings, v.warnings)
            pred, probs = predictor.predict_validated(v)
            out = predictor.output_frame(pred, probs)
            pred_cols = list(out.columns)
            pieces.append(_join(frame, out))
            done += batch.num_rows
    finally:
        pf.close()
    if not pieces or done == 0:
        raise ModelyardError("There are no rows to score.", hint="Score a table that has data rows.")
    frame = pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0]
    warning_list = list(warnings.values())
    collided = [c for c in frame.columns if str(c).endswith("__input")]
    if collided:
        warning_list.append({"kind": "renamed_columns", "columns": collided,
                             "message": f"Input column(s) named like the prediction columns were kept as "
                                        f"{_names(collided)}."})
    return _Scored(frame, pred_cols, warning_list)


def score_job(ctx: JobContext, *, model_ref: str, dataset_version_id: int | None = None, dataset: str | None = None,
              path: str | None = None, output_name: str | None = None, strict: bool = False) -> dict[str, Any]:
    """Job: score a dataset version (``dataset_version_id`` or ``dataset`` "NAME@vN") or a file
    (``path``) with the model version ``model_ref`` (resolved once, when the job starts), and
    store the predictions as a new dataset version (see the module docstring).

    A file is read into a snapshot and scored *before* anything is recorded; only then is it
    stored as a dataset version of its own (named after the file), so input the model refuses
    leaves nothing behind.

    Result: ``{"model": {"ref", "model_version_id"}, "input": {"ref", "dataset_version_id",
    "imported"}, "output": {"ref", "dataset_version_id", "created", "name", "version"},
    "n_rows", "columns": [prediction columns], "warnings": [{"kind", "message", ...}],
    "duration_s"}``.
    """
    import time

    from modelyard.core.datasets import service as datasets
    from modelyard.core.registry import versions as registry

    t0 = time.monotonic()
    store = ctx.store
    bar = ctx.sub(0.0, 1.0, monotonic=True)  # the bar never moves back
    info = registry.get_version(store, model_ref)
    bar(0.0, f"Loading {info.ref}")
    ctx.log(f"Scoring with {info.ref} (model version {info.id}).")
    predictor = Predictor(registry.load_model(store, info.ref), info.signature)
    box: dict[str, _Scored] = {}
    imported = False
    if path is not None:
        src = Path(path).expanduser()
        if not src.is_file():
            raise ModelyardError(f"There is no file {src} to score.", hint="Check the path.")

        def score_before_storing(snapshot: Path) -> None:
            bar(0.2, f"Checking {src.name} against {info.ref}")
            box["scored"] = _score_snapshot(snapshot, predictor, strict=strict, progress=bar, start=0.2, end=0.8)
            bar(0.8, f"Storing {src.name} as a dataset version")

        res = datasets.import_dataset(bar.sub(0.02, 0.2), path=str(src),  # type: ignore[arg-type]
                                      before_commit=score_before_storing,
                                      date_hints=datasets.date_formats_of(store, info.dataset_version_id))
        input_id = int(res["dataset_version_id"])
        imported = bool(res.get("created"))
        ctx.log(f"{src} is {res['ref']}" + (" (imported now)." if imported else " (already imported)."))
    else:
        ref: str | int = int(dataset_version_id) if dataset_version_id is not None else str(dataset)
        input_id = datasets.get_version(store, ref).id
    in_info = datasets.get_version(store, input_id)
    if "scored" not in box:
        ctx.log(f"Input: {in_info.ref} ({in_info.n_rows:,} rows x {in_info.n_cols} columns).")
        box["scored"] = _score_snapshot(datasets.snapshot_path(store, input_id), predictor, strict=strict,
                                        progress=bar, start=0.05, end=0.8)
    scored = box["scored"]
    for w in scored.warnings:
        ctx.log("warning: " + w["message"])
    name = _safe_name(output_name or f"{info.name}{OUTPUT_SUFFIX}")
    rows = len(scored.frame)

    def record(s: Any, version_id: int, created: bool) -> None:
        from sqlalchemy import select

        from modelyard.core.store import models as m
        from modelyard.core.store import records

        now = dt.datetime.now(dt.UTC).isoformat()
        edges = [("model_version", str(info.id), "dataset_version", str(version_id), "scored",
                  {"input_dataset_version_id": input_id, "model": info.ref, "rows": rows, "job_id": ctx.job_id,
                   "created_at": now}),
                 ("dataset_version", str(input_id), "dataset_version", str(version_id), "scored_into",
                  {"model_version_id": info.id, "model": info.ref, "rows": rows, "job_id": ctx.job_id,
                   "created_at": now})]
        for src_type, src_id, dst_type, dst_id, relation, details in edges:
            exists = s.scalar(select(m.LineageEdge.id).where(
                m.LineageEdge.src_type == src_type, m.LineageEdge.src_id == src_id,
                m.LineageEdge.dst_type == dst_type, m.LineageEdge.dst_id == dst_id,
                m.LineageEdge.relation == relation).limit(1))
            if exists is None:
                records.link(s, src_type, src_id, dst_type, dst_id, relation, details)
        out_row = s.get(m.DatasetVersion, version_id)  # named as the user knows it ("flowers-predictions@v1")
        records.audit(s, registry.ENTITY, info.model_id, "batch_score", from_value=in_info.ref,
                      to_value=f"{name}@v{out_row.version}" if out_row is not None else name,
                      details={"version": info.version, "input_dataset_version_id": input_id,
                               "output_dataset_version_id": version_id, "rows": rows, "job_id": ctx.job_id,
                               "created": created})

    bar(0.85, "Saving the predictions")
    res = datasets.import_frame(store, scored.frame, name, ctx=bar.sub(0.85, 1.0),  # type: ignore[arg-type]
                                source={"path": None, "format": "predictions",
                                        "label": f"the predictions of {info.ref} for {in_info.ref}"},
                                on_commit=record)
    ctx.log(f"Stored {rows:,} predictions as {res['ref']}" + ("" if res.get("created") else " (already there)") + ".")
    return {
        "model": {"ref": info.ref, "model_version_id": info.id},
        "input": {"ref": in_info.ref, "dataset_version_id": input_id, "imported": imported},
        "output": {"ref": res["ref"], "dataset_version_id": res["dataset_version_id"], "created": res["created"],
                   "name": res["dataset"], "version": res["version"]},
        "n_rows": rows, "columns": scored.columns,
        "warnings": [_jsonable(w) for w in scored.warnings], "duration_s": round(time.monotonic() - t0, 3),
    }


def _merge_warnings(into: dict[tuple[str, str], dict[str, Any]], new: Iterable[dict[str, Any]]) -> None:
    for w in new:
        key = (w["kind"], str(w.get("column", "")))
        old = into.get(key)
        if old is None:
            into[key] = dict(w)
        elif w["kind"] == "unseen_categories":
            values = sorted(set(old["values"]) | set(w["values"]))
            rows = old["rows"] + w["rows"]
            shown = ", ".join(repr(v) for v in values[:MAX_LISTED]) + (", ..." if len(values) > MAX_LISTED else "")
            old.update(values=values, rows=rows,
                       message=f"Column '{w['column']}' has value(s) never seen in training: {shown} ({rows} rows); "
                               "the model scores them as an unknown category.")


def _jsonable(w: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(w)
    if "values" in out:
        out["values"] = list(out["values"])[:1000]
    return out


def _join(frame: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
    """The input's columns, then the prediction columns (an input column with a prediction
    column's name is kept as ``<name>__input``)."""
    import pandas as pd

    clash = [c for c in frame.columns if c in set(out.columns)]
    if clash:
        frame = frame.rename(columns={c: f"{c}__input" for c in clash})
    out.index = frame.index
    return pd.concat([frame, out], axis=1)


# =========================================================================== files


def write_table_file(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as CSV or Parquet (by the suffix) next to ``path``, then rename it into
    place, so a reader never sees half a file and a failure leaves none."""
    target = Path(path).expanduser()
    suffix = target.suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise ModelyardError(f"Cannot write {target.name}: the output must end in .csv or .parquet.",
                             hint="Name the output file e.g. predictions.csv.")
    from modelyard.core.common.outputs import write_replacing

    def write(tmp: Path) -> None:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S.%f")
        else:
            frame.to_parquet(tmp, index=False)

    write_replacing(target, write)
    return target


def describe_result(result: Mapping[str, Any]) -> str:
    """One line for people: what was scored with what, and where the predictions are."""
    return (f"Scored {result['n_rows']:,} rows of {result['input']['ref']} with {result['model']['ref']}: "
            f"predictions in {result['output']['ref']}.")
