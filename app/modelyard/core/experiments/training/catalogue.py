"""The model catalogue: which scikit-learn estimators can be trained, and their parameter forms.

:data:`MODELS` is plain data (no scikit-learn import), so the window lists the models at
start-up for free. Everything that looks at an estimator itself imports scikit-learn on first
use (about a second, once per process): :func:`param_form`, :func:`coerce_params`,
:func:`make_estimator`.

The form of a model is generated from the estimator class: its ``_parameter_constraints``
give each parameter's type, range and choices, ``get_params()`` (with the catalogue's fixed
defaults on top) its default, and the first sentence of its numpydoc entry its help text.
Parameters that make no sense in a form are left out: those Modelyard manages (``n_jobs``,
``verbose``, ``warm_start``, ``random_state`` — the run's seed sets it —, ``copy_X``...),
and those that take only objects, callables or arrays. A deprecated default (scikit-learn's
``"deprecated"`` placeholder) also hides the parameter.

A :class:`ParamField` describes one parameter: ``kind`` is the widget to show (int, float,
bool, choice, str) and ``alternatives`` every form of value the parameter accepts, e.g.
``max_features`` of a random forest is a ``choice`` (``"sqrt"``, ``"log2"``) whose
alternatives also allow an int >= 1, a float in (0, 1] and None.

Search spaces (:func:`default_search_space`) are JSON: per parameter either a list of values,
or ``{"type": "int" | "float", "low": L, "high": H, "log": bool}``.
"""

from __future__ import annotations

import difflib
import importlib
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from modelyard.core.common.errors import ModelyardError

TASKS = ("classification", "regression")

# Parameters a form never shows: Modelyard sets them (seed, threads, output), or they take
# objects, callables or arrays a form cannot express well.
SKIPPED_PARAMS = frozenset({
    "n_jobs", "verbose", "warm_start", "random_state", "copy_X", "copy", "memory", "cache_size",
    "monotonic_cst", "interaction_cst", "categorical_features", "metric_params", "scoring",
    "estimator", "base_estimator", "callbacks", "probability",
})


# Choices that need inputs a form cannot give (a kernel matrix, a Python function).
UNUSABLE_CHOICES = frozenset({"precomputed", "pyfunc"})


@dataclass(frozen=True)
class ModelEntry:
    """One catalogue model: a key, a display name, its estimator per task, fixed defaults."""

    key: str
    name: str
    estimators: dict[str, str]  # task -> "module:Class"
    family: str  # linear | tree | kernel | neighbors | baseline
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)  # applied to every task's estimator
    task_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    threads: bool = False  # n_jobs is set to the cores Modelyard may use

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(t for t in TASKS if t in self.estimators)

    @property
    def tree_based(self) -> bool:
        return self.family == "tree"

    def class_path(self, task: str) -> str:
        return self.estimators[task]

    def fixed_defaults(self, task: str) -> dict[str, Any]:
        return {**self.defaults, **self.task_defaults.get(task, {})}

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "tasks": list(self.tasks), "family": self.family,
                "description": self.description,
                "estimators": {t: self.estimators[t].replace(":", ".") for t in self.tasks},
                "defaults": {t: self.fixed_defaults(t) for t in self.tasks}}


def _entry(key: str, name: str, family: str, description: str, **kw: Any) -> ModelEntry:
    return ModelEntry(key=key, name=name, family=family, description=description, **kw)


