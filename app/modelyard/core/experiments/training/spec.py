"""What a training job is asked to do: :class:`TrainSpec`, as plain data, and its job spec.

A spec is what the user chose (in the Train dialog, on the command line, or in a file kept in
git) and, once the job has resolved it, what the run records as ``Run.spec`` and what
``reproduce`` replays. Light on purpose: the window builds specs on the main thread, so this
module loads no pandas or scikit-learn.

As a file (YAML when PyYAML is installed, else JSON; the keys are the fields below)::

    dataset: churn@v3          # NAME (its latest version when the job runs), NAME@latest or NAME@vN
    target: churned            # default: the dataset's target
    model: random_forest       # a key of the catalogue (modelyard train --list-models)
    params: {n_estimators: 300, max_depth: 12}
    preprocessing: {plan: onehot, customer_id: drop}
    split: {test: 0.2, validation: 0.1, method: stratified, seed: 0}    # or {id: 7}
    cv: 5
    search: {method: random, trials: 20, metric: f1_macro, space: {max_depth: [null, 8, 16]}}
    # or Optuna's TPE, with pruning on the cross-validation folds and a time budget (seconds):
    # search: {method: optuna, trials: 50, timeout: 600, pruning: true, parallel: 2}
    seed: 0
    experiment: churn
    slice_columns: [region, sex]

Fields the job fills in (recorded on the run, ignored in a file you write): the dataset
version's id and content hash, the resolved target, task and split (its id and parameters).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import check_name as check_name_chars
from modelyard.core.jobs.runner import JobSpec

SEARCH_METHODS = ("grid", "random", "optuna")
SEARCH_FIELDS = ("method", "trials", "space", "metric", "timeout", "pruning", "parallel")
SPLIT_METHODS = ("random", "stratified", "time")
DEFAULT_TEST_SHARE = 0.2
DEFAULT_RANDOM_TRIALS = 10
DEFAULT_OPTUNA_TRIALS = 20  # when neither a trial budget nor a time budget is given
SPEC_VERSION = 1


class SpecError(ModelyardError):
    """A training spec that cannot be used as written."""


@dataclass
class TrainSpec:
    """Everything a training run needs, as JSON-able values (see the module docstring)."""

    dataset: str | None = None
    model: str = ""
    target: str | None = None
    task: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] | None = None
    cv: int = 0
    search: dict[str, Any] | None = None
    seed: int = 0
    experiment: str | None = None
    slice_columns: list[str] = field(default_factory=list)
    run_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    curves: bool | None = None  # learning curves: None = only when cheap (<= 20,000 training rows)
    source: str = "api"  # where the run comes from: gui, cli, api (recorded as the run's source)
    cwd: str | None = None  # the caller's working folder: its git commit is recorded
    # filled in by the job
    dataset_version_id: int | None = None
    content_hash: str | None = None
    spec_version: int = SPEC_VERSION

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ conversion
    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_json(cls, data: TrainSpec | Mapping[str, Any]) -> TrainSpec:
        """A spec from a dict (a file's content, a recorded ``Run.spec``); checks every field."""
        if isinstance(data, TrainSpec):
            return replace(data)
        if not isinstance(data, Mapping):
            raise SpecError(f"A training spec must be a mapping of fields, not {type(data).__name__}.")
        data = dict(data)
        for alias, name in (("slices", "slice_columns"), ("name", "run_name"), ("folds", "cv"),
                            ("preprocess", "preprocessing")):
            if alias in data and name not in data:
                data[name] = data.pop(alias)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"Unknown field(s) in the training spec: {', '.join(unknown)}.",
                            hint="The fields are: " + ", ".join(sorted(known - {"spec_version"})) + ".")
        return cls(**{k: v for k, v in data.items() if v is not None or k in ("target", "task", "split")})

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TrainSpec:
        """Read a spec file: YAML (``.yaml``/``.yml``, needs PyYAML) or JSON."""
        return cls.from_json(read_spec_file(path))

    def with_defaults(self, **changes: Any) -> TrainSpec:
        return replace(self, **changes)

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        if self.dataset is None and self.dataset_version_id is None:
            raise SpecError("The training spec names no dataset.", hint="Give 'dataset: NAME' or NAME@vN.")
        if self.dataset is not None and (not isinstance(self.dataset, str) or not self.dataset.strip()):
            raise SpecError(f"'dataset' must be a dataset name such as churn or churn@v3 (got {self.dataset!r}).")
        if not isinstance(self.model, str) or not self.model.strip():
            raise SpecError("The training spec names no model.",
                            hint="Give 'model: random_forest' (modelyard train --list-models lists them).")
        for name in ("target", "task", "experiment", "run_name", "cwd"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise SpecError(f"'{name}' must be text (got {value!r}).")
            if value is not None and name in ("experiment", "run_name"):
                check_name_chars(value, f"The {'run name' if name == 'run_name' else 'experiment name'}",
                                 error=SpecError)
        if self.task is not None and self.task not in ("classification", "regression"):
            raise SpecError(f"'task' must be classification or regression (got {self.task!r}).")
        for name in ("params", "preprocessing", "tags"):
            if not isinstance(getattr(self, name), Mapping):
                raise SpecError(f"'{name}' must be a mapping (got {getattr(self, name)!r}).")
        self.params = dict(self.params)
        self.preprocessing = dict(self.preprocessing)
        self.tags = {str(k): str(v) for k, v in self.tags.items()}
        if isinstance(self.slice_columns, str):
            self.slice_columns = [self.slice_columns]
        if not isinstance(self.slice_columns, (list, tuple)) or not all(isinstance(c, str) for c in self.slice_columns):
            raise SpecError(f"'slice_columns' must be a list of column names (got {self.slice_columns!r}).")
        self.slice_columns = list(dict.fromkeys(self.slice_columns))
        self.seed = _int(self.seed, "seed", low=0)
        self.cv = _int(self.cv or 0, "cv", low=0)
        if self.cv == 1:
            raise SpecError("'cv' must be 0 (no cross-validation) or at least 2 folds (got 1).")
        if self.curves is not None and not isinstance(self.curves, bool):
            raise SpecError(f"'curves' must be true, false or null (got {self.curves!r}).")
        self.split = _check_split(self.split)
        self.search = _check_search(self.search)

    @property
    def title(self) -> str:
        what = "Search" if self.search else "Train"
        return f"{what} {self.model} on {self.dataset or f'dataset version {self.dataset_version_id}'}"


def _int(value: Any, name: str, *, low: int | None = None) -> int:
    if isinstance(value, bool):
        raise SpecError(f"'{name}' must be a whole number (got {value!r}).")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SpecError(f"'{name}' must be a whole number (got {value!r}).") from None
    if isinstance(value, float) and value != number:
        raise SpecError(f"'{name}' must be a whole number (got {value!r}).")
    if low is not None and number < low:
        raise SpecError(f"'{name}' must be at least {low} (got {number}).")
    return number


def _share(value: Any, name: str) -> float:
    try:
        share = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"The split's '{name}' share must be a number between 0 and 1 (got {value!r}).") from None
    return share


