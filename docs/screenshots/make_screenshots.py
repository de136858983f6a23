"""Render the real window offscreen: the images README.md uses, and every panel, tab and dialog at
1440x900 and 1024x640, light and dark, for a look after each UI change.

    python docs/screenshots/make_screenshots.py                 # everything (~2 min)
    MODELYARD_SHOTS_SIZE=1024x640 python docs/screenshots/...   # one size, both themes
    MODELYARD_SHOTS_SIZE=docs python docs/screenshots/...       # only README's images
    MODELYARD_SHOTS_DIR=/tmp/shots python docs/screenshots/...  # elsewhere than docs/screenshots

Writes ``main-window.png``, ``panel-experiments.png``, ``panel-registry.png``,
``panel-monitoring.png`` and ``panel-pipelines.png`` (1280x800, light: README's) and ``<size>/<theme>/<panel>-<tab>.png`` and
``<size>/<theme>/dialog-<name>.png``, and last the Train dialog's choice of where a search runs
(``<size>/light/dialog-train-optuna.png``: an Optuna study on a team's scheduler;
``dialog-train-cluster.png``: a grid on a local Dask cluster) and that grid search filling the runs
table while it runs (``<size>/light/experiments-live-search.png``) (not kept in git: regenerate
them to look).

Uses a throwaway store and config folder. The store is the acceptance tests' populated store
(tests/factories.build_populated_store: datasets, a search, CV runs, champion and challenger,
drift checks), and then the window is driven through the lifecycle as a user drives it: a CSV
dropped on the window (the Import dialog), a model trained from the Train dialog, registered,
served, exported as a bundle, a batch checked and the model retrained; a pipeline run shown as it
goes, and its file with problems; churn's prediction log holds twelve hours of traffic with a
shadow challenger (the Monitoring panel's Live tab). The panels, tabs and
dialogs are shown with the steps the acceptance tests use (tests/ui/acceptance/tour.py).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent.parent
HERE = Path(os.environ.get("MODELYARD_SHOTS_DIR", Path(__file__).resolve().parent))  # where the PNGs go
for folder in (ROOT / "app", ROOT / "tests", ROOT / "tests" / "ui" / "acceptance"):
    sys.path.insert(0, str(folder))
tmp = Path(tempfile.mkdtemp(prefix="modelyard-shots-"))
os.environ["MODELYARD_CONFIG_DIR"] = str(tmp / "config")
os.environ["MODELYARD_USER"] = "ada"

import tour  # noqa: E402
from modelyard.ui.app import create_application  # noqa: E402
from modelyard.ui.common.settings import open_settings  # noqa: E402
from modelyard.ui.main_window import MainWindow  # noqa: E402
from PySide6.QtWidgets import QApplication, QDialog, QWidget  # noqa: E402

SIZES = [tuple(int(v) for v in s.split("x")) for s in os.environ.get("MODELYARD_SHOTS_SIZE", "1440x900,1024x640").split(",")
         if s.strip() and s.strip() != "docs"]  # "docs": only README's images
DOCS_SIZE = (1280, 800)


def dark_palette():
    from PySide6.QtGui import QColor, QPalette

    pal = QPalette()
    for role, colour in (
        (QPalette.ColorRole.Window, "#1e1f22"), (QPalette.ColorRole.WindowText, "#dfe1e5"),
        (QPalette.ColorRole.Base, "#2b2d30"), (QPalette.ColorRole.AlternateBase, "#313338"),
        (QPalette.ColorRole.Text, "#dfe1e5"), (QPalette.ColorRole.Button, "#2b2d30"),
        (QPalette.ColorRole.ButtonText, "#dfe1e5"), (QPalette.ColorRole.Highlight, "#2f65ca"),
        (QPalette.ColorRole.HighlightedText, "#ffffff"), (QPalette.ColorRole.PlaceholderText, "#8c8f94"),
        (QPalette.ColorRole.ToolTipBase, "#2b2d30"), (QPalette.ColorRole.ToolTipText, "#dfe1e5"),
        (QPalette.ColorRole.Link, "#6ea0ff"),
    ):
        pal.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText, QPalette.ColorRole.Text):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6f737a"))
    return pal


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "tab"


def save(widget: QWidget, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    widget.grab().save(str(path))


def wait_jobs(window: MainWindow, timeout_ms: int = 180_000) -> None:
    tour.wait_until(lambda: window.runner.running_count() == 0, timeout_ms, "the jobs to end")
    tour.settle(window)


def answer_modal(kind: str, act) -> dict:  # type: ignore[no-untyped-def]
    """Once a modal ``kind`` shows, ``act(dialog)`` in its own event loop (it may be exec()'d)."""
    from PySide6.QtCore import QTimer

    state: dict = {}
    started = time.monotonic()

    def poll() -> None:
        d = QApplication.activeModalWidget()
        if d is not None and d.isVisible() and type(d).__name__ == kind:
            tour.pump(400)
            act(d)
            state["done"] = True
        elif time.monotonic() - started < 20:
            QTimer.singleShot(30, poll)
        else:
            state["timeout"] = True

    QTimer.singleShot(0, poll)
    return state


# --------------------------------------------------------------------------- the lifecycle


def lifecycle(window: MainWindow, made: dict) -> None:
    """Drop, import, train (a search), register, serve, export, check a batch, retrain: through
    the window."""
    from factories import churn_frame, drifted_batch, drop_files, write_batch

    datasets, experiments = tour.panel(window, "datasets"), tour.panel(window, "experiments")
    registry, monitoring = tour.panel(window, "registry"), tour.panel(window, "monitoring")
    csv = write_batch(tmp / "files", churn_frame(800, seed=21), "customers-2026.csv")

    def import_ok(d: QDialog) -> None:
        save(d, HERE / "lifecycle" / "import-dialog-after-drop.png")
        d.accept()

    state = answer_modal("ImportDialog", import_ok)
    window.show_panel(0)
    drop_files(window, [csv])  # a drop opens the Import dialog (issue 13); older builds imported at once
    tour.wait_until(lambda: "done" in state or "timeout" in state or window.runner.running_count() > 0, 30_000,
                    "the drop to open the Import dialog or start an import")
    wait_jobs(window)
    print(f"  drop: {'the Import dialog opened' if 'done' in state else 'NO Import dialog (imported at once)'}")
    datasets.refresh(select="customers-2026")
    tour.settle(window)

    window.show_panel(1)
    tour.settle(window)
    experiments.open_train_dialog(datasets.version.id if datasets.version is not None else None)
    tour.wait_until(lambda: getattr(experiments, "train_dialog", None) is not None
                    and experiments.train_dialog.isVisible(), 15_000, "the Train dialog")
    dialog = experiments.train_dialog
    tour.wait_until(lambda: not dialog.loading_label.isVisible(), 30_000, "the Train dialog's form")
    if dialog.target_combo.currentText() != "churned":  # the import did not set it: the user picks it
        print(f"  Train dialog: target {dialog.target_combo.currentText()!r}, not 'churned': picked by hand")
        dialog.target_combo.setCurrentIndex(dialog.target_combo.findText("churned"))
        tour.pump(300)
    i = dialog.search_combo.findData("random")  # a small random search: a parent run and its trials
    if i >= 0:
        dialog.search_combo.setCurrentIndex(i)
        dialog.trials_spin.setValue(3)
        dialog.space_edit.setText('{"max_depth": [3, 6, 12], "n_estimators": [20, 40]}')
    tour.pump(300)
    save(dialog, HERE / "lifecycle" / "train-dialog-search.png")
    outcomes: list = []
    window.runner.job_finished.connect(lambda _handle, outcome: outcomes.append(outcome))
    dialog.train_button.click()
    wait_jobs(window)
    experiments.refresh()
    tour.settle(window, 300)
    trained = [o for o in outcomes if o.ok and isinstance(o.result, dict) and "run_id" in o.result]
    run_id = trained[-1].result["run_id"] if trained else None  # the search's run (the best trial's model)
    if run_id is None:
        print(f"  training from the Train dialog did not end well: {[o.error for o in outcomes]}")
    if run_id:
        window.show_panel(2)
        registry.register_run(run_id, "customers", "first model of the customers file")
        tour.wait_until(lambda: registry.version is not None and registry.version.name == "customers", 15_000,
                        "the registered version")
        tour.settle(window)
    window.show_panel(2)
    registry.refresh(select="churn")
    tour.settle(window)
    registry.select_version(made["versions"]["champion"])
    tour.settle(window)
    registry.start_serving(made["versions"]["champion"])
    tour.wait_until(lambda: registry.server is not None, 60_000, "the server")
    tour.pump(1200)  # a stats poll
    save(window, HERE / "lifecycle" / "registry-serving.png")
    made["serving_shot"] = True
    registry.stop_serving()
    registry.export_bundle(str(tmp / "files" / "churn-v1.mybundle"), force=True)
    wait_jobs(window)
    save(window, HERE / "lifecycle" / "registry-exported.png")

    window.show_panel(3)
    batch = write_batch(tmp / "files", drifted_batch(400, seed=4), "churn-batch-april.csv")
    monitoring.check_file(batch, model="churn")
    wait_jobs(window)
    monitoring.refresh(select="churn")
    tour.settle(window, 300)
    if monitoring.check is not None:
        monitoring.retrain(data="batch")
        wait_jobs(window)
    save(window, HERE / "lifecycle" / "monitoring-retrained.png")
    for d in tour.visible_dialogs():  # "retrained" message boxes
        d.reject()
    tour.settle(window)


def pipelines(window: MainWindow, made: dict) -> None:
    """The Pipelines panel with a run going (a step running, the steps after it waiting) and with
    its file broken on disk (the problems beside the YAML); the file is put back after."""
    panel = tour.panel(window, "pipelines")
    window.show_panel(window.panels.index(panel))
    panel.refresh(select="churn-weekly")
    tour.settle(window)
    panel.run_pipeline({"pause": 4}, ask=False, jobs=2)
    tour.wait_until(lambda: panel.graph.state_of("train-forest") == "running", 30_000, "a running step")
    tour.pump(800)
    save(window, HERE / "lifecycle" / "pipelines-running.png")
    save(window, HERE / "panel-pipelines.png")  # README's (the window is at DOCS_SIZE here)
    wait_jobs(window)
    path = made["work"] / "churn-weekly.yml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('{command: "echo compare"}', '{comand: "echo compare"}')
                    .replace("needs: [compare]", "needs: [compair]"), encoding="utf-8")
    panel.tabs.setCurrentWidget(panel.file_view)
    tour.wait_until(lambda: bool(panel.file_view.problems), 15_000, "the file's problems")
    panel.file_view.problems_view.selectRow(0)
    tour.pump(300)
    save(window, HERE / "lifecycle" / "pipelines-problems.png")
    path.write_text(text, encoding="utf-8")
    tour.wait_until(lambda: not panel.file_view.problems, 15_000, "the file to read valid again")
    panel.tabs.setCurrentIndex(0)