MODELS: dict[str, ModelEntry] = {e.key: e for e in (
    _entry("logistic_regression", "Logistic regression", "linear",
           "A linear model of the class probabilities; fast, a strong baseline for scaled features.",
           estimators={"classification": "sklearn.linear_model:LogisticRegression"},
           defaults={"max_iter": 1000}),
    _entry("linear_regression", "Linear regression", "linear",
           "Ordinary least squares: the simplest model of a number.",
           estimators={"regression": "sklearn.linear_model:LinearRegression"}),
    _entry("ridge", "Ridge regression", "linear",
           "Least squares with an L2 penalty (alpha): steadier than plain linear regression.",
           estimators={"regression": "sklearn.linear_model:Ridge"}),
    _entry("random_forest", "Random forest", "tree",
           "Many decision trees on bootstrap samples, averaged: robust with little tuning.",
           estimators={"classification": "sklearn.ensemble:RandomForestClassifier",
                       "regression": "sklearn.ensemble:RandomForestRegressor"}, threads=True),
    _entry("extra_trees", "Extra trees", "tree",
           "Extremely randomised trees: like a random forest with random split points; faster.",
           estimators={"classification": "sklearn.ensemble:ExtraTreesClassifier",
                       "regression": "sklearn.ensemble:ExtraTreesRegressor"}, threads=True),
    _entry("hist_gradient_boosting", "Histogram gradient boosting", "tree",
           "Boosted trees on binned features (like LightGBM): usually the most accurate on tables.",
           estimators={"classification": "sklearn.ensemble:HistGradientBoostingClassifier",
                       "regression": "sklearn.ensemble:HistGradientBoostingRegressor"}),
    _entry("decision_tree", "Decision tree", "tree",
           "One tree of if-then rules: easy to read, prone to over-fitting.",
           estimators={"classification": "sklearn.tree:DecisionTreeClassifier",
                       "regression": "sklearn.tree:DecisionTreeRegressor"}),
    _entry("svm", "Support vector machine", "kernel",
           "A kernel machine (RBF by default): good on small, scaled data; slow beyond ~20,000 rows.",
           estimators={"classification": "sklearn.svm:SVC", "regression": "sklearn.svm:SVR"}),
    _entry("knn", "k-nearest neighbours", "neighbors",
           "Predicts from the k most similar training rows; no training, slower predictions.",
           estimators={"classification": "sklearn.neighbors:KNeighborsClassifier",
                       "regression": "sklearn.neighbors:KNeighborsRegressor"}),
    _entry("dummy", "Dummy baseline", "baseline",
           "Ignores the features (most frequent class / mean): the score any model must beat.",
           estimators={"classification": "sklearn.dummy:DummyClassifier",
                       "regression": "sklearn.dummy:DummyRegressor"}),
)}

# A few names people type, mapped to catalogue keys.
ALIASES: dict[str, str] = {
    "logistic": "logistic_regression", "logreg": "logistic_regression", "linear": "linear_regression",
    "rf": "random_forest", "forest": "random_forest", "et": "extra_trees", "hgb": "hist_gradient_boosting",
    "gbm": "hist_gradient_boosting", "gradient_boosting": "hist_gradient_boosting", "tree": "decision_tree",
    "svc": "svm", "svr": "svm", "kneighbors": "knn", "baseline": "dummy",
}


def list_models(task: str | None = None) -> list[ModelEntry]:
    """The catalogue (for one task when given), in catalogue order."""
    if task is not None and task not in TASKS:
        raise ModelyardError(f"Unknown task '{task}'.", hint=f"Use one of {', '.join(TASKS)}.")
    return [e for e in MODELS.values() if task is None or task in e.tasks]


def get_model(key: str, task: str | None = None) -> ModelEntry:
    """The catalogue entry of ``key`` (or an alias); with ``task``, checks the model supports it."""
    norm = str(key).strip().lower().replace("-", "_").replace(" ", "_")
    norm = ALIASES.get(norm, norm)
    entry = MODELS.get(norm)
    if entry is None:
        close = difflib.get_close_matches(norm, list(MODELS) + list(ALIASES), n=1)
        hint = f"Did you mean '{ALIASES.get(close[0], close[0])}'? " if close else ""
        raise ModelyardError(f"There is no model '{key}' in the catalogue.",
                             hint=hint + f"The models are: {', '.join(MODELS)}.")
    if task is not None and task not in entry.tasks:
        others = ", ".join(e.key for e in list_models(task)) if task in TASKS else ""
        raise ModelyardError(f"{entry.name} is not a {task} model (it does {' and '.join(entry.tasks)}).",
                             hint=f"For {task}, choose one of: {others}." if others else None)
    return entry


def _task_for(entry: ModelEntry, task: str | None) -> str:
    if task is None:
        return entry.tasks[0]
    get_model(entry.key, task)
    return task


def estimator_class(model_key: str, task: str | None = None) -> type:
    entry = get_model(model_key, task)
    module, _, name = entry.class_path(_task_for(entry, task)).partition(":")
    return getattr(importlib.import_module(module), name)


# --------------------------------------------------------------------------- the form


