"""Render the real window offscreen to the PNGs used by README.md and docs/.

    python docs/screenshots/make_screenshots.py

Uses a throwaway store and config folder; runs real jobs so the Jobs dock shows real rows.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent.parent
HERE = Path(os.environ.get("MODELYARD_SHOTS_DIR", Path(__file__).resolve().parent))  # where the PNGs go
sys.path.insert(0, str(ROOT / "app"))
tmp = Path(tempfile.mkdtemp(prefix="modelyard-shots-"))
os.environ["MODELYARD_CONFIG_DIR"] = str(tmp / "config")
os.environ["MODELYARD_USER"] = "ada"

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from modelyard.core.jobs import housekeeping as maintenance  # noqa: E402
from modelyard.core.store import Store  # noqa: E402
from modelyard.ui.app import create_application  # noqa: E402
from modelyard.ui.main_window import MainWindow  # noqa: E402
from modelyard.ui.common.settings import open_settings  # noqa: E402


def wait(ms: int) -> None:
    """Let the window run ``ms``, and then until its client of the core has answered every read
    and write asked of it (panels show what they read off the main thread)."""
    from modelyard.ui.common.client import CoreClient

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()
    while any(c.busy for c in CoreClient.instances()):
        QApplication.processEvents()
        QTimer.singleShot(10, loop.quit)
        loop.exec()


def dark_palette():
    from PySide6.QtGui import QColor, QPalette

    pal = QPalette()
    for role, colour in (
        (QPalette.ColorRole.Window, "#1e1f22"), (QPalette.ColorRole.WindowText, "#dfe1e5"),
        (QPalette.ColorRole.Base, "#2b2d30"), (QPalette.ColorRole.AlternateBase, "#313338"),
        (QPalette.ColorRole.Text, "#dfe1e5"), (QPalette.ColorRole.Button, "#2b2d30"),
        (QPalette.ColorRole.ButtonText, "#dfe1e5"), (QPalette.ColorRole.Highlight, "#2f65ca"),
        (QPalette.ColorRole.HighlightedText, "#ffffff"), (QPalette.ColorRole.PlaceholderText, "#8c8f94"),
    ):
        pal.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText, QPalette.ColorRole.Text):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6f737a"))
    return pal


def churn_csv(path: Path, *, n: int = 5000, seed: int = 7, drift: bool = False) -> Path:
    """The churn dataset; ``drift`` makes a later batch where customers are older, on the pro plan
    more often, and call support more."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    tenure = rng.gamma(2.0, 12.0, n).round(1)
    plans = [.3, .35, .35] if drift else [.5, .35, .15]
    df = pd.DataFrame({
        "customer_id": [f"C{i:06d}" for i in range(n)],
        "region": rng.choice(["north", "south", "east", "west", "islands"], n, p=[.3, .3, .2, .18, .02]),
        "plan": rng.choice(["basic", "plus", "pro"], n, p=plans),
        "age": rng.integers(30 if drift else 18, 85, n),
        "tenure_months": tenure,
        "monthly_fee": rng.normal(42, 11, n).round(2),
        "support_calls": rng.poisson(2.6 if drift else 1.4, n),
        "signup_date": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
        "churned": np.where(rng.random(n) < 0.08 + 0.004 * (24 - np.minimum(tenure, 24)), "yes", "no"),
    })
    df.loc[rng.random(n) < 0.06, "monthly_fee"] = np.nan
    df.to_csv(path, index=False)
    return path


def datasets_screens(window: MainWindow) -> None:
    panel = window.datasets_panel
    window.show_panel(0)
    wait(50)
    window.grab().save(str(HERE / "panel-datasets-empty.png"))
    from modelyard.core.datasets import service as ds

    run_to_end(window, ds.import_spec(churn_csv(tmp / "churn.csv"), {"target": "churned"}))
    wait(100)
    panel.profile_view.selectRow(4)
    while panel.detail is None:  # the chart is built once pyqtgraph has loaded in the background
        wait(50)
    wait(100)
    window.grab().save(str(HERE / "panel-datasets-profile.png"))
    panel.tabs.setCurrentIndex(1)
    panel.preview_view.scrollTo(panel.preview_model.index(2500, 0))
    wait(100)
    window.grab().save(str(HERE / "panel-datasets-preview.png"))
    panel.tabs.setCurrentIndex(2)
    ds.create_split(window.store, panel.version.id, test=0.2, validation=0.1, method="stratified", seed=42)
    panel.refresh()
    panel.tabs.setCurrentIndex(2)
    wait(50)
    window.grab().save(str(HERE / "panel-datasets-splits.png"))
    panel.tabs.setCurrentIndex(0)


