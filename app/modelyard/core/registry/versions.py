"""The model registry: named models, their numbered versions, aliases, stages and promotion gates.

::

    from modelyard.core.registry import versions as registry

    v = registry.register(store, run_id, "churn")                 # churn@v1, churn@v2, ...
    registry.set_gates(store, "churn", {"min_metrics": {"accuracy": 0.9},
                                        "beat_champion": {"metric": "f1", "higher_is_better": True}},
                       comment="team policy")
    registry.set_alias(store, "churn@v2", "champion", comment="better f1")   # GateFailed if blocked
    registry.set_stage(store, "churn@v2", "Production", comment="go live")
    registry.timeline(store, "churn")                              # the audit log, newest first

References: ``NAME`` (the latest version), ``NAME@vN`` (or ``NAME@N``), ``NAME@latest`` and
``NAME@ALIAS``. A version copies its run's test metrics (the latest value of each metric that
is not a validation, cross-validation, series or slice metric) and signature, and keeps links to
its run, dataset version, split and training spec (``card``). A :class:`~modelyard.core.store.models.LineageEdge`
``run -> model_version`` (relation ``registered_as``) is recorded.

Every write is one transaction with its audit events (entity ``registered_model``, the model's
id; ``details.version`` names the version). Actions: ``create_model``, ``register``,
``set_alias``, ``remove_alias``, ``set_stage``, ``set_gates`` and ``gate_override`` (a promotion
forced past failing gates, with the reasons in ``details.reasons``).

Gates (per model, ``RegisteredModel.gates``) apply when a version is made ``champion`` or moved
to ``Production``: ``min_metrics`` (each recorded test metric at least its minimum) and
``beat_champion`` (the version's test metric strictly better than the current champion's; the
two must have been evaluated on the same test split: the same stored split, or, for runs without
one, the same ``split`` entry of their training spec; or, for a challenger registered by a
retraining, the same held-out recent rows on which the retraining evaluated it and that champion,
read from its ``retrain`` audit event). Gates fail closed: a metric that is missing, NaN,
infinite or not a number (a bundle's manifest can carry anything; a retraining records a NaN
metric as null) never passes, and the reason says which value it was.

:func:`load_model` loads through :mod:`modelyard.core.registry.modelfiles`: the file is refused unless its
bytes hash to the recorded sha256, and a version with a skops file is loaded from that.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelyard.core.common.errors import GateFailed, ModelyardError, NotFoundError
from modelyard.core.common.names import check_name as check_name_chars
from modelyard.core.common.procs import current_user
from modelyard.core.store import Store, lookup, records, team
from modelyard.core.store import models as m
from modelyard.core.store.server import xact_lock

__all__ = [
    "CHAMPION",
    "ENTITY",
    "STAGES",
    "GateReport",
    "ModelInfo",
    "ModelVersionInfo",
    "check_gates",
    "get_model",
    "get_version",
    "list_models",
    "list_versions",
    "load_model",
    "parse_ref",
    "register",
    "registrable_runs",
    "remove_alias",
    "set_alias",
    "set_gates",
    "set_stage",
    "timeline",
]

STAGES = m.STAGES
CHAMPION = "champion"
ENTITY = "registered_model"
NAME_MAX = 200
ALIAS_MAX = 100
MODEL_PATH = "model/model.joblib"
SIGNATURE_PATH = "model/signature.json"
EXAMPLE_PATH = "model/input_example.json"
# latest metrics that are not test metrics (see modelyard.core.experiments.training.train)
_NOT_TEST_PREFIXES = ("val_", "cv_", "staged_", "learning_curve_", "slice_gap_")
_NOT_TEST_KEYS = frozenset({"train_score", "validation_score", "fit_time_s", "best_score", "score"})
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_VERSION = re.compile(r"^v?(\d+)$", re.IGNORECASE)


# =========================================================================== plain records


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class ModelVersionInfo:
    id: int
    model_id: int
    name: str
    version: int
    run_id: str | None
    dataset_version_id: int | None
    split_id: int | None
    stage: str
    aliases: list[str]
    model_sha256: str | None
    source: str
    signature: dict[str, Any] | None
    metrics: dict[str, Any]
    card: dict[str, Any] | None
    description: str | None
    created_at: dt.datetime
    created_by: str | None

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["ref"] = self.ref
        d["created_at"] = _iso(self.created_at)
        return d


@dataclass(frozen=True)
class ModelInfo:
    id: int
    name: str
    description: str | None
    gates: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime
    latest_version: int | None
    n_versions: int
    aliases: dict[str, int]  # alias -> version number
    stages: dict[str, list[int]]  # stage (other than "None") -> version numbers

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = _iso(self.created_at)
        d["updated_at"] = _iso(self.updated_at)
        return d


@dataclass(frozen=True)
class GateReport:
    ref: str
    passed: bool
    reasons: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # what was checked, passed or not
    is_champion: bool = False  # the version is the champion (beating the champion applies to the others)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# =========================================================================== helpers


def check_name(name: str) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name:
        raise ModelyardError("A registered model needs a name.", hint="Give one with --name.")
    if "@" in name:
        raise ModelyardError(f"Model names cannot contain '@' (got '{name}'): it separates the name from the "
                             "version or alias, as in churn@v2 or churn@champion.", hint="Choose another name.")
    if len(name) > NAME_MAX:
        raise ModelyardError(f"The model name is too long ({len(name)} characters, at most {NAME_MAX}).",
                             hint="Choose a shorter name.")
    return check_name_chars(name, "The model name")


def check_alias(alias: str) -> str:
    alias = (alias or "").strip() if isinstance(alias, str) else ""
    if not alias or len(alias) > ALIAS_MAX or not _ALIAS.match(alias) or _VERSION.match(alias) \
            or alias.lower() == "latest":
        raise ModelyardError(
            f"{alias!r} cannot be an alias.",
            hint=f"Use 1 to {ALIAS_MAX} letters, digits, '_', '.' or '-', starting with a letter "
                 "(not 'latest' or a version like v3), e.g. champion or challenger.")
    return alias


def _need_comment(comment: str | None, what: str) -> str:
    text = (comment or "").strip() if isinstance(comment, str) else ""
    if not text:
        raise ModelyardError(f"{what} needs a short comment for the audit log.",
                             hint="Pass --comment \"why\" (e.g. --comment \"better f1 on the March data\").")
    return text


def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """``"churn@v3"`` -> ("churn", 3, None); ``"churn@champion"`` -> ("churn", None, "champion");
    ``"churn"`` and ``"churn@latest"`` -> ("churn", None, None)."""
    text = (ref or "").strip() if isinstance(ref, str) else ""
    name, sep, rest = text.partition("@")
    name = check_name(name)
    rest = rest.strip()
    if not sep or not rest or rest.lower() == "latest":
        return name, None, None
    match = _VERSION.match(rest)
    if match:
        return name, int(match.group(1)), None
    return name, None, rest


def model_of(s: Session, ref: str) -> m.RegisteredModel:
    """The registered model ``ref`` names (``churn``, ``churn@v3``: the version part is ignored);
    NotFoundError when there is none."""
    name, _, _ = parse_ref(ref)
    return lookup.model_by_name(s, name)


def _resolve(s: Session, ref: str) -> tuple[m.RegisteredModel, m.ModelVersion]:
    name, number, alias = parse_ref(ref)
    model = lookup.model_by_name(s, name)
    if alias is not None:
        row = s.get(m.ModelAlias, (model.id, alias))
        if row is None:
            raise NotFoundError(f"Model {name!r} has no alias {alias!r}.",
                                hint=f"'modelyard model show {name}' lists its aliases.")
        mv = s.get(m.ModelVersion, row.version_id)
    elif number is not None:
        mv = s.scalars(select(m.ModelVersion).where(m.ModelVersion.model_id == model.id,
                                                    m.ModelVersion.version == number)).first()
        if mv is None:
            raise NotFoundError(f"Model {name!r} has no version {number}.",
                                hint=f"'modelyard model show {name}' shows its latest version.")
    else:
        mv = s.scalars(select(m.ModelVersion).where(m.ModelVersion.model_id == model.id)
                       .order_by(m.ModelVersion.version.desc()).limit(1)).first()
        if mv is None:
            raise NotFoundError(f"Model {name!r} has no versions yet.",
                                hint=f"Register one with 'modelyard model register RUN_ID --name {name}'.")
    assert mv is not None
    return model, mv


def _version_info(s: Session, model: m.RegisteredModel, mv: m.ModelVersion) -> ModelVersionInfo:
    aliases = sorted(s.scalars(select(m.ModelAlias.alias).where(m.ModelAlias.version_id == mv.id)))
    run_uuid = s.scalar(select(m.Run.uuid).where(m.Run.id == mv.run_id)) if mv.run_id is not None else None
    card = mv.card or {}
    return ModelVersionInfo(
        id=mv.id, model_id=model.id, name=model.name, version=mv.version, run_id=run_uuid or card.get("run_id"),
        dataset_version_id=mv.dataset_version_id, split_id=card.get("split_id"), stage=mv.stage, aliases=aliases,
        model_sha256=mv.model_sha256, source=mv.source, signature=mv.signature, metrics=dict(mv.metrics or {}),
        card=mv.card, description=mv.description, created_at=mv.created_at, created_by=mv.created_by)


def _audit(s: Session, model: m.RegisteredModel, action: str, *, version: int | None = None,
           from_value: str | None = None, to_value: str | None = None, comment: str | None = None,
           details: dict[str, Any] | None = None) -> None:
    info = dict(details or {})
    if version is not None:
        info["version"] = version
    records.audit(s, ENTITY, model.id, action, from_value=from_value, to_value=to_value, comment=comment,
                  details=info or None)
    model.updated_at = m.utcnow()


def _test_metrics(s: Session, run_pk: int) -> dict[str, float]:
    rows = s.execute(select(m.LatestMetric.key, m.LatestMetric.value).where(m.LatestMetric.run_id == run_pk)).all()
    return {k: float(v) for k, v in sorted(rows)
            if not k.startswith(_NOT_TEST_PREFIXES) and k not in _NOT_TEST_KEYS and v is not None
            and not (isinstance(v, float) and math.isnan(v))}


# =========================================================================== registering


def register(store: Store, run_id: str, name: str, *, comment: str | None = None,
             description: str | None = None) -> ModelVersionInfo:
    """Register the model a run logged (``model/model.joblib``) as the next version of ``name``.

    The model is created on first use. Refuses a run without a logged model.
    """
    from modelyard.core.experiments.tracking.active import _resolve_run

    name = check_name(name)
    comment = comment.strip() or None if isinstance(comment, str) else None
    with store.write() as s:
        run = _resolve_run(s, run_id)
        arts = dict(s.execute(select(m.RunArtifact.path, m.RunArtifact.sha256)
                              .where(m.RunArtifact.run_id == run.id)).all())
        model_sha = arts.get(MODEL_PATH)
        if model_sha is None:
            raise ModelyardError(
                f"Run {run.uuid} has no logged model ({MODEL_PATH}), so there is nothing to register.",
                hint="Log one with run.log_model(model) in the run, or train with 'modelyard train'.")
        if run.deleted_at is not None:
            raise ModelyardError(f"Run {run.uuid} is in the trash; restore it before registering its model.",
                                 hint=f"'modelyard run restore {run.uuid[:12]}' brings it back.")
        signature = store.artifacts.read_json(arts[SIGNATURE_PATH], missing_ok=True) if SIGNATURE_PATH in arts else None
        if signature is None and EXAMPLE_PATH in arts:
            example = store.artifacts.read_json(arts[EXAMPLE_PATH], missing_ok=True)
            signature = example.get("signature") if isinstance(example, dict) else None
        xact_lock(s, "registered_model", name)  # PostgreSQL: one new model, one next version number
        model = lookup.find_model(s, name)
        if model is None:
            model = m.RegisteredModel(name=name, description=description)
            s.add(model)
            s.flush()
            _audit(s, model, "create_model", to_value=name, comment=comment)
        number = (s.scalar(select(func.max(m.ModelVersion.version))
                           .where(m.ModelVersion.model_id == model.id)) or 0) + 1
        experiment = s.scalar(select(m.Experiment.name).where(m.Experiment.id == run.experiment_id))
        card = {"run_id": run.uuid, "experiment": experiment, "dataset_version_id": run.dataset_version_id,
                "split_id": run.split_id, "spec": run.spec}
        mv = m.ModelVersion(model_id=model.id, version=number, run_id=run.id,
                            dataset_version_id=run.dataset_version_id, stage="None", model_sha256=model_sha,
                            source="run", signature=signature, metrics=_test_metrics(s, run.id), card=card,
                            description=description, created_by=current_user())
        s.add(mv)
        s.flush()
        records.link(s, "run", run.uuid, "model_version", mv.id, "registered_as", {"model": name, "version": number})
        if run.dataset_version_id is not None:
            records.link(s, "dataset_version", run.dataset_version_id, "model_version", mv.id, "trained",
                         {"run_id": run.uuid, "split_id": run.split_id})
        _audit(s, model, "register", version=number, from_value=f"run {run.uuid}", to_value=f"{name}@v{number}",
               comment=comment, details={"run_id": run.uuid})
        return _version_info(s, model, mv)


def registrable_runs(store: Store, *, limit: int = 500) -> list[dict[str, Any]]:
    """Runs that logged a model and are not in the trash, newest first: what can be registered.

    ``{"run_id", "name", "experiment", "status", "start_time", "model", "registered_as"}`` where
    ``model`` is the run's ``model`` param (if any) and ``registered_as`` the versions it became.
    """
    with store.session() as s:
        rows = s.execute(
            select(m.Run.id, m.Run.uuid, m.Run.name, m.Experiment.name, m.Run.status, m.Run.start_time)
            .join(m.Experiment, m.Experiment.id == m.Run.experiment_id)
            .join(m.RunArtifact, (m.RunArtifact.run_id == m.Run.id) & (m.RunArtifact.path == MODEL_PATH))
            .where(m.Run.deleted_at.is_(None))
            .order_by(m.Run.start_time.desc(), m.Run.id.desc()).limit(limit)).all()
        pks = [r[0] for r in rows]
        params = dict(s.execute(select(m.Param.run_id, m.Param.value)
                                .where(m.Param.run_id.in_(pks), m.Param.key == "model")).all()) if pks else {}
        versions: dict[int, list[str]] = {}
        if pks:
            for run_pk, name, number in s.execute(
                    select(m.ModelVersion.run_id, m.RegisteredModel.name, m.ModelVersion.version)
                    .join(m.RegisteredModel, m.RegisteredModel.id == m.ModelVersion.model_id)
                    .where(m.ModelVersion.run_id.in_(pks)).order_by(m.ModelVersion.id)).all():
                versions.setdefault(run_pk, []).append(f"{name}@v{number}")
        return [{"run_id": uuid, "name": name, "experiment": exp, "status": status, "start_time": start,
                 "model": params.get(pk), "registered_as": versions.get(pk, [])}
                for pk, uuid, name, exp, status, start in rows]


# =========================================================================== reading


def get_version(store: Store, ref: str) -> ModelVersionInfo:
    """``NAME@vN``, ``NAME@ALIAS``, ``NAME@latest`` or ``NAME`` (the latest version)."""
    with store.session() as s:
        model, mv = _resolve(s, ref)
        return _version_info(s, model, mv)


def list_versions(store: Store, name: str) -> list[ModelVersionInfo]:
    """Every version of ``name``, oldest first."""
    with store.session() as s:
        model = lookup.model_by_name(s, check_name(name))
        rows = s.scalars(select(m.ModelVersion).where(m.ModelVersion.model_id == model.id)
                         .order_by(m.ModelVersion.version)).all()
        return [_version_info(s, model, mv) for mv in rows]


def _model_info(s: Session, model: m.RegisteredModel) -> ModelInfo:
    versions = s.execute(select(m.ModelVersion.id, m.ModelVersion.version, m.ModelVersion.stage)
                         .where(m.ModelVersion.model_id == model.id).order_by(m.ModelVersion.version)).all()
    number = {vid: n for vid, n, _ in versions}
    aliases = {a: number[vid] for a, vid in s.execute(
        select(m.ModelAlias.alias, m.ModelAlias.version_id).where(m.ModelAlias.model_id == model.id)
        .order_by(m.ModelAlias.alias)).all() if vid in number}
    stages: dict[str, list[int]] = {}
    for _, n, stage in versions:
        if stage != "None":
            stages.setdefault(stage, []).append(n)
    return ModelInfo(id=model.id, name=model.name, description=model.description, gates=model.gates,
                     created_at=model.created_at, updated_at=model.updated_at,
                     latest_version=versions[-1][1] if versions else None, n_versions=len(versions),
                     aliases=aliases, stages=stages)


def list_models(store: Store) -> list[ModelInfo]:
    """Every registered model, by name, with its latest version, aliases and stages."""
    with store.session() as s:
        return [_model_info(s, model) for model in
                s.scalars(select(m.RegisteredModel).order_by(m.RegisteredModel.name)).all()]


def get_model(store: Store, name: str) -> ModelInfo:
    with store.session() as s:
        return _model_info(s, lookup.model_by_name(s, check_name(name)))


def timeline(store: Store, name: str) -> list[dict[str, Any]]:
    """The model's audit events, newest first: ``{"id", "at", "actor", "action", "version",
    "from_value", "to_value", "comment", "details"}``."""
    with store.session() as s:
        model = lookup.model_by_name(s, check_name(name))
        rows = s.scalars(select(m.AuditEvent).where(m.AuditEvent.entity_type == ENTITY,
                                                    m.AuditEvent.entity_id == str(model.id))
                         .order_by(m.AuditEvent.at.desc(), m.AuditEvent.id.desc())).all()
        return [{"id": e.id, "at": e.at, "actor": e.actor, "action": e.action,
                 "version": (e.details or {}).get("version"), "from_value": e.from_value,
                 "to_value": e.to_value, "comment": e.comment, "details": e.details} for e in rows]


def load_model(store: Store, ref: str) -> Any:
    """The fitted estimator of a version: from its skops file when it has one, else unpickled from
    its joblib file (load only models you trust); either file is refused unless its bytes hash to
    the recorded sha256 (:mod:`modelyard.core.registry.modelfiles`)."""
    from modelyard.core.registry.modelfiles import load_version_model

    info = get_version(store, ref)
    return load_version_model(store, ref=info.ref, model_sha256=info.model_sha256, card=info.card)


# =========================================================================== gates


def _validate_gates(gates: Any) -> dict[str, Any]:
    if gates is None:
        return {}
    if not isinstance(gates, dict):
        raise ModelyardError("Gates must be a mapping like {\"min_metrics\": {\"accuracy\": 0.9}}.")
    unknown = set(gates) - {"min_metrics", "beat_champion"}
    if unknown:
        raise ModelyardError(f"Unknown {'gate' if len(unknown) == 1 else 'gates'}: {', '.join(sorted(unknown))}.",
                             hint="The gates are min_metrics and beat_champion.")
    out: dict[str, Any] = {}
    mins = gates.get("min_metrics")
    if mins:
        if not isinstance(mins, dict):
            raise ModelyardError("min_metrics must map metric names to minimum values.")
        clean: dict[str, float] = {}
        for key, value in mins.items():
            if not isinstance(key, str) or not key.strip():
                raise ModelyardError(f"{key!r} is not a metric name.")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ModelyardError(f"The minimum for {key} must be a number, not {value!r}.") from None
            if math.isnan(number):
                raise ModelyardError(f"The minimum for {key} must be a number, not NaN.")
            clean[key.strip()] = number
        out["min_metrics"] = clean
    beat = gates.get("beat_champion")
    if beat:
        if isinstance(beat, str):
            beat = {"metric": beat}
        if not isinstance(beat, dict) or not isinstance(beat.get("metric"), str) or not beat["metric"].strip():
            raise ModelyardError("beat_champion needs a metric, as in {\"metric\": \"f1\", \"higher_is_better\": true}.")
        out["beat_champion"] = {"metric": beat["metric"].strip(),
                                "higher_is_better": bool(beat.get("higher_is_better", True))}
    return out


def _split_key(s: Session, mv: m.ModelVersion) -> tuple[Any, str] | None:
    """What identifies the test split a version was evaluated on, and how to name it."""
    card = mv.card or {}
    split_id = card.get("split_id")
    spec = card.get("spec")
    if mv.run_id is not None:
        row = s.execute(select(m.Run.split_id, m.Run.spec).where(m.Run.id == mv.run_id)).first()
        if row is not None:
            split_id, spec = row.split_id, row.spec
    return _split_key_of(s, split_id, spec)


def _split_key_of(s: Session, split_id: Any, spec: Any) -> tuple[Any, str] | None:
    """The test split of a run (its stored split, or its training spec's ``split``) as :func:`_split_key`."""
    if split_id is not None:
        return ("split", split_id), _split_label(s, split_id)
    if isinstance(spec, dict) and spec.get("split") is not None:
        text = json.dumps(spec["split"], sort_keys=True, default=str)
        return ("spec", text), f"the split {text} of its training spec"
    return None


def _split_label(s: Session, split_id: Any) -> str:
    """A split as the user knows it: ``the split "stratified-test0.2-seed0" of iris@v1``."""
    row = s.execute(select(m.DatasetSplit.name, m.Dataset.name, m.DatasetVersion.version)
                    .join(m.DatasetVersion, m.DatasetVersion.id == m.DatasetSplit.dataset_version_id)
                    .join(m.Dataset, m.Dataset.id == m.DatasetVersion.dataset_id)
                    .where(m.DatasetSplit.id == split_id)).first()
    if row is None:
        return "a test split that is no longer stored"
    return f"the split \"{row[0]}\" of {row[1]}@v{row[2]}"


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _not_comparable(value: Any) -> str | None:
    """Why a recorded metric cannot be compared with a number (a gate then fails), or None when it can."""
    if value is None:
        return "has no recorded value"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"is {value!r}, not a number"
    if math.isnan(value):
        return "is NaN (not a number)"
    if math.isinf(value):
        return f"is {value} (not a finite number)"
    return None


def _beat_reason(key: str, ref: str, cref: str, value: Any, best: Any, higher: bool, where: str) -> str | None:
    """The reason ``ref`` does not beat the champion ``cref`` on ``key`` (evaluated on ``where``), or None."""
    for who, v in ((ref, value), (f"the champion {cref}", best)):
        problem = _not_comparable(v)
        if problem is not None:
            return (f"{key} of {who} {problem} on {where}, so {ref} cannot be shown to beat the champion {cref} "
                    "(a gate fails on a value it cannot compare).")
    if not (value > best if higher else value < best):
        return (f"{key} {_fmt(value)} of {ref} does not beat the champion {cref} "
                f"({_fmt(best)}; {'higher' if higher else 'lower'} is better) on {where}.")
    return None


def _check(s: Session, model: m.RegisteredModel, mv: m.ModelVersion) -> GateReport:
    return _judge(s, model, f"{model.name}@v{mv.version}", mv.metrics or {}, _split_key(s, mv), mv.id,
                  model.gates or {})


def _judge(s: Session, model: m.RegisteredModel | None, ref: str, metrics: dict[str, Any], mine: tuple[Any, str] | None,
           mv_id: int | None, gates: dict[str, Any]) -> GateReport:
    """The gates ``gates`` of ``model`` for a candidate called ``ref`` with these test ``metrics``,
    evaluated on the split ``mine`` (:func:`_split_key`); ``mv_id`` is its version (None for a run
    not registered yet); ``model`` None: the model is not registered yet (there is no champion)."""
    reasons: list[str] = []
    checked: list[str] = []
    for key, minimum in (gates.get("min_metrics") or {}).items():
        checked.append(f"min {key} >= {_fmt(minimum)}")
        value = metrics.get(key)
        problem = _not_comparable(value)
        if value is None:
            reasons.append(f"{ref} has no recorded test metric {key!r} (the gate asks for {key} >= {_fmt(minimum)}).")
        elif problem is not None:
            reasons.append(f"{key} of {ref} {problem}, so it cannot pass the minimum {_fmt(minimum)} (a gate fails "
                           "on a value it cannot compare).")
        elif value < minimum:
            reasons.append(f"{key} {_fmt(value)} of {ref} is below the minimum {_fmt(minimum)}.")
    beat = gates.get("beat_champion")
    if beat:
        key, higher = beat["metric"], beat.get("higher_is_better", True)
        checked.append(f"beat the champion on {key} ({'higher' if higher else 'lower'} is better)")
        row = s.get(m.ModelAlias, (model.id, CHAMPION)) if model is not None else None
        champ = s.get(m.ModelVersion, row.version_id) if row is not None else None
        if champ is None:
            pass  # nothing to beat yet
        elif champ.id == mv_id:  # nothing to beat: it is the champion
            checked[-1] = f"beating the champion on {key} applies to the other versions"
        else:
            assert model is not None
            cref = f"{model.name}@v{champ.version}"
            theirs = _split_key(s, champ)
            value, best = metrics.get(key), (champ.metrics or {}).get(key)
            h2h = None if mine is not None and mine == theirs else _head_to_head(s, model, ref, cref, key)
            reason = None
            if h2h is not None:  # a retraining evaluated both on the same recent rows
                reason = _beat_reason(key, ref, cref, *h2h[:2], higher, h2h[2])
            elif mine is None or theirs is None or mine[0] != theirs[0]:
                reasons.append(
                    f"{ref} cannot be compared with the champion {cref}: they were not evaluated on the same test "
                    f"split ({ref}: {mine[1] if mine else 'no recorded split'}; "
                    f"{cref}: {theirs[1] if theirs else 'no recorded split'}).")
            elif value is None or best is None:
                missing = ref if value is None else cref
                reasons.append(f"{missing} has no recorded test metric {key!r} to compare with.")
            else:
                reason = _beat_reason(key, ref, cref, value, best, higher, mine[1])
            if reason is not None:
                reasons.append(reason)
    is_champion = s.get(m.ModelAlias, (model.id, CHAMPION)) if model is not None else None
    return GateReport(ref=ref, passed=not reasons, reasons=reasons, checked=checked,
                      is_champion=is_champion is not None and is_champion.version_id == mv_id)


def _head_to_head(s: Session, model: m.RegisteredModel, ref: str, cref: str, key: str
                  ) -> tuple[Any, Any, str] | None:
    """``(value of ref, value of cref, where)`` when a retraining registered ``ref`` after evaluating
    it and ``cref`` (the champion it was compared with) on the same held-out recent rows. The values
    are as recorded: None where the metric came out NaN there (the gate then fails, saying so)."""
    events = s.scalars(select(m.AuditEvent).where(
        m.AuditEvent.entity_type == ENTITY, m.AuditEvent.entity_id == str(model.id),
        m.AuditEvent.action == "retrain", m.AuditEvent.to_value == ref).order_by(m.AuditEvent.id.desc())).all()
    for event in events:
        d = event.details or {}
        new_metrics, old_metrics = d.get("metrics_new") or {}, d.get("metrics_champion") or {}
        if d.get("champion") != cref or not isinstance(new_metrics, dict) or not isinstance(old_metrics, dict) \
                or key not in new_metrics or key not in old_metrics:
            continue
        new, old = new_metrics[key], old_metrics[key]
        rows = (d.get("eval_rows") or {}).get("batch_ref") or (d.get("eval_rows") or {}).get("ref") or "the batch"
        n = d.get("n_eval_rows")
        where = (f"the same {n:,} recent rows of {rows}" if isinstance(n, int) else f"the same recent rows of {rows}")
        return new, old, where + f" (retraining after drift check #{d.get('check_id')})"
    return None


def check_gates(store: Store, ref: str) -> GateReport:
    """Whether ``ref`` passes its model's promotion gates, and every reason it does not."""
    with store.session() as s:
        model, mv = _resolve(s, ref)
        return _check(s, model, mv)


def _enforce(s: Session, model: m.RegisteredModel, mv: m.ModelVersion, what: str, *, force: bool,
             comment: str) -> None:
    report = _check(s, model, mv)
    if report.passed:
        return
    if not force:
        raise GateFailed(
            f"The gates of {model.name!r} block {what}: " + " ".join(report.reasons),
            hint="Fix the cause, or override with --force and a --comment saying why (the override is audited).")
    _audit(s, model, "gate_override", version=mv.version, to_value=what, comment=comment,
           details={"reasons": report.reasons})


def set_gates(store: Store, name: str, gates: dict[str, Any] | None, *, comment: str | None) -> ModelInfo:
    """Replace the model's gates (``{}`` or None removes them)."""
    clean = _validate_gates(gates)
    comment = _need_comment(comment, "Changing the gates")
    team.require(store, "approve", "Changing a model's gates")
    with store.write() as s:
        model = lookup.model_by_name(s, check_name(name))
        old = model.gates or {}
        model.gates = clean or None
        _audit(s, model, "set_gates", from_value=json.dumps(old, sort_keys=True) if old else None,
               to_value=json.dumps(clean, sort_keys=True) if clean else None, comment=comment)
        s.flush()
        return _model_info(s, model)


# =========================================================================== aliases and stages


def set_alias(store: Store, ref: str, alias: str, *, comment: str | None, force: bool = False) -> ModelVersionInfo:
    """Point ``alias`` at the version ``ref`` (moving it off the version it was on).

    Making a version ``champion`` passes the model's gates first (GateFailed, exit code 3,
    naming every reason); ``force`` overrides them and records a ``gate_override`` event.
    """
    alias = check_alias(alias)
    if alias == CHAMPION:
        team.require(store, "approve", "Moving 'champion'")
    if force and not (isinstance(comment, str) and comment.strip()):
        raise ModelyardError("--force needs a --comment saying why the gates are overridden.",
                             hint="Pass --comment \"why\" with --force; the override is audited.")
    comment = _need_comment(comment, f"Setting the alias {alias!r}")
    with store.write() as s:
        model, mv = _resolve(s, ref)
        row = s.get(m.ModelAlias, (model.id, alias))
        if row is not None and row.version_id == mv.id:
            return _version_info(s, model, mv)
        if alias == CHAMPION:
            _enforce(s, model, mv, f"{model.name}@v{mv.version} as {alias}", force=force, comment=comment)
        old_ref = None
        if row is None:
            s.add(m.ModelAlias(model_id=model.id, alias=alias, version_id=mv.id))
        else:
            old_number = s.scalar(select(m.ModelVersion.version).where(m.ModelVersion.id == row.version_id))
            old_ref = f"{model.name}@v{old_number}"
            row.version_id, row.updated_at = mv.id, m.utcnow()
        _audit(s, model, "set_alias", version=mv.version, from_value=old_ref, to_value=f"{model.name}@v{mv.version}",
               comment=comment, details={"alias": alias})
        s.flush()
        return _version_info(s, model, mv)


def remove_alias(store: Store, name: str, alias: str, *, comment: str | None) -> ModelInfo:
    """Take ``alias`` off whichever version of ``name`` has it."""
    name, _, _ = parse_ref(name)
    comment = _need_comment(comment, f"Removing the alias {alias!r}")
    if (alias or "").strip() == CHAMPION:
        team.require(store, "approve", "Moving 'champion'")
    with store.write() as s:
        model = lookup.model_by_name(s, name)
        row = s.get(m.ModelAlias, (model.id, (alias or "").strip()))
        if row is None:
            raise NotFoundError(f"Model {name!r} has no alias {alias!r}.")
        number = s.scalar(select(m.ModelVersion.version).where(m.ModelVersion.id == row.version_id))
        s.delete(row)
        _audit(s, model, "remove_alias", version=number, from_value=f"{name}@v{number}", to_value=None,
               comment=comment, details={"alias": row.alias})
        s.flush()
        return _model_info(s, model)


def set_stage(store: Store, ref: str, stage: str, *, comment: str | None, force: bool = False) -> ModelVersionInfo:
    """Move a version to a lifecycle stage (None, Staging, Production, Archived).

    Moving to Production passes the model's gates first (as :func:`set_alias` for champion).
    """
    match = [st for st in STAGES if st.lower() == (stage or "").strip().lower()]
    if not match:
        raise ModelyardError(f"{stage!r} is not a stage.", hint=f"Choose one of {', '.join(STAGES)}.")
    stage = match[0]
    if force and not (isinstance(comment, str) and comment.strip()):
        raise ModelyardError("--force needs a --comment saying why the gates are overridden.",
                             hint="Pass --comment \"why\" with --force; the override is audited.")
    comment = _need_comment(comment, f"Moving a version to {stage}")
    with store.write() as s:
        model, mv = _resolve(s, ref)
        if mv.stage == stage:
            return _version_info(s, model, mv)
        if "Production" in (stage, mv.stage):
            team.require(store, "approve", f"Moving a version {'into' if stage == 'Production' else 'out of'} Production")
        if stage == "Production":
            _enforce(s, model, mv, f"{model.name}@v{mv.version} to Production", force=force, comment=comment)
        old = mv.stage
        mv.stage = stage
        _audit(s, model, "set_stage", version=mv.version, from_value=old, to_value=stage, comment=comment)
        s.flush()
        return _version_info(s, model, mv)
