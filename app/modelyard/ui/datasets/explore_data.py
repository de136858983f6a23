"""What the Explore view draws, computed on a reading thread (no widgets here): each row's colour in
the scatter, the legend, and one column's counts per class (a histogram of a number, bars of a
category). The view's main thread only hands these arrays to plot items it already has.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
BINS = 24
RAMP_STEPS = 12  # colours of a regression target's ramp in the scatter
LEGEND_RAMP_STEPS = 8


@dataclass(eq=False)
class Counts:
    """One column's counts per class: ``kind`` "numeric" (``edges`` of the bins), "categorical"
    (``labels`` of the bars) or "empty" (nothing to count)."""

    column: str
    kind: str
    counts: list[np.ndarray] = field(default_factory=list)  # one per class, in the classes' order
    edges: np.ndarray | None = None
    labels: list[str] = field(default_factory=list)


@dataclass(eq=False)  # compared by identity: a newer read is another sample
class Prepared:
    """A sample with what drawing it needs (see the module docstring)."""

    sample: Any  # core.datasets.explore.ExploreSample
    class_colours: list[str]  # one per class (the distributions' colours)
    scatter_colours: list[str]  # one per colour of the scatter (the classes', or a regression ramp's steps)
    scatter_rows: list[np.ndarray]  # the rows drawn in each scatter colour
    legend: str  # rich text
    counts: dict[str, Counts] = field(default_factory=dict)  # column -> counts, filled as columns are shown


def prepare(sample: Any, first: str | None) -> Prepared:
    """Colours, legend and the counts of the column shown first (on a reading thread)."""
    names, codes = sample.group_names, sample.groups
    class_colours = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
    scatter_colours, scatter_codes = class_colours, codes
    items = "".join(f"<span style='color:{c}'>■</span>&nbsp;{html.escape(n)}&nbsp;&nbsp; "
                    for n, c in zip(names, class_colours))
    target = sample.target
    if sample.task == "regression" and target in sample.numeric:  # the scatter's ramp, then the quartiles'
        t = sample.numeric[target]
        ok = ~np.isnan(t)
        lo, hi = (float(t[ok].min()), float(t[ok].max())) if ok.any() else (0.0, 1.0)
        steps = ((np.nan_to_num(t, nan=lo) - lo) / ((hi - lo) or 1.0) * RAMP_STEPS).astype(np.int64)
        scatter_codes = np.where(ok, np.minimum(steps, RAMP_STEPS - 1), -1)
        scatter_colours = _ramp((np.arange(RAMP_STEPS) + 0.5) / RAMP_STEPS)
        legend_steps = "".join(f"<span style='color:{c}'>■</span>"
                               for c in _ramp(np.arange(LEGEND_RAMP_STEPS) / (LEGEND_RAMP_STEPS - 1)))
        items = (f"Scatter: {html.escape(target)} {lo:.3g}&nbsp;{legend_steps}&nbsp;{hi:.3g}"
                 f"&nbsp;&nbsp;·&nbsp;&nbsp;Distributions: {items}")
    prepared = Prepared(sample, class_colours, list(scatter_colours),
                        [np.flatnonzero(scatter_codes == k) for k in range(len(scatter_colours))],
                        items if target else "")
    if first is not None:
        prepared.counts[first] = count(sample, first)
    return prepared


def count(sample: Any, column: str) -> Counts:
    """``column``'s counts per class (on a reading thread)."""
    codes, n = sample.groups, len(sample.group_names)
    if column in sample.numeric:
        v = sample.numeric[column]
        ok = ~np.isnan(v)
        if not ok.any():
            return Counts(column, "empty")
        edges = np.histogram_bin_edges(v[ok], bins=BINS)
        return Counts(column, "numeric", [np.histogram(v[ok & (codes == k)], bins=edges)[0] for k in range(n)],
                      edges=edges)
    if column in sample.categorical:
        top, pos = sample.categories[column]
        per = [np.bincount(pos[(codes == k) & (pos >= 0)], minlength=len(top)) for k in range(n)]
        return Counts(column, "categorical", per, labels=list(top))
    return Counts(column, "empty")


def _ramp(at: np.ndarray) -> list[str]:
    from pyqtgraph import colormap

    rgba = colormap.get("viridis").map(at, mode="byte")
    return ["#{:02x}{:02x}{:02x}".format(*(int(c) for c in row[:3])) for row in np.atleast_2d(rgba)]
