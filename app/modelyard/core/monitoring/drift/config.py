"""The configuration of drift checks: defaults, validation, and each model's own settings.

A configuration is plain JSON; each check stores the whole configuration it was decided with,
so an old result reads exactly as it was decided. A model's settings
(``RegisteredModel.monitoring``) hold only what differs from the defaults, plus keys other
parts of Modelyard keep there (``watch_folder``)::

    {
      "numeric_test": "auto",        # auto | ks | wasserstein | psi | js
      "categorical_test": "auto",    # auto | chisquare | js | psi
      "small_sample": 1000,          # auto: p-value tests when either side has at most this many values
      "thresholds": {"p_value": 0.05, "min_effect": 0.1, "wasserstein": 0.1, "js": 0.1, "psi": 0.2},
      "p_adjust": "holm",            # holm | bh (Benjamini-Hochberg) | none, across the features
      "features": {"age": {"test": "psi", "threshold": 0.25}, "id": {"ignore": true}},
      "critical": ["age"],           # any of these drifting makes the dataset drift
      "rule": {"drift_share": 0.5},  # dataset drift when at least this share of the features drift
      "severity": {...},             # what other findings make the verdict (drift | warning | ignore)
      "missing_jump": 0.1,           # a column's missing share rising by this much is a schema problem
      "multivariate": {"enabled": true, "auc_threshold": 0.6, "sample": 10000, "folds": 3},
      "prediction": {"enabled": true, "sample": 20000},
      "performance": {"enabled": true, "max_relative_drop": 0.1, "metrics": []},
      "seed": 0
    }

``auto`` picks, per column: numbers with at most 5 distinct values are compared as categories;
with at most ``small_sample`` values on either side, Kolmogorov–Smirnov (numbers) or chi-square
(categories) decide, drift when the p-value adjusted across the features (``p_adjust``) is below
``p_value`` **and** the effect size (normed Wasserstein distance, resp. Jensen–Shannon distance)
is at least ``min_effect``; on larger samples the distance alone decides (normed Wasserstein
≥ ``wasserstein``, Jensen–Shannon ≥ ``js``), so a million rows do not flag a trivial shift.
A test named explicitly (per model or per feature) is used as named: ``ks`` and ``chisquare``
always with the minimal effect, ``wasserstein``, ``js`` and ``psi`` on their threshold
(per feature, ``threshold`` replaces that test's threshold, ``min_effect`` the minimal effect).

Severities (the verdict is the worst finding: ``drift`` > ``warning`` > ``ok``):
``features`` (some features drift, below the rule), ``missing_column``, ``new_column``,
``type_change``, ``unseen_categories``, ``missing_values``, ``target`` (the target's
distribution moved), ``prediction`` (the model's outputs moved), ``performance`` (a metric
fell by more than ``max_relative_drop`` of its recorded test value), ``multivariate`` (the
domain classifier's cross-validated ROC AUC reached ``auc_threshold``).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from typing import Any

from modelyard.core.common.errors import ModelyardError
from modelyard.core.store import Store, lookup, records
from modelyard.core.store import models as m

__all__ = [
    "CATEGORICAL_TESTS",
    "CONFIG_VERSION",
    "NUMERIC_TESTS",
    "SEVERITIES",
    "default_config",
    "get_config",
    "merge_config",
    "parse_assignment",
    "set_config",
    "stored_config",
    "validate_config",
]

CONFIG_VERSION = 1
NUMERIC_TESTS = ("auto", "ks", "wasserstein", "psi", "js")
CATEGORICAL_TESTS = ("auto", "chisquare", "js", "psi")
ALL_TESTS = tuple(dict.fromkeys(NUMERIC_TESTS + CATEGORICAL_TESTS))
SEVERITIES = ("drift", "warning", "ignore")
P_ADJUST = ("holm", "bh", "none")
EXTERNAL_KEYS = ("watch_folder",)  # kept in RegisteredModel.monitoring by other parts (the GUI)

_DEFAULTS: dict[str, Any] = {
    "version": CONFIG_VERSION,
    "numeric_test": "auto",
    "categorical_test": "auto",
    "small_sample": 1000,
    "thresholds": {"p_value": 0.05, "min_effect": 0.1, "wasserstein": 0.1, "js": 0.1, "psi": 0.2},
    "p_adjust": "holm",
    "features": {},
    "critical": [],
    "rule": {"drift_share": 0.5},
    "severity": {
        "features": "warning",
        "missing_column": "drift",
        "new_column": "ignore",
        "type_change": "warning",
        "unseen_categories": "warning",
        "missing_values": "warning",
        "target": "warning",
        "prediction": "warning",
        "performance": "warning",
        "multivariate": "warning",
    },
    "missing_jump": 0.1,
    "multivariate": {"enabled": True, "auc_threshold": 0.6, "sample": 10_000, "folds": 3},
    "prediction": {"enabled": True, "sample": 20_000},
    "performance": {"enabled": True, "max_relative_drop": 0.1, "metrics": []},
    "seed": 0,
}


def default_config() -> dict[str, Any]:
    """A fresh copy of the default configuration."""
    return copy.deepcopy(_DEFAULTS)


# =========================================================================== validation


def _bad(what: str, hint: str | None = None) -> ModelyardError:
    return ModelyardError(f"Drift configuration: {what}", hint=hint)


def _number(value: Any, where: str, *, lo: float | None = None, hi: float | None = None,
            integer: bool = False) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise _bad(f"{where} must be a number, not {value!r}.") from None
    if not math.isfinite(value):
        raise _bad(f"{where} must be a finite number, not {value!r}.")
    if integer:
        if value != int(value):
            raise _bad(f"{where} must be a whole number, not {value!r}.")
        value = int(value)
    if lo is not None and value < lo or hi is not None and value > hi:
        rng = f"between {lo} and {hi}" if lo is not None and hi is not None else (
            f"at least {lo}" if lo is not None else f"at most {hi}")
        raise _bad(f"{where} must be {rng}, not {value!r}.")
    return value


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return value.strip().lower() in ("true", "yes", "on", "1")
    raise _bad(f"{where} must be true or false, not {value!r}.")


def _choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in choices:
        raise _bad(f"{where} must be one of {', '.join(choices)}, not {value!r}.")
    return text


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(f"{where} must be a mapping, not {type(value).__name__}.")
    return dict(value)


def _unknown(given: Mapping[str, Any], allowed: Mapping[str, Any] | tuple[str, ...], where: str) -> None:
    extra = sorted(set(given) - set(allowed))
    if extra:
        raise _bad(f"unknown key(s) {', '.join(map(repr, extra))} in {where}.",
                   hint=f"Known keys: {', '.join(sorted(allowed))}.")


def _feature(name: str, spec: Any) -> dict[str, Any]:
    where = f"features.{name}"
    spec = _mapping(spec, where)
    _unknown(spec, ("test", "threshold", "min_effect", "ignore", "critical"), where)
    out: dict[str, Any] = {}
    if spec.get("test") is not None:
        out["test"] = _choice(spec["test"], f"{where}.test", ALL_TESTS)
    if spec.get("threshold") is not None:
        out["threshold"] = float(_number(spec["threshold"], f"{where}.threshold", lo=0))
    if spec.get("min_effect") is not None:
        out["min_effect"] = float(_number(spec["min_effect"], f"{where}.min_effect", lo=0))
    if spec.get("ignore") is not None:
        out["ignore"] = _bool(spec["ignore"], f"{where}.ignore")
    if spec.get("critical") is not None:
        out["critical"] = _bool(spec["critical"], f"{where}.critical")
    return out


def validate_config(config: Any, *, partial: bool = True) -> dict[str, Any]:
    """A checked, normalised copy of ``config`` (ModelyardError naming the bad field otherwise).

    ``partial``: only the keys given are checked and returned (a model's stored overrides);
    otherwise the result is complete (defaults filled in).
    """
    if config is None:
        config = {}
    cfg = _mapping(config, "the configuration")
    _unknown(cfg, (*_DEFAULTS, *EXTERNAL_KEYS), "the configuration")
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        if key in EXTERNAL_KEYS:
            out[key] = value
        elif key == "version":
            if value != CONFIG_VERSION:
                raise _bad(f"version {value!r} is not one this Modelyard reads ({CONFIG_VERSION}).")
            out[key] = value
        elif key == "numeric_test":
            out[key] = _choice(value, key, NUMERIC_TESTS)
        elif key == "categorical_test":
            out[key] = _choice(value, key, CATEGORICAL_TESTS)
        elif key == "small_sample":
            out[key] = _number(value, key, lo=0, integer=True)
        elif key == "thresholds":
            th = _mapping(value, key)
            _unknown(th, _DEFAULTS["thresholds"], key)
            out[key] = {k: float(_number(v, f"thresholds.{k}", lo=0, hi=1 if k == "p_value" else None))
                        for k, v in th.items()}
        elif key == "p_adjust":
            out[key] = _choice(value, key, P_ADJUST)
        elif key == "features":
            feats = _mapping(value, key)
            out[key] = {str(n): _feature(str(n), s) for n, s in feats.items()}
        elif key == "critical":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
                raise _bad("critical must be a list of column names.")
            out[key] = list(dict.fromkeys(v.strip() for v in value))
        elif key == "rule":
            rule = _mapping(value, key)
            _unknown(rule, _DEFAULTS["rule"], key)
            out[key] = {k: float(_number(v, f"rule.{k}", lo=0, hi=1)) for k, v in rule.items()}
        elif key == "severity":
            sev = _mapping(value, key)
            _unknown(sev, _DEFAULTS["severity"], key)
            out[key] = {k: _choice(v, f"severity.{k}", SEVERITIES) for k, v in sev.items()}
        elif key == "missing_jump":
            out[key] = float(_number(value, key, lo=0, hi=1))
        elif key in ("multivariate", "prediction", "performance"):
            sec = _mapping(value, key)
            _unknown(sec, _DEFAULTS[key], key)
            clean: dict[str, Any] = {}
            for k, v in sec.items():
                where = f"{key}.{k}"
                if k == "enabled":
                    clean[k] = _bool(v, where)
                elif k in ("sample", "folds"):
                    clean[k] = _number(v, where, lo=2 if k == "folds" else 100, integer=True)
                elif k == "auc_threshold":
                    clean[k] = float(_number(v, where, lo=0.5, hi=1))
                elif k == "max_relative_drop":
                    clean[k] = float(_number(v, where, lo=0))
                elif k == "metrics":
                    if isinstance(v, str):
                        v = [v]
                    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
                        raise _bad(f"{where} must be a list of metric names.")
                    clean[k] = list(v)
            out[key] = clean
        elif key == "seed":
            out[key] = _number(value, key, lo=0, integer=True)
    if not partial:
        return merge_config(default_config(), out)
    return out


def merge_config(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """``base`` with ``override`` laid over it (mappings merged key by key; ``features`` per feature)."""
    out = copy.deepcopy(dict(base))
    for key, value in (override or {}).items():
        if key == "features" and isinstance(value, Mapping):
            feats = dict(out.get("features") or {})
            for name, spec in value.items():
                feats[name] = {**feats.get(name, {}), **dict(spec)}
            out["features"] = feats
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = {**out[key], **copy.deepcopy(dict(value))}
        else:
            out[key] = copy.deepcopy(value)
    return out


# =========================================================================== per model


def stored_config(store: Store, name: str) -> dict[str, Any]:
    """What the model's settings hold (the overrides and ``watch_folder``), as stored."""
    from modelyard.core.registry.versions import parse_ref

    name, _, _ = parse_ref(name)
    with store.session() as s:
        return copy.deepcopy(dict(lookup.model_by_name(s, name).monitoring or {}))


def get_config(store: Store, name: str) -> dict[str, Any]:
    """The configuration checks of ``name`` use: the defaults with the model's settings over them."""
    stored = stored_config(store, name)
    return merge_config(default_config(), validate_config(stored))


def set_config(store: Store, name: str, config: Mapping[str, Any] | None, *, comment: str | None) -> dict[str, Any]:
    """Replace the model's drift settings with ``config`` (validated; only what differs from the
    defaults is kept, and ``watch_folder`` is kept unless ``config`` gives it). Audited as
    ``set_monitoring``. Returns the configuration checks will now use."""
    from modelyard.core.registry.versions import ENTITY, _need_comment, parse_ref

    name, _, _ = parse_ref(name)
    clean = validate_config(config or {})
    comment = _need_comment(comment, "Changing the drift settings")
    defaults = default_config()
    slim = _difference(clean, defaults)
    with store.write() as s:
        model = lookup.model_by_name(s, name)
        old = dict(model.monitoring or {})
        for key in EXTERNAL_KEYS:
            if key in old and key not in clean:
                slim[key] = old[key]
        model.monitoring = slim or None
        model.updated_at = m.utcnow()
        records.audit(s, ENTITY, model.id, "set_monitoring",
                      from_value=json.dumps(old, sort_keys=True) if old else None,
                      to_value=json.dumps(slim, sort_keys=True) if slim else None, comment=comment)
    return merge_config(defaults, slim)


def _difference(config: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        base = defaults.get(key)
        if key == "features":
            if value:
                out[key] = value
        elif isinstance(value, Mapping) and isinstance(base, Mapping):
            diff = {k: v for k, v in value.items() if base.get(k) != v}
            if diff:
                out[key] = diff
        elif value != base:
            out[key] = value
    return out


def parse_assignment(text: str) -> tuple[list[str], Any]:
    """``"thresholds.psi=0.25"`` -> (["thresholds", "psi"], 0.25); values are JSON, else text."""
    key, sep, raw = (text or "").partition("=")
    key = key.strip()
    if not sep or not key:
        raise ModelyardError(f"{text!r} is not KEY=VALUE.", hint="For example --set thresholds.psi=0.25 "
                             "or --set features.age.test=psi.")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw.strip()
    return [p for p in key.split(".")], value
