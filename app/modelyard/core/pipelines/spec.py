"""What a pipeline is, as plain data: its steps, triggers, parameters and notification choices.

A pipeline is a YAML file kept beside a team's code (``docs/pipelines.md`` describes the format)::

    name: churn-nightly
    params:
      data: churn.csv            # defaults; a run may override them
    triggers:
      - schedule: "0 2 * * *"    # cron; missed: run_once (default) | skip
      - on: new_file             # folder, pattern, param (the parameter that gets the file's path)
        folder: incoming
        param: data
      - on: drift                # model, param (the parameter that gets the check's id)
        model: churn
      - on: live_drift           # model, param (gets the live alert's id: monitoring/live.py)
        model: churn
    notify:
      on: [failed, blocked]      # which endings notify (failed, blocked, succeeded)
    steps:
      load:
        kind: import
        params: {path: "${params.data}", name: churn}
      search:
        kind: train
        params: {dataset: "${steps.load.outputs.ref}", target: churned, model: random_forest}
        retries: 1

:mod:`.loading` reads such a file into a :class:`Pipeline` (or the list of :class:`Problem` it
has, each with file, line and column); the runner executes it. Everything here is frozen plain
data: it crosses threads and processes and is stored as JSON (:meth:`Pipeline.to_json`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelyard.core.common.errors import ModelyardError

# --------------------------------------------------------------------------- step kinds

#: Step kinds: the parameters each requires and those it may take (validation names any other),
#: and the outputs a later step may reference as ``${steps.<name>.outputs.<key>}``. Dataset
#: versions are given as ``"name@vN"`` (``"name"`` alone is its newest version) or an id; model
#: versions as ``"name@vN"`` or ``"name@alias"``; paths relative to the pipeline file's folder.
STEP_KINDS: dict[str, dict[str, tuple[str, ...]]] = {
    # a file, a glob or a folder -> one dataset version (its files' rows together)
    "import": {"required": ("path", "name"), "optional": ("options", "message"),
               "outputs": ("dataset_version_id", "ref", "dataset", "version", "rows", "content_hash")},
    # a named train/validation/test split of a dataset version
    "split": {"required": ("dataset",), "optional": ("test", "validation", "method", "column", "seed", "name"),
              "outputs": ("split_id", "name", "dataset_version_id")},
    # the params are a training spec as `modelyard train --spec` takes it (cv, search and all)
    "train": {"required": ("dataset", "model"),
              "optional": ("target", "task", "params", "preprocessing", "split", "cv", "search", "seed",
                           "experiment", "slice_columns", "run_name", "tags", "curves"),
              "outputs": ("run_id", "run_ids", "metrics", "experiment")},
    # the model's promotion gates (or ``gates`` given here) for a run, against the current champion
    "gate": {"required": ("model", "run"), "optional": ("gates",),
             "outputs": ("passed", "reasons", "checked")},
    "register": {"required": ("run", "model"), "optional": ("alias", "comment", "description"),
                 "outputs": ("ref", "version", "model_version_id", "alias")},
    "bundle": {"required": ("ref", "folder"), "optional": ("signing_key", "filename"),
               "outputs": ("path", "sha256", "size")},
    "score": {"required": ("model",), "optional": ("dataset", "path", "output"),
              "outputs": ("dataset_version_id", "ref", "rows", "path")},
    # swap the running server of the model to the new version (started when none runs and ``start``)
    "serve": {"required": ("ref",), "optional": ("port", "start"),
              "outputs": ("url", "ref", "pid")},
    "check": {"required": ("model", "batch"), "optional": ("config", "block_on_drift"),
              "outputs": ("check_id", "verdict", "drift_share", "drift")},
    "retrain": {"required": ("check",), "optional": ("data", "comment"),
                "outputs": ("run_id", "ref")},
    # escape hatches: a module:function in a child process; a command
    "python": {"required": ("function",), "optional": ("args", "path"),
               "outputs": ("return", "files")},
    "shell": {"required": ("command",), "optional": ("cwd", "env"),
              "outputs": ("exit_code",)},
}

TRIGGER_TYPES = ("schedule", "new_file", "drift", "live_drift")
MISSED_POLICIES = ("run_once", "skip")
NOTIFY_ON = ("failed", "blocked", "succeeded")

# Statuses. A run: queued -> running -> one of RUN_ENDS. A step: pending -> running -> one of STEP_ENDS.
RUN_ENDS = ("succeeded", "failed", "blocked", "cancelled", "interrupted")
STEP_ENDS = ("succeeded", "cached", "failed", "blocked", "skipped", "cancelled", "interrupted")
STEP_DONE = ("succeeded", "cached")  # outputs usable downstream (and by a resume)


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a pipeline file, where it is (1-based line and column) and what to do."""

    file: str
    line: int
    column: int
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.message}"
        return f"{text} {self.hint}" if self.hint else text

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "column": self.column, "message": self.message,
                "hint": self.hint}