def cluster_search(window: MainWindow, made: dict) -> None:
    """The Train dialog's choice of where a search runs, at each size (``<size>/light/dialog-train-
    optuna.png``: an Optuna study with a time budget on a team's scheduler; ``dialog-train-cluster.png``:
    a grid search on a local Dask cluster of 2 workers), then that grid search started and shown
    while it runs, its trials filling the runs table (``<size>/light/experiments-live-search.png``)."""
    experiments = tour.panel(window, "experiments")
    space = '{"n_estimators": [10, 20, 40, 2500, 2500, 2500, 2500], "max_depth": [6]}'
    for n, (width, height) in enumerate(SIZES):
        window.resize(width, height)
        tour.show(window, "experiments", made)
        before = experiments.train_dialog
        experiments.open_train_dialog()
        tour.wait_until(lambda: experiments.train_dialog is not before and experiments.train_dialog is not None
                        and experiments.train_dialog.isVisible() and experiments.train_dialog.form_ready, 30_000,
                        "the Train dialog and its form")
        dialog = experiments.train_dialog
        dialog.resize(min(980, width - 40), min(600, height - 60))  # as it opens on a screen of that size
        # an Optuna study with a time budget, on the team's scheduler
        dialog.search_combo.setCurrentIndex(dialog.search_combo.findData("optuna"))
        dialog.trials_spin.setValue(40)
        dialog.timeout_spin.setValue(900)
        dialog.cv_spin.setValue(3)
        dialog.where.choose("address")
        dialog.where.address_edit.setText("tcp://10.0.0.5:8786")
        tour.pump(300)
        save(dialog, HERE / f"{width}x{height}" / "light" / "dialog-train-optuna.png")
        # the search started below: a grid on a local cluster of 2 workers
        dialog.cv_spin.setValue(0)
        dialog.search_combo.setCurrentIndex(dialog.search_combo.findData("grid"))
        dialog.space_edit.setText(space)
        dialog.space_edit.setCursorPosition(0)
        dialog.where.choose("local")
        dialog.where.workers_spin.setValue(2)
        tour.pump(300)
        save(dialog, HERE / f"{width}x{height}" / "light" / "dialog-train-cluster.png")
        if n < len(SIZES) - 1:
            dialog.reject()
            continue
        lines: list[str] = []
        window.runner.job_started.connect(lambda handle: handle.logged.connect(lines.append))
        experiment = dialog.experiment_combo.currentText()
        dialog.train_button.click()
        tour.wait_until(lambda: any(line.startswith("Run ") for line in lines), 120_000, "the search's run")
        parent = next(line for line in lines if line.startswith("Run ")).split()[1]
        tour.wait_until(lambda: experiment in [row[0] for row in experiments.experiments_model.rows], 15_000,
                        "the search's experiment")
        names = [row[0] for row in experiments.experiments_model.rows]
        experiments.experiments_view.selectRow(names.index(experiment))
        model = experiments.runs_model
        tour.wait_until(lambda: model.row_of(parent) >= 0 and model.trials(model.row_of(parent)) >= 3, 120_000,
                        "trials in the runs table")
        experiments.select_run(parent)
        running = window.runner.running_count() > 0
        for w, h in SIZES:
            window.resize(w, h)
            tour.settle(window, 400)
            save(window, HERE / f"{w}x{h}" / "light" / "experiments-live-search.png")
        print(f"  live search: {model.trials(model.row_of(parent))} trials shown, "
              f"{'still running' if running and window.runner.running_count() else 'ENDED before the shots'}")
        wait_jobs(window)


