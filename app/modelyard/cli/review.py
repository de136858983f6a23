"""``modelyard model request | requests | approve | reject | withdraw`` and ``modelyard store review``:
promotion requests (docs/governance.md "Promotion requests").

Exit codes: 0 done, 1 refused or failed (the message names the role or the step missing), 2 a bad
command line, 3 the model's gates block the approval (``--force`` with the comment overrides them).
"""

from __future__ import annotations

import argparse
from typing import Any

from modelyard.cli._common import (
    add_command,
    fmt_time,
    open_store,
    positive_int,
    print_json,
    print_kv,
    print_table,
    wants_json,
)

STATUS_CHOICES = ("open", "approved", "rejected", "withdrawn", "all")


def add_model_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    """The request verbs of ``modelyard model`` (cli/model.py calls this with its sub-parsers)."""
    p = add_command(verbs, "request", common, _request,
                    help="ask an approver to make a version champion (or move it to Production)",
                    epilog="examples:\n  modelyard model request churn@v3 --reason 'better recall on March'\n"
                           "  modelyard model request churn@v3 --target Production --reason 'go live'\n"
                           "needs the card's review fields ('modelyard model card') and the version's evidence "
                           "('modelyard model evidence')")
    p.add_argument("ref", metavar="NAME@vN")
    p.add_argument("--target", default="champion", choices=("champion", "Production"),
                   help="the alias champion (default) or the stage Production")
    p.add_argument("--reason", required=True, help="why this version should replace the current one")
    p = add_command(verbs, "requests", common, _requests,
                    help="list promotion requests, or show one with what it was decided on",
                    epilog="examples:\n  modelyard model requests\n  modelyard model requests --status all "
                           "--model churn\n  modelyard model requests 3 --json")
    p.add_argument("id", nargs="?", type=positive_int, metavar="ID",
                   help="show this request and the snapshot it was decided on (or made on)")
    p.add_argument("--status", choices=STATUS_CHOICES, default="open", help="which to list (default: open)")
    p.add_argument("--model", metavar="NAME", help="only this model's requests")
    p.add_argument("--which", choices=("decision", "request"),
                   help="with ID: the snapshot of the decision (the default once decided) or of the request")
    p = add_command(verbs, "approve", common, _approve,
                    help="approve a promotion request: the alias or stage moves now (gated)",
                    epilog="examples:\n  modelyard model approve 3 --comment 'group gap within policy'\n"
                           "  modelyard model approve 3 --force --comment 'accepted below the minimum for March'\n"
                           "exit code 3: the gates block it (the reasons are printed)")
    p.add_argument("id", type=positive_int, metavar="ID")
    p.add_argument("--comment", required=True, help="why (kept with the decision and the move)")
    p.add_argument("--force", action="store_true", help="override failing gates (audited)")
    for verb, handler, text in (("reject", _reject, "reject a promotion request, saying why"),
                                ("withdraw", _withdraw, "take back your own open promotion request")):
        p = add_command(verbs, verb, common, handler, help=text,
                        epilog=f"example:\n  modelyard model {verb} 3 --comment 'retraining first'")
        p.add_argument("id", type=positive_int, metavar="ID")
        p.add_argument("--comment", required=True, help="why (kept with the request)")


def add_store_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    """``modelyard store review`` (cli/store.py calls this with its sub-parsers)."""
    p = add_command(verbs, "review", common, _store_review,
                    help="show or set whether every promotion needs an approved request",
                    epilog="examples:\n  modelyard store review\n"
                           "  modelyard store review --require --comment 'the auditors ask for it'\n"
                           "  modelyard store review --no-require --comment 'pilot over'")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--require", dest="require", action="store_true", default=None,
                       help="every move of champion or into Production needs an approved request (admins)")
    group.add_argument("--no-require", dest="require", action="store_false",
                       help="only members who are not approvers need one (a team store's data scientists)")
    p.add_argument("--comment", help="why (required to change it; audited)")


# --------------------------------------------------------------------------- handlers


def _line(info: Any) -> str:
    replaces = f", replacing {info.replaces}" if info.replaces else ""
    return f"request {info.id}: {info.candidate} as {info.target}{replaces}"


def _request(args: argparse.Namespace) -> int:
    from modelyard.core.registry.review import requests as rq

    with open_store(args) as store:
        info = rq.request_promotion(store, args.ref, args.target, reason=args.reason)
    if wants_json(args):
        print_json(info.to_json())
    else:
        print(f"Made {_line(info)}; an approver decides it ('modelyard model requests {info.id}' shows it).")
    return 0