def _check_split(split: Any) -> dict[str, Any] | None:
    if split is None:
        return None
    if isinstance(split, bool):
        raise SpecError(f"'split' must be a split id or its parameters (got {split!r}).")
    if isinstance(split, (int, str)) and str(split).strip().isdigit():
        return {"id": int(split)}
    if not isinstance(split, Mapping):
        raise SpecError(f"'split' must be a split id or its parameters (got {split!r}).",
                        hint="For example {test: 0.2, method: stratified, seed: 0} or {id: 7}.")
    out = dict(split)
    unknown = set(out) - {"id", "name", "test", "validation", "method", "column", "seed", "counts"}
    if unknown:
        raise SpecError(f"Unknown split field(s): {', '.join(sorted(unknown))}.",
                        hint="Use id, or test, validation, method, column and seed.")
    if out.get("id") is not None:
        out["id"] = _int(out["id"], "split id", low=1)
    if out.get("test") is not None:
        out["test"] = _share(out["test"], "test")
    if out.get("validation") is not None:
        out["validation"] = _share(out["validation"], "validation")
    if out.get("method") is not None and out["method"] not in SPLIT_METHODS:
        raise SpecError(f"Unknown split method {out['method']!r}.", hint=f"Use one of {', '.join(SPLIT_METHODS)}.")
    if out.get("seed") is not None:
        out["seed"] = _int(out["seed"], "split seed", low=0)
    return out