@dataclass(frozen=True)
class ParamField:
    """One parameter of a model's form.

    ``kind``: the widget — ``int``, ``float``, ``bool``, ``choice`` or ``str``. ``default``:
    the value used when the user leaves it alone (JSON-able). ``low``/``high`` (None: no bound)
    with ``low_inclusive``/``high_inclusive``: the range of an int or float. ``choices``: the
    allowed words (for a ``choice``, and extra words other kinds accept, e.g. ``"auto"``).
    ``nullable``: None is allowed (an empty field). ``log_scale``: a positive float whose useful
    values span orders of magnitude (a log slider, a log search range). ``alternatives``: every
    accepted form, each ``{"kind", "low", "high", "low_inclusive", "high_inclusive",
    "choices", "text"}`` (``kind`` also ``none``; a float range adds ``accepts_int``: false when
    a whole number is not accepted there) with ``text`` the allowed values in words, from
    scikit-learn ("an int in the range [1, inf)", "one of 'gini', 'entropy'").
    """

    name: str
    kind: str
    default: Any
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    log_scale: bool = False
    help: str = ""
    alternatives: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["choices"] = list(self.choices)
        d["alternatives"] = [dict(a) for a in self.alternatives]
        return _jsonable(d)

    def describe(self) -> str:
        """The allowed values in words: "an int in the range [1, inf) or None"."""
        parts = [a["text"] for a in self.alternatives]
        return " or ".join(parts)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        try:
            return _jsonable(value.item())
        except (TypeError, ValueError):
            return str(value)
    return value


def _alternative(constraint: Any) -> dict[str, Any] | None:
    """A form-able description of one scikit-learn constraint, or None (objects, callables...)."""
    from numbers import Integral, Real

    from sklearn.utils import _param_validation as pv

    if isinstance(constraint, pv.Hidden):
        return None
    c = pv.make_constraint(constraint)
    text = str(c)
    base: dict[str, Any] = {"low": None, "high": None, "low_inclusive": True, "high_inclusive": True,
                            "choices": [], "text": text}
    if isinstance(c, pv.Interval):
        kind = "int" if c.type is Integral else "float"
        closed = c.closed
        return {**base, "kind": kind, "low": c.left, "high": c.right,
                "low_inclusive": closed in ("left", "both"), "high_inclusive": closed in ("right", "both"),
                "accepts_int": c.type is not pv.RealNotInt}
    if isinstance(c, pv.StrOptions):
        options = sorted(o for o in c.options if o not in c.deprecated and o not in UNUSABLE_CHOICES)
        return {**base, "kind": "choice", "choices": options, "text": _one_of(options)} if options else None
    if isinstance(c, pv.Options):
        options = sorted(c.options, key=str)
        return {**base, "kind": "choice", "choices": options, "text": _one_of(options)}
    if isinstance(c, pv._Booleans):
        return {**base, "kind": "bool", "text": "True or False"}
    if isinstance(c, pv._NoneConstraint):
        return {**base, "kind": "none", "text": "None"}
    if isinstance(c, pv._InstancesOf):
        t = c.type
        if t is str:
            return {**base, "kind": "str", "text": "any text"}
        if t is bool:
            return {**base, "kind": "bool", "text": "True or False"}
        if t is Integral or t is int:
            return {**base, "kind": "int"}
        if t is Real or t is float:
            return {**base, "kind": "float"}
    return None


def _one_of(options: list[Any]) -> str:
    shown = ", ".join(repr(o) for o in options)
    return f"one of {shown}" if len(options) > 1 else shown


def _satisfied(alt: dict[str, Any], value: Any) -> bool:
    """Does ``value`` fit one alternative (as the form understands it)?"""
    kind = alt["kind"]
    if kind == "none":
        return value is None
    if value is None:
        return False
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "choice":
        for c in alt["choices"]:
            if isinstance(c, str):
                if isinstance(value, str) and value == c:
                    return True
            elif isinstance(value, (int, float)) and value == c:
                return True
        return False
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        if not isinstance(value, int):
            return False
    elif kind == "float":
        if not isinstance(value, (int, float)):
            return False
        if isinstance(value, int) and not alt.get("accepts_int", True):
            return False  # a float-only interval (scikit-learn's RealNotInt)
    else:
        return False
    lo, hi = alt["low"], alt["high"]
    if isinstance(value, float) and math.isnan(value):
        return False
    if lo is not None and (value < lo or (value == lo and not alt["low_inclusive"])):
        return False
    return not (hi is not None and (value > hi or (value == hi and not alt["high_inclusive"])))


_HELP_CACHE: dict[type, dict[str, str]] = {}
_PARAM_LINE = re.compile(r"^(\w+)\s*:\s*(.*)$")


