"""Checks of what a user sees: text cut off by its widget, tables too short to read, and the main
thread held (a timer's gap). Used by the acceptance tests and usable on any widget tree.

Every finding is one line naming where (the panel or dialog, the tab, the widget's class and
objectName), what (the text) and by how much, so a failure says what to fix.
"""

from __future__ import annotations

import html
import re
import time

from held_clock import held_clock
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QGroupBox,
    QHeaderView,
    QLabel,
    QListView,
    QMainWindow,
    QMenu,
    QPushButton,
    QRadioButton,
    QStyle,
    QStyleOptionButton,
    QStyleOptionComboBox,
    QStyleOptionGroupBox,
    QStyleOptionHeader,
    QTabBar,
    QTableView,
    QTabWidget,
    QToolButton,
    QTreeView,
    QWidget,
)

SLACK = 1  # px: rounding in the style's metrics


# --------------------------------------------------------------------------- naming


def owner_name(w: QWidget) -> str:
    """The panel or dialog ``w`` is in (its class name), else its window's class."""
    p: QWidget | None = w
    while p is not None:
        name = type(p).__name__
        if isinstance(p, (QDialog, QMainWindow)) or name.endswith("Panel") or name == "JobsPanel":
            return name
        p = p.parentWidget()
    return type(w.window()).__name__


def tab_path(w: QWidget) -> list[str]:
    """The tabs (outermost first) whose pages hold ``w``: ``["Evaluation tab"]``."""
    tabs: list[str] = []
    p = w.parentWidget()
    while p is not None:
        if isinstance(p, QTabWidget):
            for i in range(p.count()):
                page = p.widget(i)
                if page is w or (page is not None and page.isAncestorOf(w)):
                    tabs.append(f"{p.tabText(i).replace('&', '')} tab")
                    break
        p = p.parentWidget()
    return list(reversed(tabs))


def widget_name(w: QWidget) -> str:
    return type(w).__name__ + (f"#{w.objectName()}" if w.objectName() else "")


def where(w: QWidget) -> str:
    return " > ".join([owner_name(w), *tab_path(w), widget_name(w)])


# --------------------------------------------------------------------------- helpers

_TAG = re.compile(r"<[^>]+>")


def _plain(text: str) -> str:
    """Text as shown: mnemonics and tags removed, entities decoded, spaces collapsed."""
    if "<" in text and _TAG.search(text):
        from PySide6.QtGui import QTextDocumentFragment

        text = QTextDocumentFragment.fromHtml(text).toPlainText()
    else:
        text = html.unescape(text).replace("&&", "\0").replace("&", "").replace("\0", "&")
    return " ".join(text.split())


def carried_by(text: str, tip: str | None) -> bool:
    """Whether the tooltip ``tip`` holds the whole of ``text`` (so eliding it loses nothing)."""
    shown = _plain(text).rstrip("…").strip()
    return bool(shown) and bool(tip) and shown in _plain(tip or "")


def _shown(w: QWidget) -> bool:
    if not w.isVisible() or w.width() <= 0 or w.height() <= 0:
        return False
    p = w.parentWidget()
    while p is not None:
        if isinstance(p, QMenu):
            return False
        p = p.parentWidget()
    return True


def _text_width(w: QWidget, text: str) -> int:
    fm = w.fontMetrics()
    return max((fm.horizontalAdvance(line) for line in text.replace("&&", "&").split("\n")), default=0)


