"""A training job's bar: the fit, whose length nobody knows, reports "unknown" (a busy bar), not a
fraction that sits still for the whole fit."""

from __future__ import annotations

from pathlib import Path

from modelyard.core.datasets.service import import_frame, sample_frame
from modelyard.core.experiments.training.spec import TrainSpec
from modelyard.core.experiments.training.train import train_spec_job
from modelyard.core.jobs.runner import JobSpec, run_job
from modelyard.core.store import Store


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[float | None, str]] = []

    def progress(self, fraction: float | None, message: str) -> None:
        self.calls.append((fraction, message))

    def log(self, line: str) -> None:
        pass


def test_the_fit_phase_reports_unknown_progress_and_the_bar_moves_on_after_it(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    try:
        frame, target = sample_frame("iris")
        import_frame(store, frame, "iris", target=target)
        spec = train_spec_job(TrainSpec(dataset="iris@v1", model="random_forest", params={"n_estimators": 5}, cv=2))
        rec = Progress()
        outcome = run_job(store, JobSpec(spec.func, spec.title, spec.params, process=False, kind=spec.kind),
                          reporter=rec)
        assert outcome.ok, outcome.error
        fit = next(i for i, (_f, msg) in enumerate(rec.calls) if msg.startswith("Fitting RandomForestClassifier"))
        assert rec.calls[fit][0] is None, rec.calls[fit]
        before = [f for f, _m in rec.calls[:fit] if f is not None]
        after = [f for f, _m in rec.calls[fit + 1:] if f is not None]
        assert before and max(before) <= 0.62 + 1e-9
        assert after and min(after) >= 0.72 - 1e-9, "after the fit the bar shows the evaluation's fractions"
    finally:
        store.close()
