"""The Registry panel's actions on the selected version: its lineage and model card, promotion
requests (Make champion / Production by a member who needs a review asks for one instead), bundles
(exported and imported as jobs), batch scoring (a child-process job) and serving over HTTP (a
child process, its statistics polled off the main thread).

A mixin of :class:`modelyard.ui.registry.panel.RegistryPanel`; store reads run off the main
thread through the panel's client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import plural
from modelyard.core.registry import versions as registry
from modelyard.ui.common import theme
from modelyard.ui.common.jobrunner import JobHandle
from modelyard.ui.common.widgets import show_error

BUNDLE_SUFFIX = ".mybundle"
BUNDLE_JOB_KINDS = ("bundle.export", "bundle.import")
SCORE_KIND = "score"


class VersionActions:
    """What the user does with a version (a mixin: ``self`` is the panel)."""

    # ------------------------------------------------------------------ lineage and card
    def show_lineage(self) -> None:
        if self.client is None or self.version is None:
            return
        ref = self.version.ref

        def read(store: Any) -> Any:
            from modelyard.core.registry import lineage

            return lineage.version_lineage(store, ref)

        self.client.read("registry.lineage", read, lambda graph: self._lineage_read(ref, graph),
                         lambda exc: show_error(self, "Cannot show the lineage", exc))

    def _lineage_read(self, ref: str, graph: Any) -> None:
        if self.version is None or self.version.ref != ref:
            return
        from modelyard.ui.registry.lineage_view import LineageView

        if self.lineage_view is None:
            self.lineage_hint.hide()
            self.lineage_view = LineageView(self.lineage_tab)
            self.lineage_view.node_activated.connect(self._lineage_node_activated)
            self.lineage_layout.addWidget(self.lineage_view)
        self.lineage_view.set_graph(graph)

    def _lineage_node_activated(self, node_type: str, node_id: str) -> None:
        if node_type == "run":
            self._show_run(node_id)
        elif node_type == "dataset_version" and self.client is not None:
            self.client.navigate.emit("datasets", ("show_version", int(node_id)))

    def show_card(self) -> None:
        if self.client is None or self.version is None:
            return
        ref = self.version.ref

        def read(store: Any) -> str:
            from modelyard.core.registry import cards

            return cards.render_html(cards.model_card(store, ref), edit_hint=cards.WINDOW_EDIT_HINT)

        self.client.read("registry.card", read, lambda html: self._card_read(ref, html),
                         lambda exc: show_error(self, "Cannot show the model card", exc))

    def _card_read(self, ref: str, html: str) -> None:
        if self.version is None or self.version.ref != ref:
            return
        if self.card_browser is None:
            from PySide6.QtWidgets import QTextBrowser

            self.card_browser = QTextBrowser(self.card_tab)
            self.card_browser.setObjectName("cardBrowser")
            self.card_browser.setOpenExternalLinks(True)
            # the page is as wide as the tab (hashes break anywhere): it scrolls down, never sideways
            from PySide6.QtCore import Qt
            from PySide6.QtGui import QTextOption

            self.card_browser.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
            self.card_browser.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            self.card_layout.insertWidget(0, self.card_browser, 1)
        self.card_html = html
        scroll = self.card_browser.verticalScrollBar().value()
        self.card_browser.setHtml(self.card_html)
        self.card_browser.verticalScrollBar().setValue(scroll)

    def edit_card_notes(self, intended_use: str | None = None, notes: str | None = None,
                        comment: str | None = None, **texts: str) -> bool:
        """Edit the card's texts: the four review fields and the notes (``texts``: any of
        ``out_of_scope_uses``, ``known_limitations``, ``ethical_considerations``). Given a comment
        and a text, saves them; else opens the editor on the version's current texts. One write,
        off the main thread, with one comment (the card's revision goes up by one)."""
        if self.client is None or self.version is None:
            return False
        ref = self.version.ref

        def save(values: dict[str, str], comment: str) -> None:
            from modelyard.core.registry import cards

            def saved(_result: Any) -> None:
                self._after_change(ref)
                self.tabs.setCurrentWidget(self.card_tab)
                self.show_card()

            self._write(lambda store: cards.set_card_notes(store, ref, **values, comment=comment), saved,
                        "Cannot save the model card")

        def ask(fresh: registry.ModelVersionInfo) -> None:
            from modelyard.ui.registry.dialogs import NotesDialog

            card = fresh.card or {}
            current = card.get("notes") if isinstance(card.get("notes"), dict) else {}
            revision = card.get("notes_revision") if isinstance(card.get("notes_revision"), int) else 0
            dialog = NotesDialog(ref, current, self, revision=revision)
            if dialog.exec() == NotesDialog.DialogCode.Accepted:
                save(dialog.texts(), dialog.comment_text())

        given = {k: v for k, v in ({"intended_use": intended_use, "notes": notes} | texts).items() if v is not None}
        if comment is None or not given:
            self.client.read("registry.ask", lambda store: registry.get_version(store, ref), ask,
                             lambda exc: show_error(self, "Cannot edit the model card", exc))
        else:
            save(given, comment)
        return True

    def export_card(self, path: str | None = None) -> str | None:
        """Write the card of the selected version to ``path`` (asked for when not given), off the
        main thread; returns the path it is written to."""
        if self.client is None or self.version is None:
            return None
        ref = self.version.ref
        if path is None:
            from PySide6.QtWidgets import QFileDialog

            suggested = f"{self.version.name}-v{self.version.version}-card.html"
            path, _ = QFileDialog.getSaveFileName(self, "Export the model card", suggested, "HTML (*.html)")
            if not path:
                return None
        target = path

        def write(store: Any) -> Any:
            from modelyard.core.registry import cards

            return cards.export_html(store, ref, target, edit_hint="")

        def written(written_to: Any) -> None:
            if self.client is not None:  # the window says where, with "Show in folder"
                self.client.saved.emit(f"Model card {ref}", str(written_to))

        self.client.read(f"registry.card-export.{target}", write, written,
                         lambda exc: show_error(self, "Cannot export the model card", exc))
        return path

    # ------------------------------------------------------------------ promotion requests
    def make_champion(self, ref: str | None = None) -> bool:
        """Make ``ref`` (default: the selected version) champion: at once for an approver, through a
        request for a member who needs a review (``review_needed``: core ``review_required`` as the
        Review tab last read it)."""
        if self.review_needed:
            return self.request_promotion(ref, registry.CHAMPION)
        return self.set_alias(registry.CHAMPION, ref=ref)

    def request_promotion(self, ref: str | None = None, target: str = "champion", reason: str | None = None,
                          *, ask: bool = True) -> bool:
        """Ask an approver to move ``ref`` (default: the selected version) to ``target``. With ``ask``
        the Request dialog shows first (``reason`` filled in); without, the request is made at once."""
        ref = ref or (self.version.ref if self.version is not None else None)
        if self.client is None or ref is None:
            return False
        if ask:
            from modelyard.ui.registry.request_dialog import RequestDialog

            dialog = RequestDialog(self, ref, target, reason or "")
            self.request_dialog = dialog
            accepted = dialog.exec() == RequestDialog.DialogCode.Accepted
            self.request_dialog = None
            if not accepted:
                return False
            target, reason = dialog.values()
        if not reason:
            return False
        chosen_target, text = target, reason

        def do(store: Any) -> Any:
            from modelyard.core.registry.review import requests

            return requests.request_promotion(store, ref, chosen_target, reason=text)

        def made(info: Any) -> None:
            self.tabs.setCurrentWidget(self.review_tab)
            self.review_tab.shown_key = None
            self.review_tab.request = info  # selected once the list is read again (the changed signal)
            if self.client is not None:
                self.client.message.emit(f"Asked the approvers to make {info.candidate} {info.target}.", 10_000)

        self._write(do, made, "Cannot request the promotion")
        return True

    # ------------------------------------------------------------------ bundles
    def export_bundle(self, path: str | None = None, signing_key: str | None = None, *,
                      force: bool | None = None) -> JobHandle | None:
        """Export the selected version as a bundle. An existing file is replaced only once the user
        agreed: in the save dialog (which asks) or, for a path given otherwise, in a question here
        (``force`` answers it in advance)."""
        if self.store is None or self.version is None:
            return None
        from modelyard.core import bundles

        confirmed: Path | None = None
        if path is None:
            from PySide6.QtWidgets import QFileDialog

            suggested = f"{self.version.name}-v{self.version.version}{BUNDLE_SUFFIX}"
            path, _ = QFileDialog.getSaveFileName(self, f"Export {self.version.ref} as a bundle", suggested,
                                                  f"Modelyard bundle (*{BUNDLE_SUFFIX})")
            if not path:
                return None
            confirmed = Path(path)  # the dialog asked before returning an existing file
        try:
            target = bundles.target_path(path)
        except ModelyardError as exc:
            show_error(self, "Cannot export the bundle there", exc)
            return None
        if target.exists() and force is None:
            force = target == confirmed or QMessageBox.question(
                self, "Replace the file?", f"{target} already exists. Replace it with the bundle of "
                f"{self.version.ref}?", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel) == QMessageBox.StandardButton.Yes
            if not force:
                return None
        return self.start_job(bundles.export_bundle_spec(self.version.ref, path, signing_key=signing_key,
                                                         force=bool(force)))

    def import_bundle(self, path: str | Path | None = None, *, trust_pickle: bool | None = None,
                      name: str | None = None) -> JobHandle | None:
        """Verify a bundle, show what it holds, and import it (a job) once the user agrees."""
        if self.client is None:
            return None
        if path is None:
            from PySide6.QtWidgets import QFileDialog

            path, _ = QFileDialog.getOpenFileName(self, "Import a bundle", "", f"Modelyard bundle (*{BUNDLE_SUFFIX})")
            if not path:
                return None
        if trust_pickle is not None:
            from modelyard.core import bundles

            return self.start_job(bundles.import_bundle_spec(str(path), name=name, trust_pickle=bool(trust_pickle)))
        chosen = str(path)

        def inspect(store: Any) -> Any:  # verifies every checksum: off the main thread
            from modelyard.core import bundles

            return bundles.inspect_bundle(chosen, store=store)

        self.client.read(f"registry.inspect.{chosen}", inspect, lambda report: self._ask_import(chosen, report, name),
                         lambda exc: show_error(self, f"{Path(chosen).name} cannot be imported", exc))
        return None

    def _ask_import(self, path: str, report: Any, name: str | None) -> JobHandle | None:
        from modelyard.core import bundles
        from modelyard.ui.registry.dialogs import BundleImportDialog

        dialog = BundleImportDialog(Path(path), report, self)
        if dialog.exec() != BundleImportDialog.DialogCode.Accepted:
            return None
        trust_pickle, name = dialog.trust_pickle(), dialog.name() or name
        return self.start_job(bundles.import_bundle_spec(path, name=name, trust_pickle=bool(trust_pickle)))

    # ------------------------------------------------------------------ batch scoring
    def score_file(self, path: str | Path | None = None, ref: str | None = None) -> JobHandle | None:
        """Predict a data file with ``ref`` (default: the selected version) in a child-process job."""
        if self.store is None:
            return None
        ref = ref or (self.version.ref if self.version else None)
        if ref is None:
            return None
        from modelyard.core.serving import scoring

        if path is None:
            from PySide6.QtWidgets import QFileDialog

            path, _ = QFileDialog.getOpenFileName(
                self, f"Score a file with {ref}", "",
                "Data files (*.csv *.tsv *.txt *.parquet *.pq *.xlsx *.json *.jsonl *.ndjson);;All files (*)")
            if not path:
                return None
        return self.start_job(scoring.score_spec(ref, path=path, process=True))

    def _scored(self, result: dict[str, Any]) -> None:
        self.last_scored = result
        out = result.get("output") or {}
        if self.client is not None:  # the Datasets panel re-reads on the job's change signal
            self.client.message.emit(
                f"Predictions of {(result.get('model') or {}).get('ref', '')} stored as {out.get('ref', '')}", 15_000)

    # ------------------------------------------------------------------ streaming
    def open_stream_dialog(self, path: str | None = None) -> Any:
        """Registry › Stream…: follow a JSON Lines file with the selected version (a dialog)."""
        if self.store is None or self.version is None:
            return None
        from modelyard.ui.registry.stream_dialog import StreamDialog

        dialog = StreamDialog(self.store, self.version.ref, self, events=path)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.stream_dialog = dialog
        dialog.destroyed.connect(lambda *_: setattr(self, "stream_dialog", None))
        dialog.show()
        return dialog

    # ------------------------------------------------------------------ serving
    # The child process is waited for only on the panel's worker (one thread, in order): its start
    # (the model loads), its statistics and its stop (it records serve_stop, then exits: ~0.5-1 s).
    # Only closing the window waits for it (shutdown).
    def toggle_serving(self) -> None:
        if self._server_starting is not None or self._server_stopping is not None:
            return  # the button is disabled meanwhile; a queued second click does nothing
        if self.server is not None:
            self.stop_serving()
        else:
            self.start_serving()

    def start_serving(self, ref: str | None = None, port: int = 0) -> bool:
        """Serve ``ref`` (default: the model's champion, else the selected version) in a child process."""
        if self.store is None or self._server_starting is not None:
            return False
        if ref is None:
            info = self._model_info(self.model_name)
            if info is None:
                return False
            ref = (f"{info.name}@{registry.CHAMPION}" if registry.CHAMPION in info.aliases
                   else self.version.ref if self.version else None)
        if ref is None:
            return False
        if self._server_stopping is not None:  # another server is stopping: this one starts after it
            self._serve_after_stop = (ref, port)
            return True
        from modelyard.core import serving

        self.serve_button.setEnabled(False)
        self.serving_label.setText(f"Starting a server for <b>{ref}</b>…")
        self.serving_label.show()
        proc = serving.ServerProcess(ref, store=self.store.root, db_url=self.store.db_url, port=port)
        self._server_starting = proc  # stopped by shutdown() if the window closes before it is ready
        # start() waits for the child's "ready" line (it loads the model): off the main thread
        self._serve_reader().submit(proc.start, lambda started: self._serving_started(ref, started),
                                    self._serving_failed)
        return True

    def _serve_reader(self) -> Any:
        if self._stats_reader is None:
            from modelyard.ui.common.background import BackgroundReader

            self._stats_reader = BackgroundReader(self)
        return self._stats_reader

    def _serving_started(self, ref: str, proc: Any) -> None:
        self._server_starting = None
        self.server, self.server_ref = proc, ref
        self._set_serve_button("Stop serving", "stop")
        self._show_next_step()
        self._show_stats(None)
        self._stats_timer.start()

    def _serving_failed(self, error: Exception) -> None:
        self._server_starting = None
        self.serve_button.setEnabled(True)
        self.serving_label.hide()
        show_error(self, "Cannot start the server", error)

    def _set_serve_button(self, text: str, icon: str, enabled: bool = True) -> None:
        self.serve_button.setText(text)
        self.serve_button.setIcon(theme.icon(icon))
        self.serve_button.setEnabled(enabled)
        self.actions_bar.set_button_hidden(self.serve_button, False)  # its text changed: lay the bar out again

    def _poll_stats(self) -> None:
        server = self.server
        if server is None:
            self._stats_timer.stop()
            return
        reader = self._serve_reader()
        if reader.busy:
            return
        reader.submit(server.stats, self._show_stats, lambda _e: self._show_stats(None))

    def _show_stats(self, stats: dict[str, Any] | None) -> None:
        if self.server is None:
            return
        url = self.server.url
        text = f"Serving <b>{self.server_ref}</b> at <a href='{url}/metadata'>{url}</a>"
        if stats:
            if stats.get("version") is not None:
                text += f" (v{stats['version']})"
            text += f" · {plural(int(stats.get('requests') or 0), 'request')}"
            if stats.get("errors"):
                text += f" · {plural(int(stats['errors']), 'error')}"
            latency = stats.get("latency_ms") or {}
            if latency.get("p50") is not None:
                text += f" · latency p50 {latency['p50']:.1f} ms, p99 {latency.get('p99') or 0:.1f} ms"
        self.serving_label.setText(text)
        self.serving_label.show()

    def stop_serving(self) -> None:
        """Stop the server on the worker: the button reads "Stopping…" (disabled) until the child
        has exited; then "Serve" again (and a start asked for meanwhile begins)."""
        server, self.server = self.server, None
        self._stats_timer.stop()
        if server is None:
            return
        self._server_stopping = server
        self._set_serve_button("Stopping…", "stop", enabled=False)
        self.serving_label.setText(f"Stopping the server for <b>{self.server_ref}</b>…")

        def stop() -> int | None:
            code = server.stop()
            server.cleanup()
            return code

        # after a statistics read in flight (one worker thread); its answer is dropped
        self._serve_reader().submit(stop, lambda _code: self._serving_stopped(server),
                                    lambda exc: self._serving_stopped(server, exc))

    def _serving_stopped(self, server: Any, error: Exception | None = None) -> None:
        if self._server_stopping is server:
            self._server_stopping = None
        self._set_serve_button("Serve", "play")
        self.serving_label.hide()
        self._show_next_step()
        if error is not None:
            show_error(self, "Cannot stop the server", error)
        pending, self._serve_after_stop = self._serve_after_stop, None
        if pending is not None:
            self.start_serving(*pending)

    def _shutdown_serving(self) -> None:
        """Closing the window: wait for the worker, then stop every server (closing may wait)."""
        self._stats_timer.stop()
        self._serve_after_stop = None
        if self._stats_reader is not None:
            self._stats_reader.close()  # a start, a statistics read or a stop in flight ends first
        for server in (self.server, self._server_starting, self._server_stopping):
            if server is not None:
                server.stop()
                server.cleanup()
        self.server = self._server_starting = self._server_stopping = None
