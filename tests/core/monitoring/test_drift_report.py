"""Drift check reports (``modelyard.core.monitoring.reports``): one self-contained HTML file with every feature,
inline SVG charts, everything from the data escaped, and nothing fetched from elsewhere."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from factories import check_file, churn_frame, drifted_batch, retrain, write_batch
from factories import train_churn_model as train_model
from modelyard.core.common.errors import ModelyardError
from modelyard.core.monitoring import drift, reports
from modelyard.core.store import Store

ODD = "<b>x</b>"
VOID = {"meta", "br", "img", "hr", "input", "link", "rect", "line"}


class TagBalance(HTMLParser):
    """Fails on a closing tag that does not close the innermost open element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def odd_frame(n: int = 600, seed: int = 0, *, drifted: bool = False) -> pd.DataFrame:
    df = drifted_batch(n, seed) if drifted else churn_frame(n, seed)
    df[ODD] = df["visits"] * 1.5 + (3.0 if drifted else 0.0)  # a feature with markup in its name
    return df


@pytest.fixture
def checked(store: Store, tmp_path: Path) -> dict:
    train_model(store, odd_frame())
    batch = odd_frame(300, 1, drifted=True)
    batch.loc[0, "plan"] = "<script>alert(1)</script>"  # an unseen category with markup
    return check_file(store, write_batch(tmp_path, batch))


def test_the_report_shows_every_feature_escaped_with_inline_charts_and_nothing_external(
        store: Store, checked: dict, tmp_path: Path) -> None:
    check = drift.get_check(store, checked["check_id"])
    names = [f["name"] for f in check["features"]]
    assert set(names) == {"age", "plan", "visits", ODD}
    path = reports.export_check_html(store, checked["check_id"], tmp_path / "report.html")
    text = path.read_text(encoding="utf-8")

    # well-formed, and the data's markup is text, never markup
    parser = TagBalance()
    parser.feed(text)
    parser.close()
    assert parser.stack == []
    assert ODD not in text and "&lt;b&gt;x&lt;/b&gt;" in text
    assert "<script" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    shown = "".join(parser.text)
    for name in names:  # every feature: in the summary table and in its own section with its chart
        assert shown.count(name) >= 2
        assert f"{name}: reference vs batch" in shown

    # self-contained: no scripts, links, images or URLs to fetch
    for bad in ("http://", "https://", "src=", "<link", "url(", "@import", "<script", "<iframe"):
        assert bad not in text.lower()
    svgs = re.findall(r"<svg.*?</svg>", text, flags=re.DOTALL)
    charts = len(names) + 1 + 2  # the features, the target, the predicted labels and the scores
    assert len(svgs) == charts
    for svg in svgs:  # each chart is well-formed SVG with bars for both sides
        root = ET.fromstring(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))
        fills = {r.get("fill") for r in root.iter("{http://www.w3.org/2000/svg}rect")}
        assert {reports.COLOURS["reference"], reports.COLOURS["batch"]} <= fills

    # the verdict, the rule and the summary table sorted by drift score
    assert 'class="banner v-drift"' in text and check["verdict"] == "drift"
    assert "<b>50%</b> of the model's features drift" in text
    table = text[text.index("<h2>Features</h2>"):text.index("<h2>Schema problems</h2>")]
    order = [m for m in re.findall(r'href="#feature-\d+">([^<]*)</a>', table)]
    expected = sorted(check["features"], key=lambda r: (not r["drift"], -(r["score"] or 0)))
    assert order == [reports._e(f["name"]) for f in expected]
    assert "unseen categories" in text and "ROC AUC" in text and "Recorded (test)" in text


def test_the_report_lists_a_retraining_and_is_written_whole(store: Store, checked: dict, tmp_path: Path) -> None:
    outcome = retrain(store, checked["check_id"])
    assert outcome.status == "succeeded", outcome.error
    out = tmp_path / "out"
    out.mkdir()
    path = reports.export_check_html(store, checked["check_id"], out)  # a folder: a default name
    assert path == out / f"drift-check-{checked['check_id']}.html"
    assert [p.name for p in out.iterdir()] == [path.name]  # no temp file left behind
    if os.name == "posix":  # readable like any file the user writes (not a private temp file)
        umask = os.umask(0o022)
        os.umask(umask)
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    text = path.read_text(encoding="utf-8")
    assert "Retrained from this check" in text and outcome.result["ref"] in text
    assert reports._e(outcome.result["comparison"]) in text
    with pytest.raises(ModelyardError, match="no folder"):
        reports.export_check_html(store, checked["check_id"], tmp_path / "missing" / "r.html")
    with pytest.raises(ModelyardError, match="no drift check 999"):
        reports.export_check_html(store, 999, tmp_path / "r.html")


def test_charts_of_each_kind() -> None:
    numeric = {"kind": "numeric", "edges": [0.0, 1.0, 2.0, 3.0], "reference": [0.5, 0.5, 0.0],
               "batch": [0.0, 0.25, 0.75]}
    svg = reports.histogram_svg(numeric, title="t <1>", standalone=True, n_reference=10, n_batch=4)
    root = ET.fromstring(svg)
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.find("{http://www.w3.org/2000/svg}title")
            is not None]
    assert len(bars) == 4  # the non-empty bins of both sides
    heights = {b.find("{http://www.w3.org/2000/svg}title").text: float(b.get("height")) for b in bars}
    batch_75 = next(h for t, h in heights.items() if t.startswith("batch: 75%"))
    batch_25 = next(h for t, h in heights.items() if t.startswith("batch: 25%"))
    assert batch_75 == pytest.approx(3 * batch_25, abs=0.3)  # bar heights are proportional to the shares
    assert "t &lt;1&gt;" in svg
    cats = {"kind": "categorical", "categories": ["a", "&b"], "reference": [0.9, 0.1], "batch": [0.2, 0.8]}
    svg = reports.histogram_svg(cats, title="c", standalone=True)
    ET.fromstring(svg)
    assert "&amp;b" in svg
    assert reports.histogram_svg(None) == "" and reports.histogram_svg({"kind": "numeric", "edges": []}) == ""
