"""The model card's review fields (intended use, out-of-scope uses, known limitations, ethical
considerations): set one by one, each real edit bumps the card's revision in the transaction of
its audit event, the history reads back from the audit; the HTML card shows the fields (a
missing one marked as required), the latest evidence, the gates' verdict with a failing fairness
gate marked, the charts as embedded SVG, the requests and their decisions; every user text is
escaped. The CLI sets the fields and lists the history. SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from cli_helpers import cli, cli_json
from evidence_fixture import CARD, GATES, evidence_document
from modelyard.core.common.errors import ModelyardError
from modelyard.core.experiments import tracking
from modelyard.core.registry import cards, edits
from modelyard.core.registry import versions as registry
from modelyard.core.registry.card_evidence import failing_fairness
from modelyard.core.registry.review import evidence
from modelyard.core.store import Store
from modelyard.core.store import models as m


def make_version(store: Store, name: str = "churn", accuracy: float = 0.91) -> registry.ModelVersionInfo:
    with tracking.start_run(name, store=store, spec={"model": "knn"}) as run:
        run.log_metrics({"accuracy": accuracy})
        run.log_bytes(b"stand-in", "model/model.joblib", kind="model")
    return registry.register(store, run.id, name)


def test_the_four_fields_are_set_one_by_one_and_each_edit_is_a_revision(store: Store) -> None:
    v = make_version(store)
    card = cards.model_card(store, v.ref)
    assert card["notes"] == {k: "" for k in cards.NOTES_FIELDS} and card["notes_revision"] == 0
    assert card["review_missing"] == list(cards.REVIEW_FIELDS.values()) and card["card_history"] == []

    info = cards.set_card_notes(store, v.ref, intended_use=CARD["intended_use"],
                                out_of_scope_uses=CARD["out_of_scope_uses"], comment="first card")
    assert info.card["notes_revision"] == 1 and cards.missing_review_fields(info.card) == [
        "Known limitations", "Ethical considerations"]
    cards.set_card_notes(store, v.ref, known_limitations="  Trained on 2025 data.\r\n", comment="limits")
    cards.set_card_notes(store, v.ref, known_limitations="Trained on 2025 data.", comment="same again")  # no edit
    cards.set_card_notes(store, "churn", ethical_considerations=CARD["ethical_considerations"], notes="n",
                         comment="ethics")
    card = cards.model_card(store, v.ref)
    assert card["notes_revision"] == 3 and card["review_missing"] == []
    assert card["notes"] == {"intended_use": CARD["intended_use"], "out_of_scope_uses": CARD["out_of_scope_uses"],
                             "known_limitations": "Trained on 2025 data.",
                             "ethical_considerations": CARD["ethical_considerations"], "notes": "n"}

    history = cards.card_history(store, v.ref)
    assert [(h["revision"], h["by"], h["comment"], h["fields"]) for h in history] == [
        (3, "tester", "ethics", ["ethical_considerations", "notes"]),
        (2, "tester", "limits", ["known_limitations"]),
        (1, "tester", "first card", ["intended_use", "out_of_scope_uses"])]
    assert history[1]["from"]["known_limitations"] == "" and history[1]["to"]["known_limitations"] == (
        "Trained on 2025 data.")
    assert history[0]["to"] == card["notes"] and history[2]["from"] == {k: "" for k in cards.NOTES_FIELDS}
    assert card["card_history"] == history and cards.card_history(store, v.id) == history
    # the audit event carries the revision it made, in the same transaction as the card
    event = registry.timeline(store, "churn")[0]
    assert event["action"] == "edit_card" and event["details"]["revision"] == 3
    assert json.loads(event["to_value"]) == card["notes"]
    # another version's card has its own history
    other = make_version(store)
    assert cards.card_history(store, other.ref) == [] and cards.model_card(store, other.ref)["notes_revision"] == 0


def test_a_refused_edit_writes_nothing_and_the_old_notes_still_read(store: Store) -> None:
    v = make_version(store)
    with pytest.raises(ModelyardError, match="needs a short comment"):
        cards.set_card_notes(store, v.ref, known_limitations="x", comment="")
    with pytest.raises(ModelyardError, match="known limitations is too long"):
        cards.set_card_notes(store, v.ref, known_limitations="x" * (cards.NOTES_MAX + 1), comment="x")
    with pytest.raises(ModelyardError, match="Nothing to change") as refused:
        cards.set_card_notes(store, v.ref, comment="x")
    assert "--out-of-scope-uses" in (refused.value.hint or "")
    assert cards.card_history(store, v.ref) == [] and cards.model_card(store, v.ref)["notes_revision"] == 0
    # a card written before the review fields (intended use and notes only, no revision) still reads
    with store.write() as s:
        mv = s.get(m.ModelVersion, v.id)
        mv.card = dict(mv.card or {}) | {"notes": {"intended_use": "Old text", "notes": "old"}}
    card = cards.model_card(store, v.ref)
    assert card["notes"]["intended_use"] == "Old text" and card["notes"]["known_limitations"] == ""
    cards.set_card_notes(store, v.ref, known_limitations="New", comment="x")
    assert cards.model_card(store, v.ref)["notes_revision"] == 1


def _store_evidence(store: Store, v: registry.ModelVersionInfo, champion: registry.ModelVersionInfo) -> None:
    evidence.store_evidence(store, v.id, evidence_document(), settings={"n_boot": 1000},
                            champion_version_id=champion.id)


def svgs(page: str) -> list[str]:
    return [base64.b64decode(b).decode("utf-8") for b in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)]


def test_the_html_card_shows_the_review_the_evidence_and_the_requests(store: Store) -> None:
    champion = make_version(store, accuracy=0.89)
    edits.set_alias(store, champion.ref, "champion", comment="first")
    v = make_version(store)
    cards.set_card_notes(store, v.ref, intended_use=CARD["intended_use"], comment="first card")
    page = cards.render_html(cards.model_card(store, v.ref))
    for heading in ("Intended use and limitations", "Evidence for a promotion", "Review history", "Card history"):
        assert f"<h2>{heading}</h2>" in page
    # the missing review fields are marked as required, the written one is shown
    assert CARD["intended_use"] in page.replace("&#x27;", "'")
    for label in ("Out-of-scope uses", "Known limitations", "Ethical considerations"):
        assert f"<h3>{label} <font color=\"#cf222e\">(required)</font></h3>" in page
    assert page.count("Not written yet. A promotion request needs it") == 3 and "--known-limitations TEXT" in page
    assert "No evidence was computed for this version yet: compute it with `modelyard model evidence churn@v2`." \
        in page and "No promotion was requested" in page
    window_page = cards.render_html(cards.model_card(store, v.ref), edit_hint=cards.WINDOW_EDIT_HINT)
    assert "compute it with Compute evidence in the version" in window_page and "modelyard model" not in window_page
    assert "No evidence was computed for this version yet.</i>" in cards.render_html(cards.model_card(store, v.ref),
                                                                                     edit_hint="")

    # evidence and gates with a fairness rule the evidence breaks; a request that was rejected
    _store_evidence(store, v, champion)
    edits.set_gates(store, "churn", {k: GATES[k] for k in ("min_metrics",)}, comment="policy")
    with store.write() as s:
        mv = s.get(m.ModelVersion, v.id)
        model = s.get(m.RegisteredModel, mv.model_id)
        model.gates = dict(model.gates or {}) | {"fairness": GATES["fairness"]}  # the evidence helper's gate format
        s.add(m.PromotionRequest(model_id=mv.model_id, version_id=v.id, target="champion",
                                 replaces_version_id=champion.id, reason="better <recall> on March",
                                 requested_by="dana", status="rejected", decided_by="omar",
                                 decision_comment="fix the gap for women first"))
    card = cards.model_card(store, v.ref)
    assert card["evidence"]["document"]["version"] == "churn@v3" and card["evidence"]["champion"] == "churn@v1"
    assert card["gates"]["fairness"] == GATES["fairness"] and card["gate_report"]["ref"] == v.ref
    (req,) = card["requests"]
    assert (req["replaces"], req["status"], req["decided_by"]) == ("churn@v1", "rejected", "omar")
    page = cards.render_html(card)
    json.dumps(card)
    # metrics with their intervals, candidate against the champion and the difference
    assert "0.912 (0.903 to 0.921)" in page and "0.897 (0.887 to 0.907)" in page and "0.015 (0.008 to 0.022)" in page
    assert "4,000</b> held-out rows" in page and "95% intervals from 1,000 bootstrap resamples" in page
    # the group table: each group with its interval, the gap and ratio; the failing gate marked
    assert "<h3>By sex</h3>" in page and "0.861 [0.846, 0.876]" in page and "<h3>By age_band</h3>" in page
    assert ">F (1,960 rows)</th>" in page and ">51+ (1,150 rows)</th>" in page  # a column per group
    assert "&#10007; accuracy by sex fails its fairness gate: gap 0.083 above the maximum 0.05 (worst F, best M)." \
        in page and "<b>&#10007; 0.083</b>" in page
    assert page.count("fails its fairness gate") == 1  # the age band passes its ratio gate; f1 has no gate
    # the charts: importance, three partial dependences, calibration; their texts escaped inside
    drawings = svgs(page)
    assert len(drawings) == 5 and all(d.startswith("<svg") for d in drawings)
    assert "tenure_months" in drawings[0] and "noise" in drawings[0]
    assert "month-to-month" in drawings[2] and "observed share of yes" in drawings[4]
    assert "near copies (r = 0.96)" in page and "Brier score <b>0.071</b>" in page
    # the review history: the request and its decision, the user's words escaped
    assert "better &lt;recall&gt; on March" in page and "fix the gap for women first" in page
    assert "make it champion instead of churn@v1" in page
    assert "<h3>Known limitations" in page  # still marked: only intended use was written


def test_failing_fairness_reads_both_kinds_of_rule() -> None:
    doc = evidence_document()
    assert failing_fairness(GATES, doc) == {("sex", "accuracy"): "gap 0.083 above the maximum 0.05"}
    rules = {"fairness": [{"column": "age_band", "metric": "accuracy", "min_ratio": 0.99},
                          {"column": "region", "metric": "accuracy", "max_gap": 0.1}]}
    assert failing_fairness(rules, doc) == {("age_band", "accuracy"): "ratio 0.987 below the minimum 0.99",
                                            ("region", "accuracy"): "not in the evidence"}
    assert failing_fairness(None, doc) == {} and failing_fairness(GATES, None) == {
        ("sex", "accuracy"): "not in the evidence", ("age_band", "accuracy"): "not in the evidence"}


def test_user_text_is_escaped_everywhere_in_the_review_part(store: Store) -> None:
    v = make_version(store)
    hostile = "<script>alert(1)</script> & <img src=x onerror=alert(2)>"
    cards.set_card_notes(store, v.ref, out_of_scope_uses=hostile, comment="<b>why</b>")
    doc = evidence_document(with_champion=False)
    doc["groups"][0]["column"] = "<i>sex</i>"
    doc["groups"][0]["rows"][0]["group"] = "<script>F</script>"
    doc["importance"]["features"][0]["feature"] = "</text><script>x</script>"
    doc["notes"] = ["<b>note</b>"]
    evidence.store_evidence(store, v.id, doc, settings={}, champion_version_id=None)
    page = cards.render_html(cards.model_card(store, v.ref))
    assert "<script" not in page.lower() and "<i>sex" not in page and "<b>note" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;b&gt;why&lt;/b&gt;" in page and "&lt;script&gt;F&lt;/script&gt;" in page
    assert "with no champion to compare with" in page
    # inside a drawing the text is XML-escaped, so the drawing stays one well-formed document
    import xml.etree.ElementTree as ET

    for d in svgs(page):
        ET.fromstring(d)
    assert "&lt;/text&gt;&lt;script&gt;" in svgs(page)[0]
    # the only source is an embedded drawing: nothing is fetched
    assert re.findall(r'src="([a-z]+):', page) == ["data"] * len(svgs(page))
    assert "href=" not in page


def test_the_cli_sets_the_review_fields_and_lists_the_history(capsys: pytest.CaptureFixture[str], store: Store,
                                                              store_dir: Path) -> None:
    make_version(store)
    root = str(store_dir)
    code, out, _ = cli(capsys, "model", "card", "churn@v1", "--store", root)
    assert code == 0 and re.search(r"out-of-scope uses: +\(required before a promotion request; set it with "
                                   r"--out-of-scope-uses TEXT", out)
    code, data, _ = cli_json(capsys, "model", "card", "churn@v1", "--out-of-scope-uses", "Pricing",
                             "--known-limitations", "2025 data", "--ethical-considerations", "Check the groups",
                             "--comment", "review fields", "--store", root)
    assert code == 0 and data["notes"]["out_of_scope_uses"] == "Pricing" and data["notes_revision"] == 1
    assert data["review_missing"] == ["Intended use"]
    code, _, err = cli(capsys, "model", "card", "churn@v1", "--comment", "x", "--store", root)
    assert code == 2 and "--known-limitations" in err
    code, _, err = cli(capsys, "model", "card", "churn@v1", "--history", "--notes", "x", "--store", root)
    assert code == 2 and "--history" in err
    code, out, _ = cli(capsys, "model", "card", "churn@v1", "--history", "--store", root)
    assert code == 0 and "REVISION" in out and "review fields" in out and "out of scope uses" in out
    code, history, _ = cli_json(capsys, "model", "card", "churn@v1", "--history", "--store", root)
    assert code == 0 and [h["revision"] for h in history] == [1] and history[0]["to"]["known_limitations"] == (
        "2025 data")


def test_the_html_card_reads_the_evidence_the_job_computes(store: Store) -> None:
    """The real evidence document (compute_evidence on generated data whose labels are noisier for
    one group), not only the fixture: the card shows its metrics, its failing fairness gate and its
    charts."""
    from evidence_helpers import fair_frame, train_version
    from modelyard.core.registry.review import compute

    v1 = train_version(store, fair_frame(2000), "credit", dataset="credit")
    edits.set_alias(store, v1.ref, "champion", comment="first")
    edits.set_gates(store, "credit", {"sensitive_columns": ["sex"],
                                      "fairness": [{"column": "sex", "metric": "accuracy", "max_gap": 0.05}]},
                    comment="policy")
    v2 = train_version(store, fair_frame(2000, noise=(0.3, 0.02), seed=1), "credit", dataset="credit-unfair")
    compute.compute_evidence(store, v2.ref, n_boot=50, repeats=2)
    card = cards.model_card(store, v2.ref)
    doc = card["evidence"]["document"]
    assert card["evidence"]["champion"] == "credit@v1" and not card["gate_report"]["passed"]
    page = cards.render_html(card)
    accuracy = next(r for r in doc["metrics"] if r["metric"] == "accuracy")
    assert f"{accuracy['candidate']['value']:.3f} ({accuracy['candidate']['low']:.3f} to" in page
    assert "<h3>By sex</h3>" in page and "fails its fairness gate: gap" in page
    assert "accuracy gap between groups of sex is" in page  # the gate's own reason, in the verdict
    assert len(svgs(page)) == 2 + len(doc["partial_dependence"])  # importance, the PDPs, calibration