def _requests(args: argparse.Namespace) -> int:
    from modelyard.core.registry.review import requests as rq

    with open_store(args) as store:
        if args.id is not None:
            info = rq.get_request(store, args.id)
            snap = rq.request_snapshot(store, args.id, args.which)
            if wants_json(args):
                print_json({"request": info.to_json(), "snapshot": snap})
            else:
                _print_request(info, snap)
            return 0
        rows = rq.list_requests(store, status=args.status, name=args.model)
    if wants_json(args):
        print_json({"requests": [r.to_json() for r in rows]})
        return 0
    if not rows:
        which = "" if args.status == "all" else f"{args.status} "
        print(f"No {which}promotion requests." + (" ('--status all' lists every one.)" if args.status != "all" else ""))
        return 0
    print_table(["ID", "STATUS", "CANDIDATE", "TARGET", "REPLACES", "BY", "ASKED", "DECIDED BY"],
                [(r.id, r.status, r.candidate, r.target, r.replaces or "", r.requested_by, fmt_time(r.requested_at),
                  r.decided_by or "") for r in rows], right=[0])
    return 0


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def _interval(cell: Any) -> str:
    if not isinstance(cell, dict):
        return "-"
    return f"{_num(cell.get('value'))} [{_num(cell.get('low'))}, {_num(cell.get('high'))}]"


def _print_request(info: Any, snap: dict[str, Any]) -> None:
    import datetime as dt

    decided = (f"{info.status} by {info.decided_by} at {fmt_time(info.decided_at)}: {info.decision_comment}"
               if info.decided_by else info.status)
    print_kv([("request", info.id), ("candidate", info.candidate), ("target", info.target),
              ("replaces", info.replaces or "(nothing)"), ("asked by", f"{info.requested_by} at "
                                                                      f"{fmt_time(info.requested_at)}"),
              ("reason", info.reason), ("status", decided)])
    at = snap.get("at")
    try:
        when = fmt_time(dt.datetime.fromisoformat(at)) if isinstance(at, str) else ""
    except ValueError:
        when = str(at)
    kind = {"decision": "decided on", "request": "made on"}.get(str(snap.get("kind")), "as of")
    print(f"\nWhat it was {kind} ({snap.get('kind')} snapshot, {when} by {snap.get('by')}; champion then: "
          f"{snap.get('champion') or 'none'}):")
    report = snap.get("gate_report") or {}
    checked = report.get("checked") or []
    verdict = "passed" if report.get("passed") else "failed"
    print(f"  gates: {verdict}" + (f" ({'; '.join(checked)})" if checked else " (no gates set)"))
    for reason in report.get("reasons") or []:
        print(f"    - {reason}")
    evidence = snap.get("evidence")
    if not isinstance(evidence, dict):
        print("  evidence: none")
    else:
        rows = evidence.get("rows") or {}
        print(f"  evidence: {rows.get('n', '?')} held-out rows ({rows.get('split') or 'no split named'}), "
              f"{evidence.get('n_boot', '?')} bootstrap resamples")
        print_table(["METRIC", "CANDIDATE", "CHAMPION", "DIFFERENCE"],
                    [(m.get("metric"), _interval(m.get("candidate")), _interval(m.get("champion")),
                      _interval(m.get("difference"))) for m in evidence.get("metrics") or []], max_width=40)
        for col in evidence.get("groups") or []:
            for metric, gap in (col.get("gaps") or {}).items():
                print(f"  {metric} by {col.get('column')}: gap {_num(gap.get('gap'))}, ratio {_num(gap.get('ratio'))} "
                      f"(worst {gap.get('worst')}, best {gap.get('best')})")
    card = snap.get("card") or {}
    from modelyard.core.registry.cards import REVIEW_FIELDS

    print(f"  model card (revision {snap.get('card_revision')}):")
    print_kv([(label.lower(), card.get(key) or "(empty)") for key, label in REVIEW_FIELDS.items()], indent=4)


def _decided(args: argparse.Namespace, info: Any, text: str) -> int:
    if wants_json(args):
        print_json(info.to_json())
    else:
        print(text)
    return 0


def _approve(args: argparse.Namespace) -> int:
    from modelyard.core.registry.review import requests as rq

    with open_store(args) as store:
        info = rq.approve(store, args.id, comment=args.comment, force=args.force)
    where = "is now champion" if info.target == "champion" else "is now in Production"
    return _decided(args, info, f"Approved {_line(info)}: {info.candidate} {where}.")


def _reject(args: argparse.Namespace) -> int:
    from modelyard.core.registry.review import requests as rq

    with open_store(args) as store:
        info = rq.reject(store, args.id, comment=args.comment)
    return _decided(args, info, f"Rejected {_line(info)}.")


def _withdraw(args: argparse.Namespace) -> int:
    from modelyard.core.registry.review import requests as rq

    with open_store(args) as store:
        info = rq.withdraw(store, args.id, comment=args.comment)
    return _decided(args, info, f"Withdrew {_line(info)}.")


def _store_review(args: argparse.Namespace) -> int:
    from modelyard.core.registry.review import policy

    with open_store(args) as store:
        if args.require is not None:
            policy.set_review_required(store, args.require, comment=args.comment)
        required = policy.review_setting(store)
        you = policy.review_required(store)
    if wants_json(args):
        print_json({"review_required": required, "you_need_review": you})
        return 0
    rule = ("every move of champion or into Production needs an approved request" if required
            else "a team store's data scientists request promotions; approvers move directly")
    print(f"Review: {rule}." + (" You need a request ('modelyard model request')." if you else ""))
    return 0
