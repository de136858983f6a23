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

The modules: :mod:`.refs` (the plain records, names and references, the audit helper),
:mod:`.gates` (validating and judging the gates), :mod:`.edits` (aliases, stages and gates: the
edits of a model's registry state) and this one (registering and reading); every name is
importable from here.

:func:`load_model` loads through :mod:`modelyard.core.registry.modelfiles`: the file is refused unless its
bytes hash to the recorded sha256, and a version with a skops file is loaded from that.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.procs import current_user
from modelyard.core.registry.edits import remove_alias, set_alias, set_gates, set_stage
from modelyard.core.registry.gates import (  # noqa: F401 - the registry's names, as before the split
    GateReport,
    _check,
    _enforce,
    _judge,
    _split_key,
    _split_key_of,
    _validate_gates,
    check_gates,
)
from modelyard.core.registry.refs import (  # noqa: F401 - the registry's names, as before the split
    ALIAS_MAX,
    CHAMPION,
    ENTITY,
    EXAMPLE_PATH,
    MODEL_PATH,
    NAME_MAX,
    SIGNATURE_PATH,
    STAGES,
    ModelInfo,
    ModelVersionInfo,
    _audit,
    _model_info,
    _need_comment,
    _resolve,
    _test_metrics,
    _version_info,
    check_alias,
    check_name,
    model_of,
    parse_ref,
)
from modelyard.core.store import Store, lookup, records
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
