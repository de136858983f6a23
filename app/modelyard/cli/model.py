"""``modelyard model register|list|show|alias|stage|gate|timeline|card|lineage`` (and the promotion
requests of cli/review.py, the evidence of cli/evidence.py): the model registry."""

from __future__ import annotations

import argparse
from typing import Any

from modelyard.cli import evidence as evidence_cli
from modelyard.cli import review as review_cli
from modelyard.cli._common import (
    UsageError,
    add_command,
    add_noun,
    fmt_time,
    open_store,
    print_json,
    print_kv,
    print_table,
    wants_json,
)

EXPECT_HELP = ("refuse the change (exit 1, naming who changed the model and when) unless the model is still at "
               "this revision ('modelyard model show' prints it)")


def _add_expect(p: argparse.ArgumentParser) -> None:
    p.add_argument("--expect-revision", type=int, metavar="N", dest="expect_revision", help=EXPECT_HELP)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    verbs = add_noun(subparsers, "model", common, help="register models, set aliases, stages and gates",
                     description="Register the models runs logged as numbered versions of a named model, point "
                                 "aliases (champion, challenger...) at versions, move them through stages and "
                                 "guard promotions with gates. Every change is audited.")
    p = add_command(verbs, "register", common, _register, help="register a run's model as a new version",
                    epilog="example:\n  modelyard model register 3fa9c1d2 --name churn --comment 'March retrain'")
    p.add_argument("run_id", metavar="RUN_ID", help="the run's id, or its first characters")
    p.add_argument("--name", required=True, help="the registered model's name (created on first use)")
    p.add_argument("--comment", help="a note for the audit log")
    evidence_cli.add_register_options(p)
    add_command(verbs, "list", common, _list, help="list the registered models")
    p = add_command(verbs, "show", common, _show, help="show one version (default: the latest)",
                    epilog="examples:\n  modelyard model show churn\n  modelyard model show churn@v3\n"
                           "  modelyard model show churn@champion --json")
    p.add_argument("ref", metavar="NAME[@vN|@ALIAS]")
    p = add_command(verbs, "alias", common, _alias, help="point an alias at a version (gated for champion)",
                    epilog="examples:\n  modelyard model alias churn@v3 champion --comment 'better f1'\n"
                           "  modelyard model alias churn challenger --remove --comment 'done'\n"
                           "  modelyard model alias churn@v4 champion --expect-revision 7 --comment 'from what I saw'")
    p.add_argument("ref", metavar="NAME@vN")
    p.add_argument("alias", metavar="ALIAS")
    p.add_argument("--comment", help="why (required)")
    p.add_argument("--force", action="store_true", help="override failing gates (audited; needs --comment)")
    p.add_argument("--remove", action="store_true", help="take the alias off the model instead")
    _add_expect(p)
    p = add_command(verbs, "stage", common, _stage, help="move a version to a stage (gated for Production)",
                    epilog="example:\n  modelyard model stage churn@v3 Production --comment 'go live'")
    p.add_argument("ref", metavar="NAME@vN")
    p.add_argument("stage", metavar="STAGE", help="None, Staging, Production or Archived")
    p.add_argument("--comment", help="why (required)")
    p.add_argument("--force", action="store_true", help="override failing gates (audited; needs --comment)")
    _add_expect(p)
    p = add_command(verbs, "gate", common, _gate, help="show or set a model's promotion gates",
                    epilog="examples:\n  modelyard model gate churn\n"
                           "  modelyard model gate churn --min accuracy=0.9 --beat-champion f1 --comment policy\n"
                           "  modelyard model gate churn --max-gap sex:accuracy=0.05 --min-ratio sex:selection_rate=0.8 "
                           "--comment fairness\n"
                           "  modelyard model gate churn --clear --comment 'no gates'")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--min", action="append", default=[], metavar="METRIC=VALUE", dest="mins",
                   help="a minimum test metric value (repeat for several)")
    p.add_argument("--beat-champion", metavar="METRIC", dest="beat",
                   help="must beat the current champion on this test metric (same split)")
    p.add_argument("--lower-is-better", action="store_true", dest="lower",
                   help="with --beat-champion: a lower value is better (rmse, log_loss...)")
    p.add_argument("--sensitive", action="append", default=[], metavar="COL",
                   help="a column whose groups the evidence compares (repeat for several)")
    p.add_argument("--max-gap", action="append", default=[], metavar="COL:METRIC=GAP", dest="max_gaps",
                   help="fairness: the largest allowed gap of METRIC between groups of COL, as in sex:accuracy=0.05")
    p.add_argument("--min-ratio", action="append", default=[], metavar="COL:METRIC=RATIO", dest="min_ratios",
                   help="fairness: the smallest allowed ratio (worst / best group), as in sex:selection_rate=0.8")
    p.add_argument("--clear", action="store_true", help="remove every gate")
    p.add_argument("--comment", help="why (required to change the gates)")
    _add_expect(p)
    p = add_command(verbs, "timeline", common, _timeline, help="the model's audit log, newest first")
    p.add_argument("name", metavar="NAME")
    p = add_command(verbs, "card", common, _card, help="show, edit or export a version's model card",
                    epilog="examples:\n  modelyard model card churn@v3\n"
                           "  modelyard model card churn@v3 --intended-use 'Monthly churn scoring' \\\n"
                           "      --out-of-scope-uses 'Pricing or credit decisions' \\\n"
                           "      --known-limitations 'Trained on 2025 data' \\\n"
                           "      --ethical-considerations 'Less accurate for women; see the group table' \\\n"
                           "      --comment 'first card'\n"
                           "  modelyard model card churn@v3 --history\n"
                           "  modelyard model card churn@champion --html churn-card.html\n"
                           "the four review fields (intended use, out-of-scope uses, known limitations, ethical\n"
                           "considerations) are required before a promotion can be requested")
    p.add_argument("ref", metavar="NAME[@vN|@ALIAS]")
    p.add_argument("--html", metavar="FILE", help="write the card as a self-contained HTML page")
    p.add_argument("--intended-use", metavar="TEXT", dest="intended_use",
                   help="set what the model is for (and not for); '' clears it")
    p.add_argument("--out-of-scope-uses", metavar="TEXT", dest="out_of_scope_uses",
                   help="set what the model must not be used for; '' clears it")
    p.add_argument("--known-limitations", metavar="TEXT", dest="known_limitations",
                   help="set where the model is known to do badly; '' clears it")
    p.add_argument("--ethical-considerations", metavar="TEXT", dest="ethical_considerations",
                   help="set the risks to people and how they are handled; '' clears it")
    p.add_argument("--notes", metavar="TEXT", help="set free-form notes; '' clears them")
    p.add_argument("--comment", help="why (required when setting a text; audited)")
    p.add_argument("--history", action="store_true", help="list the edits of the card's texts, newest first")
    evidence_cli.add_commands(verbs, common)
    p = add_command(verbs, "lineage", common, _lineage, help="where a version came from and where it went",
                    epilog="example:\n  modelyard model lineage churn@v3 --json")
    p.add_argument("ref", metavar="NAME[@vN|@ALIAS]")
    review_cli.add_model_verbs(verbs, common)  # request, requests, approve, reject, withdraw (cli/review.py)


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else ("" if value is None else str(value))


