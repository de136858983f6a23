"""Run by test_no_block.py with sys.executable: a fresh interpreter opens the window on a store
(argv[1]) with a dataset, makes the first stratified split from the Datasets panel and opens the
Train dialog and trains from it (a new stratified split), with a 5 ms main-thread timer running. Prints, as its last line, JSON:
``{"sklearn_before": bool, "steps": {step: largest gap in ms}, "cpu": {step: the main thread's
CPU ms in that gap}}``.

Imports nothing heavy before the window (no pandas, no scikit-learn, no tests/factories)."""

from __future__ import annotations

import json
import os
import sys
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MODELYARD_CONFIG_DIR", tempfile.mkdtemp(prefix="modelyard-fresh-config-"))


def main(store_root: str) -> dict:
    from fit import GapWatch
    from modelyard.core.store import Store
    from modelyard.ui.app import create_application
    from modelyard.ui.common.settings import open_settings
    from modelyard.ui.main_window import MainWindow
    from tour import panel, settle, wait_until

    app = create_application()
    store = Store.open(store_root)
    window = MainWindow(store, open_settings())
    window.settings.setValue("confirm/quit_with_jobs", "false")
    window.resize(1280, 800)
    window.show()
    datasets = panel(window, "datasets")
    settle(window, 300)
    wait_until(lambda: datasets.version is not None, 30_000, "the dataset to show")
    settle(window, 300)
    report = {"sklearn_before": "sklearn" in sys.modules, "steps": {}}
    steps: dict[str, float] = report["steps"]

    def step(name: str, action, until, timeout_ms: int = 60_000) -> None:
        with GapWatch() as gaps:
            gaps.mark(name)
            action()
            wait_until(until, timeout_ms, name)
            settle(window, 200)
        steps[name] = round(gaps.largest, 1)
        report.setdefault("cpu", {})[name] = round(gaps.largest_cpu, 1)

    def split() -> None:
        datasets.tabs.setCurrentWidget(datasets.splits_table.parentWidget()) \
            if datasets.tabs.indexOf(datasets.splits_table.parentWidget()) >= 0 else datasets.tabs.setCurrentIndex(2)
        datasets.split_method.setCurrentText("stratified")
        datasets.split_button.click()

    step("the first stratified split (Datasets › Splits › Create split)", split,
         lambda: datasets.splits_model.rowCount() > 0)
    experiments = panel(window, "experiments")
    window.show_panel(window.panels.index(experiments))
    settle(window, 300)
    step("the first Train dialog", experiments.open_train_dialog,
         lambda: getattr(experiments, "train_dialog", None) is not None
         and not experiments.train_dialog.loading_label.isVisible())
    step("train from the dialog on a new stratified split until its run shows",
         experiments.train_dialog.train_button.click,
         lambda: window.runner.running_count() == 0 and experiments.runs_model.rowCount() > 0, 120_000)
    settle(window, 100)
    window.close()
    store.close()
    app.processEvents()
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