# --------------------------------------------------------------------------- the renders


def review(store, made: dict) -> None:  # type: ignore[no-untyped-def]
    """churn's challenger made ready for review (its card's review fields, a fairness rule, its
    evidence against the champion) and a request for it by another member, on a store that
    requires reviews: the Review tab then has a request to show, with its evidence."""
    from modelyard.core.registry import cards
    from modelyard.core.registry import versions as registry
    from modelyard.core.registry.review import compute, policy, requests

    ref = made["versions"]["challenger"]
    cards.set_card_notes(store, ref, comment="ready for review",
                         out_of_scope_uses="Pricing or credit decisions; business accounts.",
                         known_limitations="Customers younger than 20 are rare in the training rows.",
                         ethical_considerations="A call from the retention team is an offer, never a penalty; "
                                                "accuracy is compared across plans before each promotion.")
    registry.set_gates(store, "churn", {"min_metrics": {"accuracy": 0.6}, "sensitive_columns": ["plan"],
                                        "fairness": [{"column": "plan", "metric": "accuracy", "max_gap": 0.1}]},
                       comment="team policy, with a fairness rule")
    compute.compute_evidence(store, ref, n_boot=300)
    policy.set_review_required(store, True, comment="every promotion is reviewed")
    os.environ["MODELYARD_USER"] = "ben"
    try:
        made["request"] = requests.request_promotion(store, ref, reason="More trees: better recall on the March "
                                                                        "batch, same accuracy across plans.").id
    finally:
        os.environ["MODELYARD_USER"] = "ada"