def _print_version(info: Any) -> None:
    print_kv([("model", info.ref), ("run id", info.run_id or ""), ("stage", info.stage),
              ("aliases", ", ".join(info.aliases)), ("dataset version", info.dataset_version_id or ""),
              ("split", info.split_id or ""), ("created", info.created_at), ("created by", info.created_by or ""),
              ("model sha256", info.model_sha256 or ""),
              ("model revision", info.model_revision)])
    print("metrics:" if info.metrics else "metrics: (none)")
    print_kv({k: _num(v) for k, v in info.metrics.items()}, indent=2)


def _register(args: argparse.Namespace) -> int:
    from modelyard.core.registry import versions as registry

    with open_store(args) as store:
        info = registry.register(store, args.run_id, args.name, comment=args.comment)
        evidence = evidence_cli.after_register(args, store, info.ref)
    if wants_json(args):
        print_json(info.to_json() | ({"evidence": evidence} if evidence is not None else {}))
        return 0
    print(f"Registered run {info.run_id[:12] if info.run_id else ''} as {info.ref}.")
    if evidence is not None and evidence.get("status") == "succeeded":
        print(f"Computed its evidence on {evidence['rows']:,} held-out rows in {evidence['seconds']:.1f} s "
              f"('modelyard model evidence {info.ref}' shows it).")
    return 0