def experiments_screens(window: MainWindow) -> None:
    import math
    import random

    from modelyard.core.experiments import tracking

    rng = random.Random(3)
    for i, (model, depth) in enumerate([("random_forest", 6), ("random_forest", 12), ("hist_gradient_boosting", 4),
                                        ("logistic_regression", 0), ("hist_gradient_boosting", 8),
                                        ("random_forest", 20), ("extra_trees", 10), ("svm", 0)]):
        with tracking.start_run("churn", store=window.store, name=f"{model}-{i}",
                                tags={"team": "risk" if i % 2 else "growth"}) as run:
            run.log_params({"model": model, "max_depth": depth, "seed": 42})
            quality = 0.70 + 0.03 * (i % 5) + rng.random() * 0.02
            for step in range(60):
                run.log_metric("val_loss", 0.8 * math.exp(-step / (12 + i)) + 0.35 - quality / 4 + rng.random() * 0.01,
                               step=step)
            run.log_metrics({"f1": quality, "roc_auc": quality + 0.08, "accuracy": quality + 0.05})
    panel = next(p for p in window.panels if p.title == "Experiments")
    window.show_panel(1)
    panel.refresh()
    while panel.full is None:
        wait(20)
    panel.filter_edit.setText('metrics.f1 > 0.72 and params.model != "svm"')
    wait(400)
    panel.runs_view.selectRow(1)
    panel.detail_tabs.setCurrentIndex(1)
    panel.metric_combo.setCurrentText("val_loss")
    wait(200)
    window.grab().save(str(HERE / "panel-experiments.png"))
    # a real model trained from the churn dataset (a job in a child process), then its evaluation
    from modelyard.core.experiments.training.spec import TrainSpec, train_spec_job

    for n_estimators in (40, 120):
        spec = TrainSpec(dataset="churn@v1", model="random_forest", target="churned", experiment="churn-models",
                         params={"n_estimators": n_estimators}, run_name=f"forest-{n_estimators}",
                         slice_columns=["region"])
        run_to_end(window, train_spec_job(spec))
    panel.filter_edit.setText('params.model = "random_forest" and tags.team != "risk"')
    panel.filter_edit.setText("")
    panel._apply_filter_text()
    panel.refresh()
    while panel.full is None or len(panel.full) < 10:
        wait(50)
    wait(200)
    panel.runs_view.selectRow(0)
    panel.detail_tabs.setCurrentIndex(2)
    window.jobs_dock.hide()  # room for the evaluation, as a user reading it would make
    wait(400)
    window.grab().save(str(HERE / "panel-experiments-evaluation.png"))
    window.jobs_dock.show()
    from modelyard.ui.experiments.compare import CompareDialog

    dialog = CompareDialog(window.store, [panel.runs_model.run_id(0), panel.runs_model.run_id(1)], window)
    dialog.resize(1100, 680)
    dialog.show()
    wait(300)
    dialog.grab().save(str(HERE / "compare-runs.png"))
    dialog.close()


def registry_screens(window: MainWindow) -> None:
    from modelyard.core.registry import versions as registry
    from modelyard.core.experiments import tracking

    runs = tracking.search_runs("churn-models", store=window.store, order_by="start_time ASC")
    first, second = runs["run_id"].tolist()[:2]
    registry.register(window.store, first, "churn", comment="first forest")
    registry.set_alias(window.store, "churn@v1", "champion", comment="baseline for the March campaign")
    registry.register(window.store, second, "churn", comment="more trees")
    registry.set_gates(window.store, "churn", {"min_metrics": {"accuracy": 0.8},
                                               "beat_champion": {"metric": "f1_macro", "higher_is_better": True}},
                       comment="team policy: beat the champion on the same split")
    registry.set_alias(window.store, "churn@v2", "challenger", comment="shadow it for a week")
    registry.set_stage(window.store, "churn@v1", "Production", comment="go live", force=True)
    from modelyard.core.registry import cards

    cards.set_card_notes(window.store, "churn@v2", comment="written with the risk team",
                         intended_use="Rank customers by churn risk for the retention team's monthly call list. "
                                      "Not for pricing or credit decisions.",
                         notes="Trained on 2023-2025 sign-ups; customers from the islands are rare (2%), so "
                               "its per-region metrics there are noisy.")
    panel = window.registry_panel
    window.show_panel(2)
    panel.refresh(select="churn")
    panel.select_version("churn@v2")
    wait(200)
    window.grab().save(str(HERE / "panel-registry.png"))
    panel.tabs.setCurrentIndex(1)
    wait(100)
    window.grab().save(str(HERE / "panel-registry-timeline.png"))
    panel.tabs.setCurrentWidget(panel.lineage_tab)
    wait(200)
    window.grab().save(str(HERE / "panel-registry-lineage.png"))
    panel.tabs.setCurrentWidget(panel.card_tab)
    window.jobs_dock.hide()
    wait(200)
    window.grab().save(str(HERE / "panel-registry-card.png"))
    window.jobs_dock.show()
    panel.tabs.setCurrentIndex(0)