def _mnemonic_free(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


# --------------------------------------------------------------------------- needed sizes


def push_button_need(b: QPushButton) -> int:
    """The width ``b``'s text and icon need with the style's margins (QPushButton.sizeHint without
    the style's minimum width of a text button)."""
    opt = QStyleOptionButton()
    opt.initFrom(b)
    opt.text = b.text()
    opt.icon = b.icon()
    opt.iconSize = b.iconSize()
    if b.autoDefault() or b.isDefault():
        opt.features |= QStyleOptionButton.ButtonFeature.AutoDefaultButton
    if b.menu() is not None:
        opt.features |= QStyleOptionButton.ButtonFeature.HasMenu
    if b.isFlat():
        opt.features |= QStyleOptionButton.ButtonFeature.Flat
    content = b.fontMetrics().size(Qt.TextFlag.TextShowMnemonic, b.text()).width()
    if not b.icon().isNull():
        content += b.iconSize().width() + 4
    probe = 1000
    overhead = b.style().sizeFromContents(QStyle.ContentsType.CT_PushButton, opt, QSize(probe, 20), b).width() - probe
    if b.menu() is not None:
        overhead += b.style().pixelMetric(QStyle.PixelMetric.PM_MenuButtonIndicator, opt, b)
    return content + overhead


def _button_finding(b: QAbstractButton) -> str | None:
    text = b.text()
    if not text.strip():
        return None
    if isinstance(b, QToolButton) and b.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonIconOnly:
        return None
    if isinstance(b, QPushButton):
        need = push_button_need(b)
    else:  # tool buttons, check boxes and radio buttons: their size hint is what their text needs
        need = b.sizeHint().width()
    has = b.width()
    if has + SLACK < need and not carried_by(text, b.toolTip()):
        return f"{where(b)} '{_mnemonic_free(text)}' needs {need} px, has {has}"
    return None


def _label_finding(label: QLabel) -> str | None:
    text = label.text()
    if not text.strip() or (label.pixmap() is not None and not label.pixmap().isNull()):
        return None
    if carried_by(text, label.toolTip()):
        return None  # an ElidedLabel (or any label) whose tooltip carries its text
    full = getattr(label, "full_text", None)
    if callable(full) and carried_by(full(), label.toolTip()):
        return None
    shown = _plain(text) if label.textFormat() != Qt.TextFormat.PlainText else text
    short = shown if len(shown) <= 60 else shown[:57] + "…"
    if label.wordWrap():
        need_h = label.heightForWidth(label.width())
        if need_h > label.height() + SLACK:
            return f"{where(label)} '{short}' (wrapped) needs {need_h} px high, has {label.height()}"
        words = shown.split()
        longest = max(words, key=lambda s: label.fontMetrics().horizontalAdvance(s)) if words else ""
        need_w = label.fontMetrics().horizontalAdvance(longest)
        if need_w > label.contentsRect().width() + SLACK:
            return f"{where(label)} '{short}': the word '{longest}' needs {need_w} px, has {label.contentsRect().width()}"
        return None
    hint = label.sizeHint()  # for rich text: the document's ideal width and height
    if hint.width() > label.width() + SLACK:
        return f"{where(label)} '{short}' needs {hint.width()} px, has {label.width()}"
    if hint.height() > label.height() + SLACK:
        return f"{where(label)} '{short}' needs {hint.height()} px high, has {label.height()}"
    return None


def _tab_findings(bar: QTabBar) -> list[str]:
    probe = QTabBar()
    probe.setFont(bar.font())
    probe.setStyle(bar.style())
    probe.setDocumentMode(bar.documentMode())
    probe.setIconSize(bar.iconSize())
    probe.setExpanding(False)
    probe.setElideMode(Qt.TextElideMode.ElideNone)
    probe.setShape(bar.shape())
    probe.setTabsClosable(bar.tabsClosable())
    for i in range(bar.count()):
        probe.addTab(bar.tabIcon(i), bar.tabText(i))
    probe.resize(100_000, max(bar.height(), 40))
    out = []
    name = where(bar.parentWidget()) if isinstance(bar.parentWidget(), QTabWidget) else where(bar)
    for i in range(bar.count()):
        if not bar.isTabVisible(i):
            continue
        text = bar.tabText(i)
        need, rect = probe.tabRect(i).width(), bar.tabRect(i)
        carried = carried_by(text, bar.tabToolTip(i))
        if rect.width() + SLACK < need and not carried:
            out.append(f"{name} tab '{_mnemonic_free(text)}' needs {need} px, has {rect.width()}")
        elif (rect.right() > bar.width() + SLACK or rect.left() < -SLACK) and not carried:
            out.append(f"{name} tab '{_mnemonic_free(text)}' is out of sight (behind the scroll arrows): "
                       f"the tabs need {probe.tabRect(bar.count() - 1).right()} px, the bar has {bar.width()}")
    probe.deleteLater()
    return out


def header_need(header: QHeaderView, section: int, text: str) -> int:
    """The width a section's text needs in ``header`` with the style's margins and, on the sorted
    section, the sort indicator (what QHeaderView.sectionSizeFromContents computes)."""
    opt = QStyleOptionHeader()
    opt.initFrom(header)
    opt.section = section
    opt.text = text
    opt.orientation = header.orientation()
    opt.textAlignment = header.defaultAlignment()
    model = header.model()
    font = model.headerData(section, header.orientation(), Qt.ItemDataRole.FontRole) if model else None
    if font is not None:
        opt.fontMetrics = header.fontMetrics().__class__(font)
    icon = model.headerData(section, header.orientation(), Qt.ItemDataRole.DecorationRole) if model else None
    if icon is not None and hasattr(icon, "isNull") and not icon.isNull():
        opt.icon = icon
    if header.isSortIndicatorShown() and header.sortIndicatorSection() == section:
        opt.sortIndicator = QStyleOptionHeader.SortIndicator.SortDown
    return header.style().sizeFromContents(QStyle.ContentsType.CT_HeaderSection, opt, QSize(), header).width()


def _header_findings(header: QHeaderView) -> list[str]:
    model = header.model()
    if model is None or header.orientation() != Qt.Orientation.Horizontal:
        return []
    out = []
    for section in range(header.count()):
        if header.isSectionHidden(section) or header.sectionSize(section) <= 0:
            continue
        text = model.headerData(section, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole)
        if text is None or not str(text).strip():
            continue
        text = str(text)
        tip = model.headerData(section, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
        need, has = header_need(header, section, text), header.sectionSize(section)
        if has + SLACK < need and not carried_by(text, str(tip) if tip else None):
            view = header.parentWidget()
            out.append(f"{where(view) if view is not None else where(header)} header '{text}' needs {need} px, "
                       f"has {has}")
    return out


def _combo_finding(combo: QComboBox) -> str | None:
    text = combo.currentText()
    if not text.strip():
        return None
    opt = QStyleOptionComboBox()
    opt.initFrom(combo)
    opt.editable = combo.isEditable()
    opt.frame = combo.hasFrame()
    opt.currentText = text
    field = combo.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, opt,
                                         QStyle.SubControl.SC_ComboBoxEditField, combo)
    need = combo.fontMetrics().horizontalAdvance(text)
    icon = combo.itemIcon(combo.currentIndex()) if combo.currentIndex() >= 0 else None
    if icon is not None and not icon.isNull():
        need += combo.iconSize().width() + 4
    tip = combo.itemData(combo.currentIndex(), Qt.ItemDataRole.ToolTipRole) if combo.currentIndex() >= 0 else None
    if field.width() + SLACK < need and not carried_by(text, combo.toolTip()) and not carried_by(text, tip):
        return f"{where(combo)} '{text}' needs {need} px of text room, has {field.width()}"
    return None


def _group_finding(box: QGroupBox) -> str | None:
    title = box.title()
    if not title.strip():
        return None
    opt = QStyleOptionGroupBox()
    opt.initFrom(box)
    opt.text = title
    opt.subControls = QStyle.SubControl.SC_GroupBoxLabel | QStyle.SubControl.SC_GroupBoxFrame
    if box.isCheckable():
        opt.subControls |= QStyle.SubControl.SC_GroupBoxCheckBox
    label = box.style().subControlRect(QStyle.ComplexControl.CC_GroupBox, opt, QStyle.SubControl.SC_GroupBoxLabel, box)
    if label.right() > box.width() + SLACK and not carried_by(title, box.toolTip()):
        return f"{where(box)} title '{_mnemonic_free(title)}' needs {label.right()} px, has {box.width()}"
    return None


# --------------------------------------------------------------------------- the checks


def _widgets(root: QWidget) -> list[QWidget]:
    return [root, *root.findChildren(QWidget)]


def clipped_texts(root: QWidget) -> list[str]:
    """Every shown text under ``root`` that its widget cuts off (and no tooltip carries): labels,
    buttons, check boxes, tabs, table headers, combo boxes and group box titles."""
    out: list[str] = []
    for w in _widgets(root):
        if not _shown(w):
            continue
        finding: str | None = None
        if isinstance(w, QLabel):
            finding = _label_finding(w)
        elif isinstance(w, (QAbstractButton, QCheckBox, QRadioButton)):
            if type(w).__name__ in ("QTabBarCloseButton", "CloseButton"):
                continue
            if w.parentWidget() is not None and isinstance(w.parentWidget(), QTabBar):
                continue  # a tab bar's scroll arrows
            finding = _button_finding(w)
        elif isinstance(w, QTabBar):
            out.extend(_tab_findings(w))
        elif isinstance(w, QHeaderView):
            out.extend(_header_findings(w))
        elif isinstance(w, QComboBox):
            finding = _combo_finding(w)
        elif isinstance(w, QGroupBox):
            finding = _group_finding(w)
        if finding:
            out.append(finding)
    return out


def row_height(view: QAbstractItemView) -> int:
    """The height of one row of ``view``: its first row's, else the default for a new one."""
    if isinstance(view, QTableView):
        vh = view.verticalHeader()
        return vh.sectionSize(0) if view.model() is not None and view.model().rowCount() else vh.defaultSectionSize()
    if view.model() is not None and view.model().rowCount():
        h = view.sizeHintForRow(0)
        if h > 0:
            return h
    return view.fontMetrics().height() + 6


def short_tables(root: QWidget, min_rows: int = 5) -> list[str]:
    """Every shown table, tree or list under ``root`` whose viewport shows fewer than ``min_rows``
    rows (or fewer than all of its rows, when it has fewer)."""
    out = []
    for w in _widgets(root):
        if not isinstance(w, (QTableView, QTreeView, QListView)) or not _shown(w):
            continue
        if isinstance(w.parentWidget(), QComboBox) or type(w.window()).__name__ == "QComboBoxPrivateContainer":
            continue
        h = row_height(w)
        seen = w.viewport().visibleRegion().boundingRect().height()  # clipped by a scroll area around it
        height = min(w.viewport().height(), seen)
        fits = height // max(1, h)
        rows = w.model().rowCount() if w.model() is not None else 0
        wanted = min(min_rows, rows) if rows else min_rows  # a 2x2 confusion matrix needs its 2 rows
        if fits < wanted:
            clipped = f" (of its {w.viewport().height()} px, the rest scrolled out of sight)" \
                if height < w.viewport().height() else ""
            out.append(f"{where(w)} shows {fits} row{'s' if fits != 1 else ''} of {h} px in "
                       f"{height} px{clipped} (wants {wanted} of its {rows}: {wanted * h} px)")
    return out


def elided_cells(root: QWidget, per_view: int = 4) -> list[str]:
    """Every text cell in sight in a shown table or tree under ``root`` that its column cuts off
    (and whose ToolTipRole does not carry it), and cut cells of one column that read the same: ``DatasetsPanel > QTableView#datasetsTable row 7
    'penguins-species-from-the-palmer-station-2026' needs 301 px, has 160``. At most ``per_view``
    per view (and how many more)."""
    out = []
    for view in _widgets(root):
        if not isinstance(view, (QTableView, QTreeView)) or not _shown(view) or view.model() is None:
            continue
        if isinstance(view.parentWidget(), QComboBox):
            continue
        model, fm = view.model(), view.fontMetrics()
        margin = 2 * (view.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, view) + 1)
        first = view.indexAt(view.viewport().rect().topLeft()).row()
        found: list[str] = []
        alike: dict[tuple[int, str], set[str]] = {}  # (column, what shows) -> the texts that show so
        row, seen = max(first, 0), 0
        while row < model.rowCount() and seen < 60:
            probe = model.index(row, 0)
            rect = view.visualRect(probe)
            if rect.top() > view.viewport().height():
                break
            seen += 1
            for column in range(model.columnCount()):
                if (isinstance(view, QTableView) and view.isColumnHidden(column)) or \
                        (isinstance(view, QTreeView) and view.isColumnHidden(column)):
                    continue
                index = model.index(row, column)
                text = index.data(Qt.ItemDataRole.DisplayRole)
                if not isinstance(text, str) or not text.strip() or "\n" in text:
                    continue
                cell = view.visualRect(index)
                if cell.width() <= 0 or cell.right() < 0 or cell.left() > view.viewport().width():
                    continue
                need = fm.horizontalAdvance(text) + margin
                icon = index.data(Qt.ItemDataRole.DecorationRole)
                if icon is not None and hasattr(icon, "isNull") and not icon.isNull():
                    need += view.iconSize().width() if view.iconSize().width() > 0 else 16
                    need += margin
                tip = index.data(Qt.ItemDataRole.ToolTipRole)
                if cell.width() + SLACK < need:
                    room = max(0, cell.width() - (need - fm.horizontalAdvance(text)))
                    shown = fm.elidedText(text, view.textElideMode(), room)
                    alike.setdefault((column, shown), set()).add(text)
                    if len(alike[(column, shown)]) == 2:
                        header = model.headerData(column, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole)
                        found.append(f"{where(view)} column '{header}': {sorted(alike[(column, shown)])} both read "
                                     f"'{shown}' (indistinguishable; {cell.width()} px)")
                if cell.width() + SLACK < need and not carried_by(text, str(tip) if tip else None):
                    header = model.headerData(column, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole)
                    found.append(f"{where(view)} row {row + 1}, column '{header}': '{text}' needs {need} px, "
                                 f"has {cell.width()}")
            row += 1
        if len(found) > per_view:
            found = [*found[:per_view], f"{where(view)}: and {len(found) - per_view} more cut cells"]
        out.extend(found)
    return out