def live_log(store, made: dict) -> None:  # type: ignore[no-untyped-def]
    """Twelve hours of churn's traffic in its prediction log (ages and plans shift from the ninth hour on),
    answered by the champion with the challenger in shadow, and labels for the first ten hours: the
    Monitoring panel's Live tab then has rate, latency, errors, drift windows, realised
    performance and the champion vs challenger comparison to show."""
    import numpy as np
    import pandas as pd
    from factories import churn_frame
    from modelyard.core.monitoring import live
    from modelyard.core.registry import versions as registry
    from modelyard.core.serving.predlog import PredictionLog

    champion = registry.get_version(store, made["versions"]["champion"])
    challenger = registry.get_version(store, made["versions"]["challenger"])
    models = {v.id: registry.load_model(store, v.ref) for v in (champion, challenger)}
    start = time.time() // 3600 * 3600 - 11 * 3600
    rng = np.random.default_rng(4)
    labels = []
    with PredictionLog(store, "churn", segment_rows=5000) as plog:
        for h in range(12):
            n = 240 + 30 * h
            frame = churn_frame(n, 500 + h, shift=12.0 if h >= 8 else 0.0,
                                plans=(0.25, 0.3, 0.45) if h >= 8 else (0.6, 0.3, 0.1))
            frame["id"] = [f"c{h}-{i}" for i in range(n)]
            inputs = frame[["age", "plan", "visits"]]
            answers = {vid: np.asarray(m.predict(inputs)) for vid, m in models.items()}
            for r in range(0, n, 3):
                at = start + h * 3600 + r * 3600 / n
                took = float(rng.lognormal(np.log(0.004), 0.35))
                status = 400 if rng.random() < 0.02 else 200
                keys = frame["id"].iloc[r:r + 3].tolist()
                plog.submit(inputs=inputs.iloc[r:r + 3], outputs=answers[champion.id][r:r + 3] if status == 200 else None,
                            version_id=champion.id, version_ref=champion.ref, latency_s=took, status=status,
                            keys=keys, at=at)
                if status == 200:
                    plog.submit(inputs=inputs.iloc[r:r + 3], outputs=answers[challenger.id][r:r + 3],
                                version_id=challenger.id, version_ref=challenger.ref, latency_s=took * 1.7,
                                status=200, route="shadow", keys=keys, at=at + 0.001)
            if h < 10:
                labels.append(frame.sample(frac=0.4, random_state=h)[["id", "churned"]])
    path = made["work"] / "churn-outcomes.csv"
    pd.concat(labels).to_csv(path, index=False)
    live.add_labels(store, path, key="id", model="churn")


