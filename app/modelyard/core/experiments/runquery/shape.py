"""How a view lays out a :class:`~modelyard.core.experiments.runquery.table.RunsTable` (plain
data, no store): a search's trials nested under their parent run (:func:`nest`), and the metric
columns in the order a data scientist looks for them (:func:`metric_order`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from modelyard.core.experiments.runquery.table import RunsTable

BEST_TAG = "tags.best_trial_run_id"
NOT_SEARCHED = frozenset({"params.trial"})  # the trial's number: it varies, but is not a searched param  # set on a search's parent run by the training job
# the metrics a task is judged by, most looked-at first (test rows, then cross-validation, then validation)
PRIMARY = {"classification": ("accuracy", "f1_macro", "f1", "roc_auc", "balanced_accuracy", "precision_macro",
                              "recall_macro", "log_loss"),
           "regression": ("r2", "rmse", "mae", "mape")}


@dataclass
class Nesting:
    """Per row of the nested table: ``depth`` (0: a run; 1: a trial under the run above it),
    ``parent_row`` (-1 at depth 0), ``children`` (how many trials follow), ``best`` (the trial
    the search chose), and per parent row the params that vary between its trials."""

    depth: np.ndarray
    parent_row: np.ndarray
    children: np.ndarray
    best: np.ndarray
    searched: dict[int, list[str]] = field(default_factory=dict)


def _flat(n: int) -> Nesting:
    """The nesting of ``n`` runs none of which is another's child."""
    import numpy as np

    return Nesting(np.zeros(n, dtype=np.int8), np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64),
                   np.zeros(n, dtype=bool))


def nest(table: RunsTable) -> tuple[RunsTable, Nesting]:
    """``table`` reordered so that each run's child runs follow it (in the table's order), with
    where each row sits. A child whose parent is not in the table (filtered out) stays on its own
    row; one level only (a child of a child sits at depth 0 under nothing)."""
    import numpy as np

    n = len(table)
    ids = table.column("run_id")
    parents = table.column("parent_run_id") if "parent_run_id" in table.columns else np.full(n, None, dtype=object)
    if not n or not np.any(parents != None):  # noqa: E711 - numpy's elementwise test; no child runs: the table as it is
        return table, _flat(n)
    at = {rid: i for i, rid in enumerate(ids.tolist())}
    has_parent = [i for i, p in enumerate(parents.tolist()) if p is not None and p in at]
    top_level = np.ones(n, dtype=bool)
    kids: dict[int, list[int]] = {}
    for i in has_parent:
        p = at[parents[i]]
        if parents[p] is None or parents[p] not in at:  # the parent is shown at the top level
            kids.setdefault(p, []).append(i)
            top_level[i] = False
    if not kids:
        return table, _flat(n)
    order: list[int] = []
    depth: list[int] = []
    parent_row: list[int] = []
    for i in np.flatnonzero(top_level).tolist():
        row = len(order)
        order.append(i)
        depth.append(0)
        parent_row.append(-1)
        for c in kids.get(i, ()):
            order.append(c)
            depth.append(1)
            parent_row.append(row)
    nested = table._take(np.asarray(order, dtype=np.int64))
    info = Nesting(np.asarray(depth, dtype=np.int8), np.asarray(parent_row, dtype=np.int64),
                   np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool))
    best_ids = nested.column(BEST_TAG) if BEST_TAG in nested.columns else None
    new_ids = nested.column("run_id")
    params = [c for c in nested.columns if c.startswith("params.") and c not in NOT_SEARCHED]
    for row in np.flatnonzero(info.depth == 0).tolist():
        rows = [row + 1 + k for k in range(len(kids.get(order[row], ())))]
        if not rows:
            continue
        info.children[row] = len(rows)
        if best_ids is not None and best_ids[row] is not None:
            for r in rows:
                info.best[r] = new_ids[r] == best_ids[row]
        info.searched[row] = [c.split(".", 1)[1] for c in params
                              if len({nested.cell(c, r) for r in rows} - {None}) > 1]
    return nested, info


def metric_order(table: RunsTable) -> list[str]:
    """The table's metric columns: the primary metrics of its runs' tasks first (each with its
    cross-validation and validation forms; with both tasks, classification's and regression's
    alternate, the task most runs have first), then the rest by name."""
    from collections import Counter

    metrics = [c for c in table.columns if c.startswith("metrics.")]
    tasks = Counter(v for v in table.column("params.task").tolist() if v) if "params.task" in table.columns else Counter()
    ranked = [t for t, _ in tasks.most_common() if t in PRIMARY] or list(PRIMARY)
    wanted: list[str] = []
    for i in range(max(len(keys) for keys in PRIMARY.values())):  # each task's first metric, then its second...
        for task in ranked:
            keys = PRIMARY[task]
            for form in (keys[i], f"cv_{keys[i]}", f"val_{keys[i]}") if i < len(keys) else ():
                if f"metrics.{form}" in metrics and f"metrics.{form}" not in wanted:
                    wanted.append(f"metrics.{form}")
    return wanted + sorted(c for c in metrics if c not in wanted)