def _param_help(cls: type) -> dict[str, str]:
    """First sentence of each parameter's numpydoc description."""
    if cls in _HELP_CACHE:
        return _HELP_CACHE[cls]
    doc = cls.__doc__ or ""
    lines = doc.expandtabs().splitlines()
    out: dict[str, str] = {}
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == "Parameters"
                     and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"})
    except StopIteration:
        _HELP_CACHE[cls] = out
        return out
    indent = len(lines[start]) - len(lines[start].lstrip())
    current: str | None = None
    buf: list[str] = []

    def close() -> None:
        if current is not None:
            text = " ".join(b.strip() for b in buf).strip()
            text = re.sub(r":(?:class|func|meth|ref|term|attr):`~?([^`<]*?)(?:\s*<[^>]*>)?`", r"\1", text)
            text = text.replace("``", "").replace("`", "")
            out[current] = _first_sentence(text)
    for ln in lines[start + 2:]:
        if ln.strip() and len(ln) - len(ln.lstrip()) == indent:
            if set(ln.strip()) == {"-"}:  # the next section's underline: the previous line was its title
                if buf:
                    buf.pop()
                break
            match = _PARAM_LINE.match(ln.strip())
            if match is None:
                break
            close()
            current, buf = match.group(1), []
            continue
        if current is not None:
            if not ln.strip():
                if buf:  # only the first paragraph
                    close()
                    current = None
                continue
            buf.append(ln)
    close()
    _HELP_CACHE[cls] = out
    return out


_ABBREVIATIONS = ("e.g.", "i.e.", "a.k.a.", "etc.", "vs.", "resp.", "approx.", "cf.")


def _first_sentence(text: str) -> str:
    for match in re.finditer(r"[.!?](?=\s+\S|\s*$)", text):
        head = text[:match.end()]
        if head.lower().endswith(_ABBREVIATIONS):
            continue
        return head
    return text


def _primary(default: Any, alts: list[dict[str, Any]]) -> dict[str, Any] | None:
    kinds = [a for a in alts if a["kind"] != "none"]
    if not kinds:
        return None
    for a in kinds:
        if default is not None and _satisfied(a, default):
            if isinstance(default, float) and a["kind"] == "choice" and any(b["kind"] == "float" for b in kinds):
                continue  # a float like inf listed as an option: prefer the float field
            return a
    if default is None:
        return kinds[0]
    for a in kinds:  # the default fits no range exactly (e.g. an int default of a float param)
        if a["kind"] == "float" and isinstance(default, (int, float)) and not isinstance(default, bool):
            return a
    return None


def _fields(cls: type, defaults: Mapping[str, Any]) -> list[ParamField]:
    import inspect

    constraints: dict[str, list[Any]] = getattr(cls, "_parameter_constraints", {}) or {}
    got = cls().get_params(deep=False)
    order = [p for p in inspect.signature(cls.__init__).parameters if p in got]
    params = {p: got[p] for p in order + [p for p in got if p not in order]}
    helps = _param_help(cls)
    out: list[ParamField] = []
    for name, default in params.items():
        if name in SKIPPED_PARAMS or name not in constraints:
            continue
        if name in defaults:
            default = defaults[name]
        alts = [a for a in (_alternative(c) for c in constraints[name]) if a is not None]
        if not alts:
            continue
        default = _jsonable(default) if not isinstance(default, (str, bool, int, float, type(None))) else default
        if isinstance(default, float) and math.isinf(default):
            default = float(default)
        if not any(_satisfied(a, default) for a in alts):
            continue  # a deprecated placeholder default, or a value only an object can express
        prim = _primary(default, alts)
        if prim is None:
            continue
        choices: list[Any] = []
        for a in alts:
            if a["kind"] == "choice":
                choices += [c for c in a["choices"] if c not in choices]
        numeric = prim if prim["kind"] in ("int", "float") else None
        log_scale = bool(numeric and numeric["kind"] == "float" and numeric["low"] is not None
                         and numeric["low"] >= 0 and numeric["high"] is None)
        out.append(ParamField(
            name=name, kind=prim["kind"], default=default,
            low=numeric["low"] if numeric else None, high=numeric["high"] if numeric else None,
            low_inclusive=numeric["low_inclusive"] if numeric else True,
            high_inclusive=numeric["high_inclusive"] if numeric else True,
            choices=tuple(choices), nullable=any(a["kind"] == "none" for a in alts), log_scale=log_scale,
            help=helps.get(name, ""), alternatives=tuple(alts)))
    return out


