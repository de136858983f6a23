"""The Registry panel's changes: aliases, stages and gates (a promotion blocked by a gate offers an
audited override), registering runs, and the versions' context menu.

A mixin of :class:`modelyard.ui.registry.panel.RegistryPanel`; every change asks for a comment
(:mod:`modelyard.ui.registry.dialogs`) and is written off the main thread through the panel's
client, by :mod:`modelyard.core.registry.versions`, which audits it. Each alias, stage and gate
change carries the revision of the model the user decided on (read when the dialog opened); a
change refused because another member changed the model meanwhile shows the panel's stale bar
(:mod:`modelyard.ui.registry.stale`: who, when, Reload) instead of an error box.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtWidgets import QMenu

from modelyard.core.common.errors import (
    GateFailed,
    ModelyardError,
    ReviewRequired,
    StaleEditError,
)
from modelyard.core.registry import versions as registry
from modelyard.ui.common.widgets import show_error
from modelyard.ui.registry.dialogs import ChangeDialog, GatesDialog, override_gates

COMMON_ALIASES = ("champion", "challenger", "candidate", "shadow")


class RegistryChanges:
    """What the user changes in the registry (a mixin: ``self`` is the panel)."""

    def _ask(self, dialog: ChangeDialog) -> tuple[str, str] | None:
        if dialog.exec() != ChangeDialog.DialogCode.Accepted:
            return None
        return dialog.choice_text(), dialog.comment_text()

    def _write(self, do: Any, done: Any, title: str, what: str | None = None) -> None:
        """Run ``do(store)`` on the client's writing thread; ``done(result)`` after it landed."""
        assert self.client is not None
        self.client.write(do, done, lambda exc: self._refused(title, exc, what), changes="models")

    def _refused(self, title: str, exc: Exception, what: str | None = None) -> None:
        """A change the core refused: a stale one in the panel's bar (who, when, Reload), else a box."""
        if isinstance(exc, StaleEditError):
            self.stale_bar.show_refusal(exc, what)
        else:
            show_error(self, title, exc)

    def _promote(self, do: Any, what: str, comment: str, done: Any, review: Any = None) -> None:
        """Run a registry change off the main thread; a gate failure shows its reasons and offers
        an audited override; a move that needs a review calls ``review`` (the request dialog)."""
        assert self.client is not None

        def refused(exc: Exception) -> None:
            if review is not None and isinstance(exc, ReviewRequired):
                self.review_needed = True
                review()
                return
            if not isinstance(exc, GateFailed):
                self._refused("Cannot change the model", exc, what)
                return
            if override_gates(self, "Promotion blocked by a gate", exc.message, what, comment, "Override and promote"):
                self._write(lambda store: do(store, True), done, "Cannot promote", what)

        self.client.write(lambda store: do(store, False), done, refused, changes="models")

    def _after_change(self, ref: str | None = None) -> None:
        self.stale_bar.hide()
        if ref is not None:
            self.select_version(ref)
        else:
            self.refresh()
        self.changed.emit()

    def _with_version(self, ref: str, then: Any) -> None:
        """``then(version_info, model_info)`` for ``ref``: from what is shown, else read first."""
        model = self._model_info(self.version.name) if self.version is not None else None
        if self.version is not None and ref == self.version.ref and model is not None \
                and self.model_revision is not None:
            then(self.version, replace(model, revision=self.model_revision))
            return
        assert self.client is not None

        def read(store: Any) -> tuple[registry.ModelVersionInfo, registry.ModelInfo]:
            info = registry.get_version(store, ref)
            return info, registry.get_model(store, info.name)

        self.client.read("registry.ask", read, lambda answer: then(*answer),
                         lambda exc: show_error(self, "Cannot change the model", exc))

    def _change_version(self, ref: str | None, value: str | None, comment: str | None, dialog: Any,
                        write: Any, what: str) -> bool:
        """Move ``ref`` (default: the selected version) to ``value`` with ``comment`` through
        ``write(store, ref, value, comment=…, force=…)``, asking with ``dialog(ref, version, model)``
        for what is missing. False when nothing was asked of the store (no version, or the user
        cancelled); the change itself lands off the main thread."""
        if self.store is None:
            return False
        ref = ref or (self.version.ref if self.version else None)
        if ref is None:
            return False
        asked = [True]
        shown = self.model_name is not None and ref.partition("@")[0] == self.model_name

        def change(value: str, comment: str, revision: int | None) -> None:
            reviewed = (write, value) in ((registry.set_alias, registry.CHAMPION), (registry.set_stage, "Production"))
            if reviewed and self.review_needed:  # a member who needs a review asks for one instead
                self.request_promotion(ref, value, comment)
                return
            self._promote(lambda store, force: write(store, ref, value, comment=comment, force=force,
                                                     expected_revision=revision),
                          what.format(ref=ref, value=value), comment, lambda _r: self._after_change(ref),
                          review=(lambda: self.request_promotion(ref, value, comment)) if reviewed else None)

        def ask(info: registry.ModelVersionInfo, model: registry.ModelInfo) -> None:
            answer = self._ask(dialog(ref, info, model))  # decided on this revision of the model
            if answer is None:
                asked[0] = False
                return
            change(*answer, model.revision)

        if value is None or comment is None:
            self._with_version(ref, ask)
        else:
            change(value, comment, self.model_revision if shown else None)
        return asked[0]

    def set_alias(self, alias: str | None = None, comment: str | None = None, ref: str | None = None) -> bool:
        """Point ``alias`` at ``ref`` (default: the selected version), asking for what is missing."""

        def dialog(ref: str, _info: registry.ModelVersionInfo, model: registry.ModelInfo) -> ChangeDialog:
            holders = "".join(f"<br>• <b>{a}</b> is on v{n}" for a, n in model.aliases.items())
            choices = list(dict.fromkeys([*(a for a in COMMON_ALIASES), *model.aliases]))
            return ChangeDialog(f"Set an alias on {ref}",
                                f"Point an alias at <b>{ref}</b>. An alias is on one version at a time: "
                                f"setting it moves it off the version that has it.{holders}", self,
                                choice_label="Alias:", choices=choices, current=alias or registry.CHAMPION,
                                editable=True, ok_text="Set alias")

        return self._change_version(ref, alias, comment, dialog, registry.set_alias, "{ref} as {value}")

    def remove_alias(self, alias: str, comment: str | None = None) -> bool:
        if self.store is None or self.model_name is None:
            return False
        if comment is None:
            answer = self._ask(ChangeDialog(f"Remove the alias {alias}",
                                            f"Take <b>{alias}</b> off {self.model_name}.", self, ok_text="Remove"))
            if answer is None:
                return False
            comment = answer[1]
        name, revision = self.model_name, self.model_revision
        self._write(lambda store: registry.remove_alias(store, name, alias, comment=comment,
                                                        expected_revision=revision),
                    lambda _r: self._after_change(), "Cannot remove the alias", f"taking {alias} off {name}")
        return True

    def set_stage(self, stage: str | None = None, comment: str | None = None, ref: str | None = None) -> bool:
        """Move ``ref`` (default: the selected version) to ``stage``, asking for what is missing."""

        def dialog(ref: str, info: registry.ModelVersionInfo, _model: registry.ModelInfo) -> ChangeDialog:
            return ChangeDialog(f"Change the stage of {ref}",
                                f"<b>{ref}</b> is in stage <b>{info.stage}</b>. Moving to Production passes the "
                                "model's gates.", self, choice_label="Stage:", choices=list(registry.STAGES),
                                current=stage or info.stage, ok_text="Change stage")

        return self._change_version(ref, stage, comment, dialog, registry.set_stage, "{ref} to {value}")

    def edit_gates(self) -> bool:
        info = self._model_info(self.model_name)
        if self.store is None or info is None:
            return False
        revision = self.model_revision  # the gates the dialog starts from
        dialog = GatesDialog(info.name, self.versions_model.metric_keys_all(), info.gates, self)
        if dialog.exec() != GatesDialog.DialogCode.Accepted:
            return False
        name, gates, comment = info.name, dialog.gates(), dialog.comment_text()
        ref = self.version.ref if self.version else None
        self._write(lambda store: registry.set_gates(store, name, gates, comment=comment, expected_revision=revision),
                    lambda _r: self._after_change(ref), "Cannot change the gates", f"the gates of {name}")
        return True

    def register_run(self, run_id: str | None = None, name: str | None = None, comment: str | None = None) -> bool:
        """Register a run's model as the next version of ``name`` (asking for what is missing; what
        the dialogs offer is read off the main thread first)."""
        if self.client is None:
            return False
        if run_id is not None and name is not None:
            self._register(run_id, name, comment)
            return True
        self.client.read("registry.registrable",
                         lambda store: (registry.registrable_runs(store), [mi.name for mi in registry.list_models(store)]),
                         lambda answer: self._ask_registration(run_id, name, comment, *answer), self._read_failed)
        return True

    def _ask_registration(self, run_id: str | None, name: str | None, comment: str | None,
                          runs: list[dict[str, Any]], names: list[str]) -> None:
        if run_id is None and not runs:
            show_error(self, "Nothing to register", ModelyardError(
                "No run has logged a model yet.",
                hint="Train a model in the Experiments panel, or log one with run.log_model() in a script."))
            return
        if run_id is not None:
            label = f"run <b>{run_id[:12]}</b>"
            default = name or (self.model_name or (runs[0]["experiment"] if runs else ""))
            dialog = ChangeDialog("Register a model", f"Register the model of {label} as the next version of:",
                                  self, choice_label="Model name:", choices=names, current=default, editable=True,
                                  placeholder="What is this version? (optional)", ok_text="Register",
                                  comment_required=False)
            answer = self._ask(dialog)
            if answer is None:
                return
            name, comment = answer[0], answer[1] or comment
        else:
            from modelyard.ui.registry.dialogs import RegisterDialog

            rdialog = RegisterDialog(runs, names, self.model_name, self)
            if rdialog.exec() != RegisterDialog.DialogCode.Accepted:
                return
            run_id, name, comment = rdialog.run_id(), rdialog.name(), rdialog.comment_text()
        self._register(run_id, name, comment)

    def _register(self, run_id: str, name: str, comment: str | None) -> None:
        def registered(info: registry.ModelVersionInfo) -> None:
            self._next_ref = info.ref  # the panel says what comes next for it
            self._after_change(info.ref)
            self.show_panel()
            self.compute_evidence(info.ref)

        self._write(lambda store: registry.register(store, run_id, name, comment=comment or None), registered,
                    "Cannot register the model")

    def compute_evidence(self, ref: str) -> Any:
        """Start the job that computes ``ref``'s evidence (held-out metrics against the champion,
        group metrics, explanations), as a registration does: a request for promotion needs it.
        Returns the job's handle (the Jobs dock shows its progress)."""
        if self.runner is None:
            return None
        from modelyard.core.registry.review.compute import evidence_spec

        return self.start_job(evidence_spec(ref))

    def _versions_menu(self, pos: Any) -> None:
        index = self.versions_view.indexAt(pos)
        if not index.isValid():
            return
        self.versions_view.selectRow(index.row())
        self.versions_menu().exec(self.versions_view.viewport().mapToGlobal(pos))

    def versions_menu(self) -> QMenu:
        menu = QMenu(self)
        menu.setObjectName("versionsMenu")
        v = self.version
        if v is None:
            return menu
        champion = menu.addAction(f"Make v{v.version} champion…")
        champion.setEnabled(registry.CHAMPION not in v.aliases)
        champion.triggered.connect(lambda: self.make_champion())
        menu.addAction("Set alias…").triggered.connect(lambda: self.set_alias())
        for alias in v.aliases:
            menu.addAction(f"Remove alias {alias}…").triggered.connect(lambda _c=False, a=alias: self.remove_alias(a))
        menu.addAction("Change stage…").triggered.connect(lambda: self.set_stage())
        menu.addSeparator()
        serving = self.server is not None and self.server_ref == v.ref
        serve = menu.addAction(f"Serve v{v.version}")
        serve.setEnabled(not serving)
        serve.triggered.connect(lambda: self.serve_version(v.ref))
        menu.addAction("Export bundle…").triggered.connect(lambda: self.export_bundle())
        menu.addAction("Monitor").triggered.connect(lambda: self.monitor_version(v.ref))
        menu.addAction("Score data…").triggered.connect(lambda: self.score_file())
        menu.addSeparator()
        menu.addAction("Lineage").triggered.connect(lambda: self.tabs.setCurrentWidget(self.lineage_tab))
        menu.addAction("Model card").triggered.connect(lambda: self.tabs.setCurrentWidget(self.card_tab))
        evidence = menu.addAction("Compute evidence")
        evidence.setToolTip("Held-out metrics against the champion, group metrics and explanations (a job)")
        evidence.triggered.connect(lambda: self.compute_evidence(v.ref))
        if v.run_id:
            menu.addAction("Show the run").triggered.connect(lambda: self._show_run(v.run_id))
        return menu

    def _show_run(self, run_id: str) -> None:
        if self.client is not None:
            self.client.navigate.emit("experiments", ("select_run", run_id))
