"""Window B of tests/ui/test_ui_live.py: ``python tests/live_window_child.py STORE`` opens the real
main window on the store (offscreen; the database follows ``MODELYARD_DB_URL``) on its
Experiments panel, and says on stdout, one line each, what it shows as it changes:

* ``ready`` once the runs table and the registry's models list are read (after one ``run`` line
  per run and one ``champion`` line per model shown then),
* ``run RUN_ID`` when a run appears in the runs table,
* ``champion MODEL TEXT`` when the models list's Champion column of MODEL shows TEXT (``v2``),
* ``changed TOPICS`` when the window's client says something changed.

Commands on stdin: ``alias REF ALIAS`` moves an alias through the Registry panel's own action
(the write its Set alias… dialog makes), ``quit``. It quits by itself after two minutes.
"""

from __future__ import annotations

import os
import queue
import sys
import tempfile
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["MODELYARD_CONFIG_DIR"] = tempfile.mkdtemp(prefix="modelyard-window-b-")  # not window A's settings


def say(*parts: object) -> None:
    print(*parts, flush=True)


def main(location: str) -> None:
    from modelyard.core.store import Store
    from modelyard.ui.app import create_application
    from modelyard.ui.common.settings import open_settings
    from modelyard.ui.main_window import MainWindow
    from PySide6.QtCore import QTimer

    app = create_application()
    store = Store.open(location)
    window = MainWindow(store, open_settings())
    window.settings.setValue("confirm/quit_with_jobs", "false")
    window.resize(1280, 800)
    window.show()
    experiments, registry = window.panel_of("experiments"), window.panel_of("registry")
    window.show_panel(window.panels.index(experiments))
    window.client.changed.connect(lambda topics: say("changed", ",".join(sorted(topics))))

    commands: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [commands.put(line) for line in sys.stdin], daemon=True).start()
    runs: set[str] = set()
    champions: dict[str, str] = {}
    ready = [False]

    def look() -> None:
        if not ready[0]:
            if experiments.full is None or not registry.models_model.rowCount() or window.client.busy:
                return
            ready[0] = True
            shown = True
        else:
            shown = False
        model = experiments.runs_model
        for row in range(model.rowCount()):
            run_id = model.run_id(row)
            if run_id not in runs:
                runs.add(run_id)
                say("run", run_id)
        models = registry.models_model
        for row, info in enumerate(models.rows):
            text = models.index(row, 2).data()
            if champions.get(info.name) != text:
                champions[info.name] = text
                say("champion", info.name, text)
        if shown:
            say("ready")
        while not commands.empty():
            cmd, *args = commands.get().split()
            if cmd == "alias":
                registry.set_alias(args[1], "moved in window B", ref=args[0])
            elif cmd == "quit":
                window.close()
                app.quit()
                return

    timer = QTimer(window)
    timer.timeout.connect(look)
    timer.start(20)
    QTimer.singleShot(120_000, app.quit)
    app.exec()
    timer.stop()
    store.close()


if __name__ == "__main__":
    main(sys.argv[1])
