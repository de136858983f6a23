"""A realistic evidence document and snapshot (format 1, docs/governance.md) for the card's HTML
and the evidence view's tests and screenshots: a churn classifier churn@v3 against the champion
churn@v2 on 4,000 held-out rows, per-group metrics for sex and age band (the model is worse for
women: the accuracy gap 0.083 fails a fairness gate of at most 0.05), permutation importance with
two near-copy features, partial dependence for the top three features and a calibration curve.

Plain data (no computation): the numbers are plausible, not derived.
"""

from __future__ import annotations

import copy
from typing import Any


def _iv(value: float, half: float) -> dict[str, float]:
    return {"value": value, "low": round(value - half, 4), "high": round(value + half, 4)}


def evidence_document(*, with_champion: bool = True) -> dict[str, Any]:
    metrics = [
        ("accuracy", True, 0.912, 0.009, 0.897, 0.010),
        ("balanced_accuracy", True, 0.884, 0.012, 0.871, 0.013),
        ("f1_macro", True, 0.879, 0.011, 0.862, 0.012),
        ("roc_auc", True, 0.951, 0.006, 0.944, 0.007),
        ("log_loss", False, 0.231, 0.014, 0.262, 0.016),
    ]
    rows = []
    for name, higher, cand, ch, champ, hh in metrics:
        rows.append({"metric": name, "higher_is_better": higher, "candidate": _iv(cand, ch),
                     "champion": _iv(champ, hh) if with_champion else None,
                     "difference": _iv(round(cand - champ, 4), 0.007) if with_champion else None})
    groups = [
        {"column": "sex", "rows": [
            {"group": "F", "n": 1960, "metrics": {"accuracy": _iv(0.861, 0.015), "f1_macro": _iv(0.832, 0.018)}},
            {"group": "M", "n": 2040, "metrics": {"accuracy": _iv(0.944, 0.010), "f1_macro": _iv(0.921, 0.013)}}],
         "gaps": {"accuracy": {"gap": 0.083, "ratio": 0.912, "worst": "F", "best": "M"},
                  "f1_macro": {"gap": 0.089, "ratio": 0.903, "worst": "F", "best": "M"}}},
        {"column": "age_band", "rows": [
            {"group": "18-30", "n": 1130, "metrics": {"accuracy": _iv(0.905, 0.017), "f1_macro": _iv(0.871, 0.02)}},
            {"group": "31-50", "n": 1720, "metrics": {"accuracy": _iv(0.917, 0.013), "f1_macro": _iv(0.884, 0.016)}},
            {"group": "51+", "n": 1150, "metrics": {"accuracy": _iv(0.911, 0.016), "f1_macro": _iv(0.879, 0.019)}}],
         "gaps": {"accuracy": {"gap": 0.012, "ratio": 0.987, "worst": "18-30", "best": "31-50"},
                  "f1_macro": {"gap": 0.013, "ratio": 0.985, "worst": "18-30", "best": "31-50"}}},
    ]
    features = [("tenure_months", 0.142, 0.006), ("contract", 0.097, 0.005), ("monthly_charges", 0.061, 0.004),
                ("support_calls", 0.044, 0.004), ("total_charges", 0.012, 0.002), ("payment_method", 0.009, 0.002),
                ("region", 0.004, 0.001), ("noise", 0.0003, 0.0008)]
    grid = [1.0, 6.0, 12.0, 24.0, 36.0, 48.0, 60.0, 72.0]
    return {
        "format": 1, "version": "churn@v3", "champion": "churn@v2" if with_champion else None,
        "task": "classification", "target": "churned", "positive_label": "yes",
        "rows": {"n": 4000, "part": "test", "split": 'the split "random-test0.2-seed0" of churn-data@v1',
                 "dataset_version": "churn-data@v1"},
        "confidence": 0.95, "n_boot": 1000, "seed": 0,
        "metrics": rows,
        "sensitive": ["sex", "age_band"],
        "groups": groups,
        "importance": {"metric": "accuracy", "repeats": 5,
                       "features": [{"feature": f, "mean": mu, "std": sd} for f, mu, sd in features],
                       "correlated": [{"a": "tenure_months", "b": "total_charges", "r": 0.96}],
                       "warning": "tenure_months and total_charges are near copies (r = 0.96): permuting one "
                                  "leaves the other, so both look less important than they are."},
        "partial_dependence": [
            {"feature": "tenure_months", "kind": "numeric", "of": "P(yes)", "grid": grid,
             "average": [0.52, 0.44, 0.35, 0.24, 0.17, 0.12, 0.09, 0.08]},
            {"feature": "contract", "kind": "categorical", "of": "P(yes)",
             "grid": ["month-to-month", "one year", "two year"], "average": [0.41, 0.13, 0.05]},
            {"feature": "monthly_charges", "kind": "numeric", "of": "P(yes)",
             "grid": [20.0, 35.0, 50.0, 65.0, 80.0, 95.0, 110.0], "average": [0.12, 0.15, 0.19, 0.24, 0.29, 0.33, 0.35]},
        ],
        "calibration": {"of": "yes", "prob_pred": [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95],
                        "prob_true": [0.03, 0.12, 0.22, 0.36, 0.47, 0.58, 0.69, 0.74, 0.88, 0.97],
                        "counts": [1510, 620, 380, 260, 210, 190, 200, 220, 210, 200], "brier": 0.071},
        "notes": ["The champion churn@v2 was evaluated on the same 4,000 rows."],
        "computed_at": "2026-12-06T14:00:00+00:00", "seconds": 12.3,
    }