def _check_search(search: Any) -> dict[str, Any] | None:
    if search is None or search is False:
        return None
    if isinstance(search, str):
        search = {"method": search}
    if not isinstance(search, Mapping):
        raise SpecError(f"'search' must give at least its method (got {search!r}).",
                        hint="For example {method: random, trials: 20}.")
    out = dict(search)
    unknown = set(out) - set(SEARCH_FIELDS)
    if unknown:
        raise SpecError(f"Unknown search field(s): {', '.join(sorted(unknown))}.",
                        hint=f"Use {', '.join(SEARCH_FIELDS[:-1])} and {SEARCH_FIELDS[-1]}.")
    method = out.get("method", "random")
    if method not in SEARCH_METHODS:
        raise SpecError(f"Unknown search method {method!r}.", hint="Use grid, random or optuna.")
    out["method"] = method
    trials = out.get("trials")
    if trials is None and method == "random":
        trials = DEFAULT_RANDOM_TRIALS
    out["trials"] = None if trials is None else _int(trials, "trials", low=1)
    if out.get("space") is not None and not isinstance(out["space"], Mapping):
        raise SpecError("The search 'space' must map parameter names to values or ranges.")
    out.setdefault("space", None)
    out.setdefault("metric", None)
    if method != "optuna":
        extra = [k for k in ("timeout", "pruning", "parallel") if out.get(k) is not None]
        if extra:
            raise SpecError(f"The search field(s) {', '.join(extra)} need method optuna (got {method}).",
                            hint="Use search: {method: optuna, ...}, or leave them out.")
        for k in ("timeout", "pruning", "parallel"):
            out.pop(k, None)
        return out
    timeout = out.get("timeout")
    if timeout is not None:
        try:
            timeout = float(timeout)
        except (TypeError, ValueError):
            timeout = float("nan")
        if isinstance(out["timeout"], bool) or not math.isfinite(timeout) or timeout <= 0:
            raise SpecError(f"The search 'timeout' must be a number of seconds above 0 (got {out['timeout']!r}).",
                            hint="For example timeout: 600 (--timeout 600) stops starting trials after 10 minutes.")
    out["timeout"] = timeout
    if out["trials"] is None and timeout is None:
        out["trials"] = DEFAULT_OPTUNA_TRIALS
    pruning = out.get("pruning", True)
    if not isinstance(pruning, bool):
        raise SpecError(f"The search 'pruning' must be true or false (got {pruning!r}).")
    out["pruning"] = pruning
    parallel = out.get("parallel")
    out["parallel"] = None if parallel is None else _int(parallel, "parallel", low=1)
    return out


def read_spec_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in a YAML or JSON spec file (YAML needs PyYAML; JSON always works)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"There is no spec file {p}.") from None
    except OSError as exc:
        raise SpecError(f"Cannot read the spec file {p}: {exc.strerror or exc}.") from None
    yaml_name = p.suffix.lower() in (".yaml", ".yml")
    data: Any = None
    if not yaml_name:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if p.suffix.lower() == ".json":
                raise SpecError(f"{p.name} is not valid JSON: {exc.msg} "
                                f"(line {exc.lineno}, column {exc.colno}).") from None
            yaml_name = True
    if yaml_name:
        try:
            import yaml
        except ImportError:
            try:
                data = json.loads(text)  # JSON is YAML too
            except json.JSONDecodeError:
                raise SpecError(f"Reading {p.name} needs PyYAML, which is not installed.",
                                hint="Install it (pip install pyyaml), or write the spec as JSON.") from None
        else:
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
                problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
                raise SpecError(f"{p.name} is not valid YAML{where}: {problem}.") from None
    if not isinstance(data, Mapping):
        raise SpecError(f"{p.name} must hold a mapping of training fields (dataset, model, ...).")
    return dict(data)


def train_spec_job(spec: TrainSpec | Mapping[str, Any], *, title: str | None = None,
                   cluster: str | None = None) -> JobSpec:
    """The job that trains ``spec`` in a child process (run it with ``run_job`` or the GUI's runner).

    ``cluster`` says where a search's trials and the cross-validation folds run (``serial``,
    ``local``, ``local:N``, ``tcp://host:8786``; default: ``MODELYARD_CLUSTER``, the store's
    preference, else ``auto``; see :mod:`.engine`). It is the job's, not the spec's: where the
    fits ran does not change the results, and a reproduction runs wherever its job says.

    After a cancel or a failure the runner ends the runs the killed child left running (the
    kind's clean-up, :mod:`modelyard.core.jobs.kinds`).
    """
    ts = TrainSpec.from_json(spec)
    params: dict[str, Any] = {"spec": ts.to_json()}
    if cluster:
        params["cluster"] = str(cluster)
    return JobSpec.for_kind("train", title or ts.title, params)


def reproduce_spec_job(run_id: str, *, data: str = "spec", source: str = "api", cwd: str | None = None) -> JobSpec:
    """The job that retrains a run from its recorded spec and compares (see :mod:`.reproduce`)."""
    if data not in ("spec", "recorded"):
        raise SpecError(f"Unknown data choice {data!r}.", hint="Use 'spec' or 'recorded'.")
    return JobSpec.for_kind("train.reproduce", f"Reproduce run {str(run_id)[:12]}",
                            {"run_id": str(run_id), "data": data, "source": source, "cwd": cwd})