# --------------------------------------------------------------------------- the main thread


class GapWatch:
    """A main-thread timer ticking every 5 ms; records the largest gap between two ticks (the
    longest the event loop was held), and during which step (``mark``). Gaps are measured on
    tests/held_clock.py's clock: the time the main thread only waited for a CPU another process
    had is the machine's, not the window's (the main thread blocking on anything still counts).

        with GapWatch() as gaps:
            gaps.mark("open the Train dialog")
            ...
        gaps.assert_under(100, "training from the window")
    """

    def __init__(self, interval_ms: int = 5) -> None:
        self.interval_ms = interval_ms
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.largest = 0.0  # ms
        self.largest_at = 0.0  # s since the start
        self.largest_step = ""
        self.step = "start"
        self.gaps: list[tuple[float, str, float]] = []  # every gap over 50 ms: (ms, step, main-thread CPU ms)
        self.largest_cpu = 0.0
        self._last = 0.0
        self._last_cpu = 0.0
        self._start = 0.0
        self._paused = False

    def __enter__(self) -> GapWatch:
        self._start = self._last = held_clock()
        self._last_cpu = time.thread_time()
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.stop()

    def mark(self, step: str) -> None:
        """Name what the test does next (a gap is reported with the step it happened in)."""
        self._tick()
        self.step = step

    def pause(self) -> None:
        """The test's own work on the main thread follows (building data): not the window's."""
        self._tick()
        self._paused = True

    def resume(self) -> None:
        self._paused = False
        self._last, self._last_cpu = held_clock(), time.thread_time()

    def _tick(self) -> None:
        now, cpu_now = held_clock(), time.thread_time()
        gap, cpu = (now - self._last) * 1000, (cpu_now - self._last_cpu) * 1000
        self._last, self._last_cpu = now, cpu_now
        if self._paused:
            return
        if gap > 50:
            self.gaps.append((round(gap, 1), self.step, round(cpu, 1)))
        if gap > self.largest:
            self.largest, self.largest_at, self.largest_step, self.largest_cpu = gap, now - self._start, self.step, cpu

    def assert_under(self, ms: float = 100, what: str = "") -> None:
        import os

        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        assert self.largest <= ms, (
            f"{what or 'the window'}: the main thread was held {self.largest:.0f} ms (limit {ms:.0f}) during "
            f"'{self.largest_step}', {self.largest_at:.2f} s in, {self.largest_cpu:.0f} ms of it on the main "
            f"thread's CPU (little CPU: waiting on a lock, a process or I/O, or a starved machine: load "
            f"{load:.1f}); gaps over 50 ms (ms, step, CPU ms): {self.gaps}")


def describe(findings: list[str]) -> str:
    return "\n  " + "\n  ".join(findings) if findings else ""


def check_fit(root: QWidget, min_rows: int = 5) -> list[str]:
    """Both checks together (what the acceptance tests assert is empty)."""
    return clipped_texts(root) + short_tables(root, min_rows)


__all__ = ["GapWatch", "carried_by", "check_fit", "clipped_texts", "describe", "elided_cells", "short_tables", "where"]