def render_all(window: MainWindow, made: dict, folder: Path) -> int:
    """Every panel with each of its tabs, and every dialog: ``folder/<panel>-<tab>.png``."""
    count = 0
    for room in tour.ROOMS:
        p = tour.show(window, room, made)
        for path in tour.walk_tabs(window, p):
            if path == ("as opened",) and tour._top_tab_widgets(p):
                continue  # the same as its first tab
            name = room if path == ("as opened",) else f"{room}-{'-'.join(slug(t) for t in path)}"
            save(window, folder / f"{name}.png")
            count += 1
    for name, (_cls, prepare, ready) in tour.dialog_openers(made["work"]).items():
        trigger = prepare(window, made)
        state = tour.capture_dialog(trigger, lambda d, n=name: save(d, folder / f"dialog-{n}.png"), ready=ready)
        if "timeout" in state:
            print(f"  {folder.name}: the {name} dialog did not open")
        else:
            count += 1
    return count


def docs_images(window: MainWindow, made: dict) -> None:
    """The images README.md shows, at 1280x800 in the light palette."""
    window.resize(*DOCS_SIZE)
    tour.show(window, "datasets", made)
    save(window, HERE / "main-window.png")
    for room in ("experiments", "registry", "monitoring"):
        tour.show(window, room, made)
        save(window, HERE / f"panel-{room}.png")


def main() -> None:
    from factories import build_populated_store
    from modelyard.core.monitoring import reports

    started = time.monotonic()
    app = create_application()
    light = app.palette()
    made = build_populated_store(tmp / "team-store", tmp / "work")
    made["work"] = tmp / "work"
    made["bundle"] = tour.export_bundle(made["store"], made["versions"]["challenger"], tmp / "work" / "churn-v2.mybundle")
    store = made["store"]
    review(store, made)
    live_log(store, made)
    print(f"store built in {time.monotonic() - started:.0f} s")
    window = MainWindow(store, open_settings())
    window.settings.setValue("confirm/quit_with_jobs", "false")
    window.resize(*DOCS_SIZE)
    window.show()
    tour.settle(window)
    lifecycle(window, made)
    pipelines(window, made)
    print(f"lifecycle driven in {time.monotonic() - started:.0f} s")
    docs_images(window, made)
    for width, height in SIZES:
        window.resize(width, height)
        for theme, palette in (("light", light), ("dark", dark_palette())):
            app.setPalette(palette)
            tour.settle(window)
            n = render_all(window, made, HERE / f"{width}x{height}" / theme)
            print(f"{width}x{height} {theme}: {n} images ({time.monotonic() - started:.0f} s)")
        app.setPalette(light)
    cluster_search(window, made)
    reports.export_check_html(store, made["checks"]["drifted"], HERE / "drift-report.html")
    for d in tour.visible_dialogs():
        d.reject()
    window.close()
    store.close()
    QApplication.processEvents()
    print(f"screenshots written to {HERE} in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
    sys.exit(0)