_FORMS: dict[tuple[str, str], list[ParamField]] = {}


def param_form(model_key: str, task: str | None = None) -> list[ParamField]:
    """The form of a model's hyperparameters, defaults filled in (imports scikit-learn).

    ``task`` picks the estimator of a model that does both (default: its first task).
    """
    entry = get_model(model_key, task)
    task = _task_for(entry, task)
    key = (entry.key, task)
    if key not in _FORMS:
        _FORMS[key] = _fields(estimator_class(entry.key, task), entry.fixed_defaults(task))
    return list(_FORMS[key])


def _parse_text(text: str, alts: list[dict[str, Any]]) -> list[Any]:
    """Candidate values of a typed-in text, most specific first."""
    t = text.strip()
    low = t.lower()
    out: list[Any] = []
    if low in ("none", "null", "~", ""):
        out.append(None)
    if low in ("true", "yes", "on"):
        out.append(True)
    if low in ("false", "no", "off"):
        out.append(False)
    if re.fullmatch(r"[+-]?\d+", t):
        out.append(int(t))
    try:
        f = float(t)
    except ValueError:
        pass
    else:
        out.append(f)
    if t.startswith(("'", '"')) and t.endswith(t[0]) and len(t) >= 2:
        t = t[1:-1]
    out.append(t)
    return out


def coerce_params(model_key: str, raw: Mapping[str, Any], task: str | None = None) -> dict[str, Any]:
    """Validate (and convert from text) user values for a model's parameters.

    Values may be typed text (``"200"``, ``"none"``, ``"true"``, ``"sqrt"``) or JSON/YAML
    values. Raises :class:`ModelyardError` naming the parameter and what it allows.
    """
    entry = get_model(model_key, task)
    task = _task_for(entry, task)
    fields = {f.name: f for f in param_form(entry.key, task)}
    out: dict[str, Any] = {}
    for name, value in raw.items():
        name = str(name).strip()
        fld = fields.get(name)
        if fld is None:
            all_params = estimator_class(entry.key, task)().get_params(deep=False)
            if name in all_params:
                why = {"random_state": "the run's seed sets it",
                       "n_jobs": "Modelyard chooses the number of threads",
                       "verbose": "Modelyard reports progress itself",
                       "warm_start": "every run trains from scratch"}.get(name, "it takes values a form cannot give")
                raise ModelyardError(f"Parameter '{name}' of {entry.name} cannot be set here: {why}.",
                                     hint=f"Its parameters are: {', '.join(fields)}.")
            close = difflib.get_close_matches(name, list(fields), n=1)
            raise ModelyardError(f"{entry.name} has no parameter '{name}'.",
                                 hint=(f"Did you mean '{close[0]}'? " if close else "")
                                 + f"Its parameters are: {', '.join(fields)}.")
        alts = list(fld.alternatives)
        candidates = _parse_text(value, alts) if isinstance(value, str) else [value]
        if not isinstance(value, str) and isinstance(value, int) and not isinstance(value, bool):
            candidates.append(float(value))
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):
            candidates.insert(0, _jsonable(value))
        chosen = _NOTHING
        for cand in candidates:
            if any(_satisfied(a, cand) for a in alts):
                chosen = cand
                break
        if chosen is _NOTHING:
            shown = value if isinstance(value, str) else repr(value)
            raise ModelyardError(f"Parameter '{name}' of {entry.name} must be {fld.describe()} (got {shown}).",
                                 hint=f"Its default is {fld.default!r}." if fld.default is not None else None)
        out[name] = chosen
    return out


_NOTHING = object()


def make_estimator(model_key: str, task: str, params: Mapping[str, Any] | None = None, *, seed: int | None = 0,
                   n_jobs: int | None = None) -> Any:
    """A new, unfitted estimator: fixed defaults, then ``params`` (already coerced), the seed."""
    entry = get_model(model_key, task)
    cls = estimator_class(entry.key, task)
    kwargs = {**entry.fixed_defaults(task), **dict(params or {})}
    available = cls().get_params(deep=False)
    if "random_state" in available and seed is not None:
        kwargs["random_state"] = int(seed)
    if entry.threads and "n_jobs" in available and n_jobs is not None:
        kwargs["n_jobs"] = int(n_jobs)
    est = cls(**kwargs)
    try:
        est._validate_params()
    except (ValueError, TypeError) as exc:
        raise ModelyardError(f"The parameters of {entry.name} are not valid: {exc}") from None
    return est