def _list(args: argparse.Namespace) -> int:
    from modelyard.core.registry import versions as registry

    with open_store(args) as store:
        models = registry.list_models(store)
    if wants_json(args):
        print_json([mi.to_json() for mi in models])
        return 0
    if not models:
        print("No registered models. Register one with 'modelyard model register RUN_ID --name NAME'.")
        return 0
    rows = [[mi.name, mi.latest_version, ", ".join(f"{a}=v{v}" for a, v in mi.aliases.items()),
             ", ".join(f"{st}=" + ",".join(f"v{n}" for n in ns) for st, ns in mi.stages.items()), mi.updated_at]
            for mi in models]
    print_table(["NAME", "LATEST", "ALIASES", "STAGES", "UPDATED"], rows, right=[1])
    return 0


def _show(args: argparse.Namespace) -> int:
    from modelyard.core.registry import versions as registry

    with open_store(args) as store:
        info = registry.get_version(store, args.ref)
    if wants_json(args):
        print_json(info.to_json() | {"revision": info.model_revision})
        return 0
    _print_version(info)
    return 0


def _alias(args: argparse.Namespace) -> int:
    from modelyard.core.registry import versions as registry

    with open_store(args) as store:
        if args.remove:
            model = registry.remove_alias(store, args.ref, args.alias, comment=args.comment,
                                          expected_revision=args.expect_revision)
            result: dict[str, Any] = {"model": model.name, "alias": args.alias, "removed": True,
                                      "revision": model.revision}
            text = f"Removed the alias {args.alias!r} from {result['model']}."
        else:
            info = registry.set_alias(store, args.ref, args.alias, comment=args.comment, force=args.force,
                                      expected_revision=args.expect_revision)
            result = info.to_json() | {"revision": info.model_revision}
            text = f"{info.ref} is now {args.alias!r}."
    if wants_json(args):
        print_json(result)
    else:
        print(text)
    return 0


def _stage(args: argparse.Namespace) -> int:
    from modelyard.core.registry import versions as registry

    with open_store(args) as store:
        info = registry.set_stage(store, args.ref, args.stage, comment=args.comment, force=args.force,
                                  expected_revision=args.expect_revision)
    if wants_json(args):
        print_json(info.to_json() | {"revision": info.model_revision})
    else:
        print(f"{info.ref} is in stage {info.stage}.")
    return 0


