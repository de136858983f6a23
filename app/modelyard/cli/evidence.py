"""``modelyard model evidence REF``: compute a version's evidence (held-out metrics with intervals
against the champion, group gaps, explanations) and print a short summary; and the evidence step
of ``model register``. Registered under ``modelyard model`` by :mod:`modelyard.cli.model`."""

from __future__ import annotations

import argparse
from typing import Any

from modelyard.cli._common import (
    add_command,
    open_store,
    print_json,
    raise_for_outcome,
    run_foreground,
    wants_json,
)


def add_commands(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = add_command(verbs, "evidence", common, _evidence,
                    help="compute a version's evidence: metrics with intervals vs the champion, groups, explanations",
                    epilog="examples:\n  modelyard model evidence churn@v3\n"
                           "  modelyard model evidence churn@v3 --sensitive sex --sensitive age_band\n"
                           "  modelyard model evidence churn@v3 --resamples 2000 --json")
    p.add_argument("ref", metavar="NAME[@vN|@ALIAS]")
    p.add_argument("--sensitive", action="append", metavar="COL", default=None,
                   help="a column whose groups to compare (repeat; default: the model's gates' sensitive columns)")
    p.add_argument("--resamples", type=int, default=1000, metavar="N", help="bootstrap resamples (default 1000)")
    p.add_argument("--repeats", type=int, default=5, metavar="N",
                   help="permutation importance repeats (default 5)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help=argparse.SUPPRESS)


def add_register_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-evidence", action="store_true", dest="no_evidence",
                   help="do not compute the new version's evidence now ('modelyard model evidence REF' later)")


def _range(e: dict[str, Any] | None, digits: int = 3) -> str:
    if not e or e.get("value") is None:
        return "-"
    low, high = e.get("low"), e.get("high")
    text = f"{e['value']:.{digits}f}"
    if low is not None and high is not None:
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def summary_lines(doc: dict[str, Any]) -> list[str]:
    """A short text summary of an evidence document."""
    rows = doc.get("rows") or {}
    pct = round((doc.get("confidence") or 0.95) * 100)
    lines = [f"Evidence for {doc.get('version')} on {rows.get('n', 0):,} held-out rows ({rows.get('split')}); "
             f"{pct} % intervals from {doc.get('n_boot', 0):,} resamples."]
    champion = doc.get("champion")
    lines.append(f"Metrics (candidate vs the champion {champion}, paired):" if champion else "Metrics:")
    width = max((len(e["metric"]) for e in doc.get("metrics") or []), default=8)
    for e in doc.get("metrics") or []:
        line = f"  {e['metric']:<{width}}  {_range(e.get('candidate'))}"
        if e.get("champion"):
            d = e.get("difference") or {}
            better = "higher" if e.get("higher_is_better", True) else "lower"
            line += f"   champion {_range(e['champion'])}   difference {_range(d)} ({better} is better)"
        lines.append(line)
    for section in doc.get("groups") or []:
        gaps = section.get("gaps") or {}
        sizes = ", ".join(f"{r['group']} {r['n']:,}" for r in section.get("rows") or [])
        lines.append(f"Groups of {section['column']} ({sizes}):")
        for key in ("accuracy", "balanced_accuracy", "selection_rate", "true_positive_rate", "rmse", "mae"):
            g = gaps.get(key)
            if g and g.get("gap") is not None:
                ratio = f", ratio {g['ratio']:.3f}" if g.get("ratio") is not None else ""
                lines.append(f"  {key}: gap {g['gap']:.3f}{ratio} (worst {g['worst']}, best {g['best']})")
    imp = doc.get("importance") or {}
    top = [f"{f['feature']} {f['mean']:.3f}" for f in (imp.get("features") or [])[:5] if f.get("mean") is not None]
    if top:
        lines.append(f"Top features (drop in {imp.get('metric')} when shuffled): {', '.join(top)}")
    if imp.get("warning"):
        lines.append(f"Warning: {imp['warning']}")
    calib = doc.get("calibration")
    if calib and calib.get("brier") is not None:
        lines.append(f"Calibration of {calib['of']}: Brier score {calib['brier']:.3f}.")
    lines.extend(f"Note: {n}" for n in doc.get("notes") or [])
    return lines


def _evidence(args: argparse.Namespace) -> int:
    from modelyard.core.registry.review.compute import evidence_spec
    from modelyard.core.registry.review.evidence import latest_evidence

    with open_store(args) as store:
        spec = evidence_spec(args.ref, sensitive=args.sensitive, n_boot=args.resamples, repeats=args.repeats,
                             seed=args.seed)
        outcome = run_foreground(store, spec, wants_json(args))
        raise_for_outcome(outcome)
        info = latest_evidence(store, outcome.result["ref"])
    assert info is not None
    if wants_json(args):
        print_json({"evidence": info.to_json(), "document": info.payload})
        return 0
    for line in summary_lines(info.payload):
        print(line)
    return 0


def after_register(args: argparse.Namespace, store: Any, ref: str) -> dict[str, Any] | None:
    """The evidence step of ``model register``: computed now unless ``--no-evidence``. A failure
    is reported on one line and leaves the registration standing (the command still succeeds)."""
    import sys

    from modelyard.core.registry.review.compute import evidence_spec

    if getattr(args, "no_evidence", False):
        return None
    from modelyard.core.registry.review.heldout import heldout_problem
    from modelyard.core.registry.versions import get_version

    problem = heldout_problem(store, get_version(store, ref).id)
    if problem is not None:
        print(f"No evidence computed for {ref}: {problem} (evidence is computed on the test part of the split the "
              "version was trained with).", file=sys.stderr)
        return {"status": "skipped", "error": problem}
    outcome = run_foreground(store, evidence_spec(ref), wants_json(args))
    if not outcome.ok:
        why = outcome.message if outcome.status == "failed" else f"the job was {outcome.status}"
        print(f"The evidence of {ref} was not computed: {why} ('modelyard model evidence {ref}' computes it later).",
              file=sys.stderr)
        return {"status": outcome.status, "error": outcome.message}
    return {"status": "succeeded", **(outcome.result or {})}