def form_params(model_key: str, task: str, estimator: Any) -> dict[str, Any]:
    """The values an estimator has for its form's parameters (what a run logs as params)."""
    got = estimator.get_params(deep=False)
    return {f.name: _jsonable(got[f.name]) for f in param_form(model_key, task) if f.name in got}


# --------------------------------------------------------------------------- search spaces


def _space(task: str, key: str) -> dict[str, Any]:
    trees = {"n_estimators": {"type": "int", "low": 50, "high": 400, "log": True},
             "max_depth": [None, 4, 8, 16],
             "min_samples_leaf": {"type": "int", "low": 1, "high": 10},
             "max_features": ["sqrt", 0.5, 1.0]}
    spaces: dict[str, dict[str, Any]] = {
        "logistic_regression": {"C": {"type": "float", "low": 1e-3, "high": 1e3, "log": True}},
        "linear_regression": {"fit_intercept": [True, False]},
        "ridge": {"alpha": {"type": "float", "low": 1e-3, "high": 1e3, "log": True}},
        "random_forest": trees,
        "extra_trees": trees,
        "hist_gradient_boosting": {"learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
                                   "max_leaf_nodes": {"type": "int", "low": 8, "high": 64, "log": True},
                                   "min_samples_leaf": {"type": "int", "low": 5, "high": 50, "log": True},
                                   "l2_regularization": [0.0, 0.1, 1.0]},
        "decision_tree": {"max_depth": [None, 3, 5, 8, 12], "min_samples_leaf": {"type": "int", "low": 1, "high": 20}},
        "svm": {"C": {"type": "float", "low": 1e-2, "high": 1e2, "log": True}, "gamma": ["scale", 0.01, 0.1, 1.0]},
        "knn": {"n_neighbors": {"type": "int", "low": 1, "high": 50, "log": True}, "weights": ["uniform", "distance"]},
        "dummy": {"strategy": ["prior", "most_frequent", "stratified", "uniform"] if task == "classification"
                  else ["mean", "median"]},
    }
    return spaces[key]


def default_search_space(model_key: str, task: str | None = None) -> dict[str, Any]:
    """A few sensible parameters to search for a model, as JSON (see the module docstring)."""
    entry = get_model(model_key, task)
    space = _space(_task_for(entry, task), entry.key)
    return {k: (list(v) if isinstance(v, list) else dict(v)) for k, v in space.items()}


def check_search_space(model_key: str, task: str, space: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a search space: known parameters, well-formed ranges, values the model accepts."""
    entry = get_model(model_key, task)
    fields = {f.name: f for f in param_form(entry.key, task)}
    out: dict[str, Any] = {}
    if not isinstance(space, Mapping) or not space:
        raise ModelyardError("A search space must map parameter names to values or ranges.",
                             hint='For example {"C": {"type": "float", "low": 0.01, "high": 100, "log": true}}.')
    for name, spec in space.items():
        if name not in fields:
            coerce_params(entry.key, {name: None}, task)  # raises: unknown or not settable
        if isinstance(spec, Mapping) and "values" in spec:
            spec = list(spec["values"])
        if isinstance(spec, (list, tuple)):
            if not spec:
                raise ModelyardError(f"The search space of '{name}' has no values.")
            out[name] = list(coerce_params(entry.key, {name: v}, task)[name] for v in spec)
            continue
        if not isinstance(spec, Mapping):
            out[name] = [coerce_params(entry.key, {name: spec}, task)[name]]
            continue
        kind = spec.get("type", fields[name].kind)
        if kind not in ("int", "float"):
            raise ModelyardError(f"The search range of '{name}' must have type int or float (got {kind!r}).",
                                 hint="Give a list of values for other parameters.")
        try:
            low, high = float(spec["low"]), float(spec["high"])
        except (KeyError, TypeError, ValueError):
            raise ModelyardError(f"The search range of '{name}' needs numbers 'low' and 'high'.") from None
        if not low < high:
            raise ModelyardError(f"The search range of '{name}' must have low < high (got {low} and {high}).")
        log = bool(spec.get("log", False))
        if log and low <= 0:
            raise ModelyardError(f"A log-scale search range of '{name}' must start above 0 (got {low}).")
        conv = int if kind == "int" else float
        for v in (low, high):
            coerce_params(entry.key, {name: conv(v)}, task)
        out[name] = {"type": kind, "low": conv(low), "high": conv(high), "log": log}
    return out
