"""A member's window in a process of its own (tests/ui/registry/test_review_tab.py):
``python tests/review_window_child.py STORE_FOLDER DB_URL`` opens the real main window on the team
store as the login of ``DB_URL`` (offscreen) on its Registry panel, and says on stdout, one line
each, what it shows as it changes:

* ``ready`` once the models list and the Review tab are read (after the lines of what they show then),
* ``champion MODEL TEXT`` when the models list's Champion column of MODEL shows TEXT (``v2``),
* ``request ID STATUS`` when the Review tab lists request ID with STATUS (open, approved…),
* ``buttons APPROVE_ENABLED WITHDRAW_VISIBLE | APPROVE_TOOLTIP`` after ``select ID``.

Commands on stdin, done with real clicks and keys in the window (QTest):
``request REF REASON…`` selects REF in the versions table, opens the Review tab, clicks
"Request promotion…", types the reason into the dialog and clicks its OK; ``select ID`` clicks the
request's row; ``quit``. It quits by itself after three minutes.
"""

from __future__ import annotations

import os
import queue
import sys
import tempfile
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["MODELYARD_CONFIG_DIR"] = tempfile.mkdtemp(prefix="modelyard-member-window-")


def say(*parts: object) -> None:
    print(*parts, flush=True)


def main(location: str, db_url: str) -> None:
    from modelyard.core.store import Store
    from modelyard.ui.app import create_application
    from modelyard.ui.common.settings import open_settings
    from modelyard.ui.main_window import MainWindow
    from modelyard.ui.registry.panel import RegistryPanel
    from modelyard.ui.registry.request_dialog import RequestDialog
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    app = create_application()
    store = Store.open(location, db_url=db_url, create=False)
    window = MainWindow(store, open_settings())
    window.settings.setValue("confirm/quit_with_jobs", "false")
    window.resize(1280, 800)
    window.show()
    panel = next(p for p in window.panels if isinstance(p, RegistryPanel))
    window.show_panel(window.panels.index(panel))
    review = panel.review_tab

    commands: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [commands.put(line) for line in sys.stdin], daemon=True).start()
    champions: dict[str, str] = {}
    statuses: dict[int, str] = {}
    ready = [False]
    pending: list[tuple[str, list[str]]] = []  # a command waiting for the window

    def click(widget) -> None:  # type: ignore[no-untyped-def]
        QTest.mouseClick(widget, Qt.MouseButton.LeftButton)

    def click_row(view, row: int) -> None:  # type: ignore[no-untyped-def]
        rect = view.visualRect(view.model().index(row, 1))
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, rect.center())

    def fill_request(reason: str) -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, RequestDialog) or dialog.readiness is None:
            QTimer.singleShot(20, lambda: fill_request(reason))
            return
        QTest.keyClicks(dialog.reason, reason)
        if not dialog.ok_button.isEnabled():
            say("refused", dialog.ok_button.toolTip())
            dialog.reject()
            return
        click(dialog.ok_button)

    def run(cmd: str, args: list[str]) -> bool:
        """Do ``cmd``; False while the window is not there yet (tried again on the next tick)."""
        if cmd == "request":
            ref, reason = args[0], " ".join(args[1:])
            if panel.version is None or panel.version.ref != ref:
                if panel.version is None or window.client.busy:
                    return False
                row = next((i for i, v in enumerate(panel.versions_model.rows) if v.ref == ref), -1)
                if row < 0:
                    return False
                click_row(panel.versions_view, row)
                return False
            panel.tabs.setCurrentWidget(review)
            QTimer.singleShot(0, lambda: fill_request(reason))
            click(review.request_button)  # modal: fill_request types and clicks while it shows
        elif cmd == "select":
            row = review.model.row_of(int(args[0]))
            if row < 0 or window.client.busy:
                return False
            panel.tabs.setCurrentWidget(review)
            click_row(review.table, row)
            say("buttons", review.approve_button.isEnabled(), review.withdraw_button.isVisible(), "|",
                review.approve_button.toolTip())
        return True

    def look() -> None:
        first = False
        if not ready[0]:
            if not panel.models_model.rowCount() or review.state is None or window.client.busy:
                return
            ready[0] = first = True
        for row, info in enumerate(panel.models_model.rows):
            text = panel.models_model.index(row, 2).data()
            if champions.get(info.name) != text:
                champions[info.name] = text
                say("champion", info.name, text)
        for r in review.model.rows:
            if statuses.get(r.id) != r.status:
                statuses[r.id] = r.status
                say("request", r.id, r.status)
        if first:  # after what it shows then
            say("ready")
        while not commands.empty():
            line = commands.get().split()
            if line and line[0] == "quit":
                window.close()
                app.quit()
                return
            if line:
                pending.append((line[0], line[1:]))
        if pending and QApplication.activeModalWidget() is None and run(*pending[0]):
            pending.pop(0)

    timer = QTimer(window)
    timer.timeout.connect(look)
    timer.start(20)
    QTimer.singleShot(180_000, app.quit)
    app.exec()
    timer.stop()
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
