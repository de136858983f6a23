"""What the search tests share (test_search_optuna, test_search_cluster): a reporter that keeps
what a job says, and a store holding the dataset "blobs" (600 rows, a yes/no label)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from modelyard.core.datasets.service import import_frame
from modelyard.core.store import Store


class Recorder:
    """A job's reporter (and, for run_study, its context): the progress messages and log lines."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.lines: list[str] = []

    def progress(self, fraction: float | None, message: str) -> None:
        self.messages.append(message)

    def log(self, line: str) -> None:
        self.lines.append(line)

    def check_cancelled(self) -> None:
        pass


def blobs(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    df["label"] = np.where(X[:, 0] + X[:, 1] * 0.5 + rng.normal(scale=0.7, size=n) > 0, "yes", "no")
    return df


@contextlib.contextmanager
def blobs_store(path: Path) -> Iterator[Store]:
    """A store at ``path`` with :func:`blobs` imported as the dataset "blobs" (target "label")."""
    store = Store.open(path)
    try:
        import_frame(store, blobs(), "blobs", target="label")
        yield store
    finally:
        store.close()
