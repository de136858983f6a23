"""The registry's plain records, names and references, shared by its modules.

:class:`ModelInfo` and :class:`ModelVersionInfo` (what the CLI, the GUI and the other rooms get
back), the name and alias rules, ``NAME@vN`` / ``NAME@ALIAS`` references (:func:`parse_ref`,
:func:`_resolve`) and :func:`_audit`, the one way registry changes are written to the audit log.
:mod:`modelyard.core.registry.versions` re-exports all of it (the registry's public face).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelyard.core.common.errors import ModelyardError, NotFoundError
from modelyard.core.common.names import check_name as check_name_chars
from modelyard.core.store import lookup, records
from modelyard.core.store import models as m

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
    model_revision: int = 0  # the model's revision this was read at (an edit made from it passes it on)

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
    revision: int = 0  # bumped by every edit of aliases, stages or gates (an edit from an older one is stale)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = _iso(self.created_at)
        d["updated_at"] = _iso(self.updated_at)
        return d

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
        card=mv.card, description=mv.description, created_at=mv.created_at, created_by=mv.created_by,
        model_revision=model.revision or 0)


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
                     aliases=aliases, stages=stages, revision=model.revision or 0)