GATES = {"min_metrics": {"accuracy": 0.85}, "beat_champion": {"metric": "accuracy", "higher_is_better": True},
         "sensitive_columns": ["sex", "age_band"],
         "fairness": [{"column": "sex", "metric": "accuracy", "max_gap": 0.05},
                      {"column": "age_band", "metric": "accuracy", "min_ratio": 0.8}]}

CARD = {"intended_use": "Monthly churn scoring of retail customers, to choose whom the retention team calls.",
        "out_of_scope_uses": "Pricing, credit or any decision about an individual without a person reviewing it.",
        "known_limitations": "Trained on 2025 data; customers with under a month of tenure are scored poorly.",
        "ethical_considerations": "Less accurate for women (see the group table); calls must not be "
                                  "withheld because of a score."}


def snapshot_document(*, fair: bool = False, card: dict[str, str] | None = None, kind: str = "current",
                      evidence: bool = True) -> dict[str, Any]:
    """A snapshot of churn@v3 against churn@v2; ``fair``: the sex gap is within its gate."""
    doc = evidence_document()
    if fair:
        sex = doc["groups"][0]
        sex["rows"][0]["metrics"]["accuracy"] = _iv(0.921, 0.014)
        sex["gaps"]["accuracy"] = {"gap": 0.023, "ratio": 0.976, "worst": "F", "best": "M"}
    reasons = [] if fair else [("accuracy gap between groups of sex is 0.083 (F 0.861, M 0.944), above the "
                                "maximum 0.05.")]
    return {"format": 1, "kind": kind, "at": "2026-12-06T14:05:00+00:00", "by": "dana",
            "candidate": "churn@v3", "target": "champion", "champion": "churn@v2",
            "request": None, "gates": copy.deepcopy(GATES),
            "gate_report": {"ref": "churn@v3", "passed": fair, "reasons": reasons, "is_champion": False,
                            "checked": ["min accuracy >= 0.85", "beat the champion on accuracy (higher is better)",
                                        "accuracy gap between groups of sex at most 0.05",
                                        "accuracy ratio between groups of age_band at least 0.8"]},
            "card": dict(CARD if card is None else card), "card_revision": 3,
            "evidence": doc if evidence else None, "evidence_sha256": "ab" * 32 if evidence else None}
