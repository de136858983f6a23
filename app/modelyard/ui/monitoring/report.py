"""The Monitoring panel's Report tab: a check's drift report read inside the app.

The report is the one **Export report…** writes (:func:`modelyard.core.monitoring.reports.check_report_html`),
built off the main thread. A text browser cannot draw inline SVG, so each chart is handed to it as
an image (an SVG data URL, which Qt's SVG image plugin draws); everything else (the verdict, the
rule, the tables, the sections) is the same page. The exported file stays the one to send.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from PySide6.QtWidgets import QLabel, QTextBrowser, QVBoxLayout, QWidget

from modelyard.ui.common import theme

_SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)
_WIDTH = re.compile(r'\bwidth="(\d+)"')
_NAMED_NUMBER = re.compile(r'(<td class="n">[^<]*) <span class="muted">[^<]*</span>')


def _as_image(match: re.Match[str], max_width: int | None) -> str:
    svg = match.group(0)
    if "xmlns=" not in svg[:200]:
        svg = svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"', 1)
    found = _WIDTH.search(svg[:300])
    width = int(found.group(1)) if found else None
    if width is not None and max_width is not None:
        width = min(width, max_width)  # the height follows
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    size = f' width="{width}"' if width else ""
    return f'<p><img src="data:image/svg+xml;base64,{data}"{size}></p>'


def browsable_html(page: str, max_width: int | None = None) -> str:
    """The report page as a text browser shows it: inline SVG charts as images, at most
    ``max_width`` pixels wide (plain text in, out)."""
    # Qt's table layout gives unbreakable cells their whole width first and squeezes the rest to a
    # letter a line: let the numbers wrap in the window (the exported page keeps them on one line)
    page = page.replace("white-space:nowrap", "white-space:normal")
    page = _NAMED_NUMBER.sub(r"\1", page)  # a number's measure name (the Test column names it) makes room
    return _SVG.sub(lambda m: _as_image(m, max_width), page)


def report_of(store: Any, check_id: int, max_width: int | None = None) -> str:
    """Off the main thread: check ``check_id``'s report, ready for the browser."""
    from modelyard.core.monitoring import reports

    return browsable_html(reports.check_report_html(store, check_id), max_width)


class ReportView(QWidget):
    """The drift report of the selected check, read off the main thread each time the check changes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reportTab")
        self.note = QLabel("The whole report of the selected check; Export report… writes it as one HTML file to "
                           "send or print.", self)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: gray")
        self.browser = QTextBrowser(self)
        self.browser.setObjectName("reportView")
        self.browser.setOpenExternalLinks(False)
        self.browser.setOpenLinks(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, theme.SPACE_S, 0, 0)
        layout.addWidget(self.note)
        layout.addWidget(self.browser, 1)
        self.check_id: int | None = None  # the check shown (or being read)

    def show_text(self, text: str) -> None:
        self.check_id = None
        self.browser.setPlainText(text)

    def load(self, client: Any, check_id: int, on_error: Any) -> None:
        """Read and show check ``check_id``'s report (nothing to do when it is the one shown)."""
        if check_id == self.check_id:
            return
        self.check_id = check_id
        self.browser.setPlainText("Reading the report…")
        def failed(exc: Exception) -> None:
            self.check_id = None  # asked again next time
            self.browser.setPlainText(f"Could not read the report: {exc}")
            on_error(exc)

        width = max(320, self.browser.viewport().width() - 4 * theme.SPACE_L)  # charts fit: no sideways scrolling
        client.read("monitoring.report_view", lambda store: report_of(store, check_id, width),
                    lambda page: self._loaded(check_id, page), failed)

    def _loaded(self, check_id: int, page: str) -> None:
        if check_id != self.check_id:
            return  # another check was selected meanwhile
        bar = self.browser.verticalScrollBar()
        self.browser.setHtml(page)
        bar.setValue(0)