def _parse_min(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    try:
        if not sep or not key.strip():
            raise ValueError
        return key.strip(), float(value)
    except ValueError:
        raise UsageError(f"--min expects METRIC=VALUE, as in --min accuracy=0.9 (got {text!r}).") from None


def _parse_fairness(text: str, key: str) -> dict[str, Any]:
    option = "--max-gap" if key == "max_gap" else "--min-ratio"
    head, sep, value = text.partition("=")
    column, colon, metric = head.partition(":")
    try:
        if not sep or not colon or not column.strip() or not metric.strip():
            raise ValueError
        return {"column": column.strip(), "metric": metric.strip(), key: float(value)}
    except ValueError:
        raise UsageError(f"{option} expects COL:METRIC=VALUE, as in {option} sex:accuracy=0.05 (got {text!r}).") \
            from None


def _gate(args: argparse.Namespace) -> int:
    from modelyard.core.registry import versions as registry

    fairness = [_parse_fairness(text, "max_gap") for text in args.max_gaps] + \
        [_parse_fairness(text, "min_ratio") for text in args.min_ratios]
    changing = bool(args.mins or args.beat or args.clear or args.sensitive or fairness)
    if args.clear and (args.mins or args.beat or args.sensitive or fairness):
        raise UsageError("--clear cannot be combined with --min, --beat-champion, --sensitive, --max-gap or --min-ratio.")
    if args.lower and not args.beat:
        raise UsageError("--lower-is-better goes with --beat-champion METRIC.")
    with open_store(args) as store:
        if changing:
            gates: dict[str, Any] = {}
            if args.mins:
                gates["min_metrics"] = dict(_parse_min(t) for t in args.mins)
            if args.beat:
                gates["beat_champion"] = {"metric": args.beat, "higher_is_better": not args.lower}
            if args.sensitive:
                gates["sensitive_columns"] = list(args.sensitive)
            if fairness:
                gates["fairness"] = fairness
            info = registry.set_gates(store, args.name, gates, comment=args.comment,
                                      expected_revision=args.expect_revision)
        else:
            if args.expect_revision is not None:
                raise UsageError("--expect-revision goes with a change of the gates (--min, --beat-champion or "
                                 "--clear).")
            info = registry.get_model(store, args.name)
    gates_now = info.gates or {}
    if wants_json(args):
        print_json({"model": info.name, "gates": gates_now, "revision": info.revision})
        return 0
    if not gates_now:
        print(f"{info.name} has no promotion gates.")
        return 0
    print(f"Promotion gates of {info.name} (checked for champion and Production):")
    for key, minimum in (gates_now.get("min_metrics") or {}).items():
        print(f"  {key} >= {_num(minimum)}")
    beat = gates_now.get("beat_champion")
    if beat:
        better = "higher" if beat.get("higher_is_better", True) else "lower"
        print(f"  beat the champion on {beat['metric']} ({better} is better, same test split)")
    if gates_now.get("sensitive_columns"):
        print(f"  sensitive columns: {', '.join(gates_now['sensitive_columns'])}")
    for rule in gates_now.get("fairness") or []:
        if rule.get("max_gap") is not None:
            print(f"  {rule['metric']} gap between groups of {rule['column']} at most {_num(rule['max_gap'])}")
        if rule.get("min_ratio") is not None:
            print(f"  {rule['metric']} ratio between groups of {rule['column']} at least {_num(rule['min_ratio'])}")
    return 0


def _timeline(args: argparse.Namespace) -> int:
    from modelyard.core.registry import versions as registry

    with open_store(args) as store:
        events = registry.timeline(store, args.name)
    if wants_json(args):
        print_json(events)
        return 0
    if not events:
        print(f"No events for {args.name}.")
        return 0
    rows = []
    for e in events:
        change = " -> ".join(x for x in (e["from_value"], e["to_value"]) if x)
        alias = (e["details"] or {}).get("alias")
        rows.append([fmt_time(e["at"]), e["actor"], e["action"] + (f" {alias}" if alias else ""),
                     f"v{e['version']}" if e["version"] else "", change, e["comment"] or ""])
    print_table(["WHEN", "WHO", "WHAT", "VERSION", "CHANGE", "COMMENT"], rows, max_width=60)
    return 0


def _card_text(card: dict[str, Any]) -> None:
    import datetime as dt

    from modelyard.core.registry.cards import REVIEW_FIELDS

    def when(text: Any) -> str:
        return fmt_time(dt.datetime.fromisoformat(text)) if isinstance(text, str) and text else ""

    notes, data, drift = card["notes"], card["data"] or {}, card["drift"]
    split = data.get("split") or {}
    counts = ", ".join(f"{k} {v}" for k, v in (split.get("counts") or {}).items() if v)
    sig = card["signature"] or {}
    inputs = [str(i.get("name")) for i in sig.get("inputs") or []]
    output = sig.get("output") or {}
    repro = card["reproducibility"] or {}
    pairs = [
        ("model", card["ref"]), ("stage", card["stage"]), ("aliases", ", ".join(card["aliases"])),
        ("registered", f"{when(card['created_at'])} by {card['created_by'] or '?'}"),
        *[(label.lower(), notes[key] or f"(required before a promotion request; set it with "
                                         f"--{key.replace('_', '-')} TEXT --comment WHY)")
          for key, label in REVIEW_FIELDS.items()],
        ("notes", notes["notes"] or "(none)"),
        ("card revision", str(card["notes_revision"]) if card["notes_revision"] else ""),
        ("data", f"{data.get('ref')} ({_num(data.get('n_rows'))} rows), target {data.get('target')}"
         if data else "(no dataset version recorded)"),
        ("split", f"{split.get('name')} ({split.get('method')}): {counts}" if split else ""),
        ("drift", f"{drift['verdict']}, {_pct(drift.get('drift_share'))} of columns drifted, checked "
                  f"{when(drift['created_at'])} (check #{drift['check_id']}, {drift['n_checks']} in all)"
         if drift else "never checked"),
        ("inputs", f"{len(inputs)}: " + ", ".join(inputs) if inputs else ""),
        ("output", f"{output.get('kind')}" + (" with class probabilities" if output.get("proba") else "")
         if output else ""),
        ("lineage", " -> ".join(", ".join(n["label"] for n in col) for col in card["lineage"]["columns"])),
        ("python", repro.get("python") or ""),
        ("packages", ", ".join(f"{k} {v}" for k, v in (repro.get("packages") or {}).items() if v)),
    ]
    print_kv([(k, v) for k, v in pairs if v])
    print("test metrics:" if card["metrics"] else "test metrics: (none)")
    print_kv({k: _num(v) for k, v in card["metrics"].items()}, indent=2)
    slices = card["slices"]
    if slices:
        metric = slices["metric"]
        print(f"per-group {metric} (test rows):")
        for col in slices["columns"]:
            best, worst = col.get("best") or {}, col.get("worst") or {}
            gap = (f" gap {_num(col['gap'])} (best {best.get('value')} {_num(best.get('score'))}, worst "
                   f"{worst.get('value')} {_num(worst.get('score'))})") if col.get("gap") is not None else ""
            print(f"  by {col['column']}:{gap}")
            print_kv([(str(g["value"]), f"{_num(g['metrics'].get(metric))}  (n={g['n']})") for g in col["groups"]],
                     indent=4)
    if card["params"]:
        print("parameters:")
        print_kv(card["params"], indent=2)


def _pct(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else "?"


def _card(args: argparse.Namespace) -> int:
    from modelyard.core.registry import cards

    texts = {key: getattr(args, key) for key in cards.NOTES_FIELDS}
    editing = any(v is not None for v in texts.values())
    if args.history and (editing or args.html):
        raise UsageError("--history only lists the card's edits: give it without --html or texts to set.")
    with open_store(args) as store:
        if editing:
            cards.set_card_notes(store, args.ref, **texts, comment=args.comment)
        elif args.comment:
            raise UsageError("--comment goes with a text to set (--intended-use, --out-of-scope-uses, "
                             "--known-limitations, --ethical-considerations or --notes): what it explains.")
        if args.history:
            return _card_history(cards.card_history(store, args.ref), args)
        card = cards.model_card(store, args.ref)
        written = None
        if args.html:
            written = cards.write_html(card, args.html)
    if wants_json(args):
        print_json(card | {"html": str(written) if written else None})
        return 0
    if args.html:
        print(f"Wrote the model card of {card['ref']} to {written}.")
        return 0
    if editing:
        print(f"Updated the model card of {card['ref']}.")
    _card_text(card)
    return 0


def _card_history(history: list[dict[str, Any]], args: argparse.Namespace) -> int:
    import datetime as dt

    if wants_json(args):
        print_json(history)
        return 0
    if not history:
        print(f"The card of {args.ref} was never edited.")
        return 0
    rows = [[str(h["revision"]), fmt_time(dt.datetime.fromisoformat(h["at"])) if h.get("at") else "", h["by"] or "",
             ", ".join(f.replace("_", " ") for f in h["fields"]), h["comment"] or ""] for h in history]
    print_table(["REVISION", "WHEN", "WHO", "CHANGED", "COMMENT"], rows, max_width=60)
    return 0


def _lineage(args: argparse.Namespace) -> int:
    from modelyard.core.registry import lineage

    with open_store(args) as store:
        graph = lineage.version_lineage(store, args.ref)
    if wants_json(args):
        print_json(graph.to_json())
        return 0
    focus = graph.node(graph.focus)
    print(f"Lineage of {focus.label}, left to right:")
    rows = []
    for i, col in enumerate(graph.columns(), 1):
        for n in col:
            title = lineage.TYPE_TITLES.get(n.type, n.type.replace("_", " "))
            rows.append([i, title.lower(), ("* " if n.role == "focus" else "") + n.label, n.role])
    print_table(["STEP", "KIND", "RECORD", "ROLE"], rows, right=[0], max_width=60)
    labels = {n.id: n.label for n in graph.nodes}
    print()
    print_table(["FROM", "RELATION", "TO"], [[labels[e.src], e.relation, labels[e.dst]] for e in graph.edges],
                max_width=60)
    if graph.hidden:
        print("not shown: " + ", ".join(f"{n} more {rel}" for rel, n in graph.hidden.items()))
    return 0