def monitoring_screens(window: MainWindow) -> None:
    from modelyard.core.monitoring import drift
    from modelyard.core.monitoring import reports

    panel = next(p for p in window.panels if p.title == "Monitoring")
    window.show_panel(3)
    panel.refresh(select="churn")
    for i, drifted in enumerate((False, True, True)):
        path = churn_csv(tmp / f"churn-batch-{i + 1}.csv", n=3000, seed=20 + i, drift=drifted)
        run_to_end(window, drift.check_spec("churn@champion", batch_path=path))
    wait(300)
    panel.refresh(select="churn")
    panel.checks_view.selectRow(0)
    names = [f["name"] for f in panel.features_model.rows]
    if "age" in names:
        panel.features_view.selectRow(names.index("age"))
    window.jobs_dock.hide()
    wait(300)
    window.grab().save(str(HERE / "panel-monitoring.png"))
    if "plan" in names:
        panel.features_view.selectRow(names.index("plan"))
        wait(200)
        window.grab().save(str(HERE / "panel-monitoring-category.png"))
    panel.tabs.setCurrentWidget(panel.timeline_tab)
    wait(300)
    window.grab().save(str(HERE / "panel-monitoring-timeline.png"))
    panel.tabs.setCurrentIndex(0)
    window.jobs_dock.show()
    reports.export_check_html(window.store, panel.checks_model.rows[0]["id"], HERE / "drift-report.html")


def run_to_end(window: MainWindow, spec) -> None:
    handle = window.start_job(spec)
    while handle.running:
        wait(20)


def main() -> None:
    app = create_application()
    store = Store.open(tmp / "team-store")
    # Real jobs only: a verify that finds a damaged artifact, a compact, and a verify caught
    # mid-way through 400 MB of artifacts.
    with store.write() as s:
        damaged = store.artifacts.put_bytes(b"model v1" * 1000, session=s)
    store.artifacts.path(damaged.sha256).write_bytes(b"tampered")
    window = MainWindow(store, open_settings())
    size = os.environ.get("MODELYARD_SHOTS_SIZE", "1280x800")  # e.g. 1024x640 to check a small screen
    window.resize(*(int(v) for v in size.split("x")))
    window.show()
    run_to_end(window, maintenance.verify_spec())
    store.artifacts.path(damaged.sha256).write_bytes(b"model v1" * 1000)  # restored from backup
    run_to_end(window, maintenance.compact_spec())
    with store.write() as s:
        for i in range(40):
            store.artifacts.put_bytes(i.to_bytes(4, "big") * 2_500_000, session=s)
    running = window.start_job(maintenance.verify_spec())
    while running.running and (running.fraction or 0) < 0.35:
        QApplication.processEvents()
    window.jobs_panel.select_job(running.job_id)
    window.grab().save(str(HERE / "main-window.png"))
    while running.running:
        wait(20)
    for i, name in enumerate(("datasets", "experiments", "registry", "monitoring")):
        if name in ("datasets", "experiments"):
            continue
        window.show_panel(i)
        wait(50)
        window.grab().save(str(HERE / f"panel-{name}.png"))
    datasets_screens(window)
    experiments_screens(window)
    registry_screens(window)
    monitoring_screens(window)
    window.show_panel(0)
    window.jobs_panel.select_job(running.job_id - 2)  # the failed verify, with its error
    app.setPalette(dark_palette())
    wait(100)
    window.grab().save(str(HERE / "main-window-dark.png"))
    window.close()
    store.close()
    QApplication.processEvents()
    print(f"screenshots written to {HERE}")


if __name__ == "__main__":
    main()
