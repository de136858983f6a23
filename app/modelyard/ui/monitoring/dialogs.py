"""The Monitoring panel's settings dialog: thresholds, the dataset rule, critical and ignored features.

It edits the model's drift configuration (:mod:`modelyard.core.monitoring.drift.config`); what it does not
show (per-feature tests, severities…) is kept as it was. Saving asks for a comment (audited).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from modelyard.ui.common import theme
from modelyard.ui.common.widgets import comment_and_save

NUMERIC_TESTS = ("auto", "ks", "wasserstein", "psi", "js")
CATEGORICAL_TESTS = ("auto", "chisquare", "js", "psi")


def _spin(value: float, lo: float, hi: float, step: float, name: str, parent: QWidget) -> QDoubleSpinBox:
    spin = QDoubleSpinBox(parent)
    spin.setObjectName(name)
    spin.setDecimals(3)
    spin.setRange(lo, hi)
    spin.setSingleStep(step)
    spin.setValue(float(value))
    return spin


class DriftSettingsDialog(QDialog):
    def __init__(self, name: str, config: dict[str, Any], features: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("driftSettingsDialog")
        self.setWindowTitle(f"Drift settings of {name}")
        self.setMinimumSize(520, 560)
        self.base = copy.deepcopy(config)
        th = config.get("thresholds") or {}
        intro = QLabel("Checks store the settings they were decided with, so changing them does not change the "
                       "verdicts of earlier checks.", self)
        intro.setWordWrap(True)
        self.numeric_test = QComboBox(self)
        self.numeric_test.setObjectName("numericTest")
        self.numeric_test.addItems(NUMERIC_TESTS)
        self.numeric_test.setCurrentText(str(config.get("numeric_test", "auto")))
        self.categorical_test = QComboBox(self)
        self.categorical_test.setObjectName("categoricalTest")
        self.categorical_test.addItems(CATEGORICAL_TESTS)
        self.categorical_test.setCurrentText(str(config.get("categorical_test", "auto")))
        self.p_value = _spin(th.get("p_value", 0.05), 0.0001, 0.5, 0.01, "pValue", self)
        self.min_effect = _spin(th.get("min_effect", 0.1), 0.0, 1.0, 0.01, "minEffect", self)
        self.wasserstein = _spin(th.get("wasserstein", 0.1), 0.001, 10.0, 0.01, "wassersteinThreshold", self)
        self.js = _spin(th.get("js", 0.1), 0.001, 1.0, 0.01, "jsThreshold", self)
        self.psi = _spin(th.get("psi", 0.2), 0.001, 10.0, 0.05, "psiThreshold", self)
        self.share = _spin((config.get("rule") or {}).get("drift_share", 0.5), 0.01, 1.0, 0.05, "driftShare", self)
        self.auc = _spin((config.get("multivariate") or {}).get("auc_threshold", 0.6), 0.5, 1.0, 0.01, "aucThreshold",
                         self)
        form = QFormLayout()
        form.addRow("Numeric test:", self.numeric_test)
        form.addRow("Categorical test:", self.categorical_test)
        form.addRow("p-value below (small samples):", self.p_value)
        form.addRow("and effect size at least:", self.min_effect)
        form.addRow("Normed Wasserstein distance ≥:", self.wasserstein)
        form.addRow("Jensen–Shannon distance ≥:", self.js)
        form.addRow("PSI ≥:", self.psi)
        form.addRow("Dataset drifts when this share drifts:", self.share)
        form.addRow("Domain classifier ROC AUC ≥:", self.auc)

        critical = set(config.get("critical") or [])
        per_feature = config.get("features") or {}
        names = list(dict.fromkeys([*features, *critical, *per_feature]))
        self.features = QTableWidget(len(names), 3, self)
        self.features.setObjectName("featureSettings")
        self.features.setHorizontalHeaderLabels(["Feature", "Critical", "Ignore"])
        self.features.verticalHeader().hide()
        self.features.horizontalHeader().setStretchLastSection(False)
        self.features.horizontalHeader().setSectionResizeMode(0, self.features.horizontalHeader().ResizeMode.Stretch)
        for row, feature in enumerate(names):
            item = QTableWidgetItem(feature)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.features.setItem(row, 0, item)
            for col, on in ((1, feature in critical), (2, bool((per_feature.get(feature) or {}).get("ignore")))):
                box = QTableWidgetItem()
                box.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
                box.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
                self.features.setItem(row, col, box)
        self.comment, self.buttons = comment_and_save(self)
        layout = QVBoxLayout(self)
        layout.setSpacing(theme.SPACE_M)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(QLabel("<b>Features</b> (a critical feature that drifts makes the whole batch drift)", self))
        layout.addWidget(self.features, 1)
        cf = QFormLayout()
        cf.addRow("Comment:", self.comment)
        layout.addLayout(cf)
        layout.addWidget(self.buttons)

    def _checked(self, row: int, col: int) -> bool:
        item = self.features.item(row, col)
        return item is not None and item.checkState() == Qt.CheckState.Checked

    def config(self) -> dict[str, Any]:
        cfg = copy.deepcopy(self.base)
        cfg.pop("watch_folder", None)
        cfg["numeric_test"] = self.numeric_test.currentText()
        cfg["categorical_test"] = self.categorical_test.currentText()
        cfg["thresholds"] = {**(cfg.get("thresholds") or {}), "p_value": self.p_value.value(),
                             "min_effect": self.min_effect.value(), "wasserstein": self.wasserstein.value(),
                             "js": self.js.value(), "psi": self.psi.value()}
        cfg["rule"] = {**(cfg.get("rule") or {}), "drift_share": self.share.value()}
        cfg["multivariate"] = {**(cfg.get("multivariate") or {}), "auc_threshold": self.auc.value()}
        critical, features = [], dict(cfg.get("features") or {})
        for row in range(self.features.rowCount()):
            name = self.features.item(row, 0).text()
            if self._checked(row, 1):
                critical.append(name)
            spec = dict(features.get(name) or {})
            if self._checked(row, 2):
                spec["ignore"] = True
            else:
                spec.pop("ignore", None)
            if spec:
                features[name] = spec
            else:
                features.pop(name, None)
        cfg["critical"] = critical
        cfg["features"] = features
        return cfg

    def comment_text(self) -> str:
        return self.comment.text().strip()