class PipelineInvalid(ModelyardError):
    """A pipeline file with problems; nothing was recorded. ``problems`` has every one found."""

    exit_code = 1

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        first = self.problems[0] if self.problems else Problem("pipeline", 1, 1, "The pipeline is not valid.")
        more = len(self.problems) - 1
        message = f"{first.file}:{first.line}:{first.column}: {first.message}"
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        super().__init__(message, hint=first.hint)


# --------------------------------------------------------------------------- the pipeline


@dataclass(frozen=True)
class Trigger:
    """What starts a pipeline by itself. ``key`` is stable within a file: ``"<type>:<index>"``
    (the trigger's place in the ``triggers`` list), e.g. ``"schedule:0"``."""

    key: str
    type: str  # schedule | new_file | drift
    cron: str | None = None  # schedule
    missed: str = "run_once"  # schedule: after the machine was off, run once on start, or skip
    folder: str | None = None  # new_file: absolute folder
    pattern: str = "*"  # new_file: glob of file names
    model: str | None = None  # drift: the registered model whose checks are watched
    param: str | None = None  # the pipeline parameter that receives the file's path / the check's id

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Step:
    """One node. ``needs`` holds the explicit ``needs`` and every step its params reference."""

    name: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)  # as written: may hold ${...} references
    needs: tuple[str, ...] = ()
    retries: int = 0  # extra attempts after a failure
    retry_delay: float = 1.0  # seconds before the first retry; doubles after each
    timeout: float | None = None  # seconds an attempt may take; then it is cancelled and failed
    cache: bool = True  # reuse the outputs of an earlier identical step run
    position: int = 0  # its place in the file
    line: int = 0  # where it is defined (1-based), for messages

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["needs"] = list(self.needs)
        return d


@dataclass(frozen=True)
class Pipeline:
    name: str
    path: str  # the YAML file (absolute), or a label like "<text>" for a pipeline given as text
    folder: str  # what relative paths in params are relative to (the file's folder)
    steps: tuple[Step, ...]  # in file order; :meth:`order` gives an order that respects needs
    params: dict[str, Any] = field(default_factory=dict)  # defaults
    triggers: tuple[Trigger, ...] = ()
    notify: dict[str, Any] = field(default_factory=lambda: {"on": ["failed", "blocked"]})
    description: str | None = None
    sha256: str = ""  # of the file's bytes

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    def order(self) -> list[Step]:
        """The steps in an order where each comes after everything it needs (file order otherwise)."""
        done: set[str] = set()
        out: list[Step] = []
        pending = list(self.steps)
        while pending:
            ready = [s for s in pending if set(s.needs) <= done]
            if not ready:  # a cycle: validation refuses these; never loop forever
                raise ValueError(f"pipeline {self.name!r} has a cycle among {[s.name for s in pending]}")
            for s in ready:
                out.append(s)
                done.add(s.name)
            pending = [s for s in pending if s.name not in done]
        return out

    def downstream(self, names: Iterable[str]) -> set[str]:
        """``names`` and every step that needs one of them, directly or not."""
        out = set(names)
        changed = True
        while changed:
            changed = False
            for s in self.steps:
                if s.name not in out and out.intersection(s.needs):
                    out.add(s.name)
                    changed = True
        return out

    def levels(self) -> dict[str, int]:
        """Each step's depth in the graph (0 for steps that need nothing): the columns of a drawing."""
        depth: dict[str, int] = {}
        for s in self.order():
            depth[s.name] = 1 + max((depth[n] for n in s.needs), default=-1)
        return depth

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "folder": self.folder, "description": self.description,
                "sha256": self.sha256, "params": self.params, "notify": self.notify,
                "triggers": [t.to_json() for t in self.triggers], "steps": [s.to_json() for s in self.steps]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Pipeline:
        steps = tuple(Step(**{**s, "needs": tuple(s.get("needs") or ())}) for s in d.get("steps") or ())
        triggers = tuple(Trigger(**t) for t in d.get("triggers") or ())
        return cls(name=d["name"], path=d["path"], folder=d["folder"], steps=steps, params=dict(d.get("params") or {}),
                   triggers=triggers, notify=dict(d.get("notify") or {"on": ["failed", "blocked"]}),
                   description=d.get("description"), sha256=d.get("sha256", ""))
