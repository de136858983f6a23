"""``modelyard notify email | webhook | show | clear | test | list | deliver``: where pipeline and drift
notifications go, a test message, and the record of what was sent."""

from __future__ import annotations

import argparse
import os
from typing import Any

from modelyard.cli._common import (
    EXIT_FAILURE,
    add_command,
    add_noun,
    eprint,
    open_store,
    positive_int,
    positive_number,
    print_json,
    print_kv,
    print_table,
    wants_json,
)

# Mirror modelyard.core.notify.settings (not imported here: it pulls in SQLAlchemy at start-up).
CHANNELS = ("email", "webhook")
SECURITY = ("starttls", "ssl", "none")
FORMATS = ("json", "slack")
STATUSES = ("pending", "sent", "failed")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    verbs = add_noun(subparsers, "notify", common, help="e-mail and webhook notifications of pipelines and drift",
                     description="Where notifications of pipeline runs (failed, blocked, succeeded) and drift checks "
                                 "go: e-mail through an SMTP server and a webhook (JSON, or a Slack-compatible body). "
                                 "The settings are kept in the store; the SMTP password never is.")
    p = add_command(verbs, "email", common, _email, help="send notifications by e-mail (SMTP)",
                    epilog="examples:\n"
                           "  modelyard notify email --host smtp.example.com --sender modelyard@example.com "
                           "--to ops@example.com --username bot\n"
                           "  modelyard notify email --host smtp.example.com --security ssl --sender m@example.com "
                           "--to a@example.com --to b@example.com --username bot --password-file ~/.smtp-password\n\n"
                           "The password is read when a message is sent: from $MODELYARD_SMTP_PASSWORD (or the "
                           "variable --password-env names), or from a file only you can read (chmod 600). "
                           "It is never stored.")
    p.add_argument("--host", required=True, help="the SMTP server")
    p.add_argument("--port", type=positive_int, help="its port (default: 587 for starttls, 465 for ssl, 25 for none)")
    p.add_argument("--security", choices=SECURITY, default="starttls",
                   help="starttls (default), ssl (TLS from the start) or none (a relay on a trusted network)")
    p.add_argument("--sender", required=True, metavar="ADDRESS", help="the From address")
    p.add_argument("--to", action="append", required=True, metavar="ADDRESS", dest="recipients",
                   help="a recipient (repeat for several)")
    p.add_argument("--username", help="the SMTP login (no login without it)")
    secret = p.add_mutually_exclusive_group()
    secret.add_argument("--password-env", metavar="NAME", dest="password_env",
                        help="the environment variable holding the password (default: MODELYARD_SMTP_PASSWORD)")
    secret.add_argument("--password-file", metavar="PATH", dest="password_file",
                        help="a file holding the password, readable only by you (chmod 600)")
    p = add_command(verbs, "webhook", common, _webhook, help="send notifications to a webhook (an HTTP POST of JSON)",
                    epilog="examples:\n  modelyard notify webhook --url https://hooks.example.com/modelyard\n"
                           "  modelyard notify webhook --url https://hooks.slack.com/services/T0/B0/XXXX --format slack")
    p.add_argument("--url", required=True, help="the address to POST to (http or https)")
    p.add_argument("--format", choices=FORMATS, default="json",
                   help="json (default): {event, subject, text, ...details}; slack: a Slack-compatible {text, blocks}")
    p.add_argument("--timeout", type=positive_number, metavar="SECONDS", help="how long to wait for an answer "
                                                                              "(default 5, at most 60)")
    add_command(verbs, "show", common, _show, help="show where notifications go")
    p = add_command(verbs, "clear", common, _clear, help="stop sending notifications through a channel")
    p.add_argument("channel", choices=CHANNELS)
    p = add_command(verbs, "test", common, _test, help="send a test message now (exit 1 when it cannot be delivered)",
                    epilog="example:\n  modelyard notify test --channel email")
    p.add_argument("--channel", choices=CHANNELS, help="only this channel (default: every channel set up)")
    p = add_command(verbs, "list", common, _list, help="list notifications, newest first, with their delivery")
    p.add_argument("--status", choices=STATUSES, help="only notifications with this status")
    p.add_argument("--limit", type=positive_int, default=50, metavar="N", help="show at most N (default: 50)")
    add_command(verbs, "deliver", common, _deliver,
                help="retry the notifications waiting for delivery whose time has come (the agent does this too)")


# --------------------------------------------------------------------------- settings


def _password_note(settings: Any) -> str:
    if not settings.username:
        return "no login (no --username)"
    if settings.password_file:
        return f"read from the file {settings.password_file} when sending"
    state = "set" if os.environ.get(settings.password_env) else "not set in this shell"
    return f"read from ${settings.password_env} when sending ({state})"


def _email(args: argparse.Namespace) -> int:
    from modelyard.core.notify import set_email

    with open_store(args) as store:
        settings = set_email(store, host=args.host, port=args.port, security=args.security, sender=args.sender,
                             recipients=args.recipients, username=args.username, password_env=args.password_env,
                             password_file=args.password_file)
    if wants_json(args):
        print_json({"email": settings.to_json()})
        return 0
    print(f"E-mail notifications go to {settings.target} from {settings.sender} through {settings.host}:"
          f"{settings.port} ({settings.security}).")
    print(f"Password: {_password_note(settings)}; it is never stored.")
    if settings.username and not settings.password_file and not os.environ.get(settings.password_env):
        eprint(f"note: set {settings.password_env} where the app or 'modelyard agent' runs, "
               "or give --password-file.")
    print("Try it: modelyard notify test --channel email")
    return 0


def _webhook(args: argparse.Namespace) -> int:
    from modelyard.core.notify import set_webhook

    with open_store(args) as store:
        settings = set_webhook(store, url=args.url, format=args.format, timeout=args.timeout)
    if wants_json(args):
        print_json({"webhook": settings.to_json()})
        return 0
    print(f"Webhook notifications ({settings.format}) go to {settings.target}.")
    print("Try it: modelyard notify test --channel webhook")
    return 0


def _show(args: argparse.Namespace) -> int:
    from modelyard.core.notify import get_settings

    with open_store(args) as store:
        settings = get_settings(store)
    if wants_json(args):
        data = settings.to_json()
        if settings.email is not None:
            data["email"]["password"] = _password_note(settings.email)
        print_json(data)
        return 0
    if settings.email is not None:
        e = settings.email
        print("e-mail:")
        print_kv([("server", f"{e.host}:{e.port}"), ("security", e.security), ("sender", e.sender),
                  ("recipients", e.target), ("username", e.username or ""), ("password", _password_note(e))],
                 indent=2)
    else:
        print("e-mail: not set up (modelyard notify email)")
    if settings.webhook is not None:
        w = settings.webhook
        print("webhook:")
        print_kv([("url", w.url), ("format", w.format), ("timeout", f"{w.timeout:g} s")], indent=2)
    else:
        print("webhook: not set up (modelyard notify webhook)")
    for channel, problem in settings.problems.items():
        eprint(f"warning: the stored {channel} settings are not used: {problem}")
    return 0


def _clear(args: argparse.Namespace) -> int:
    from modelyard.core.notify import clear

    with open_store(args) as store:
        removed = clear(store, args.channel)
    if wants_json(args):
        print_json({"channel": args.channel, "cleared": removed})
    elif removed:
        print(f"Notifications by {_channel_name(args.channel)} are off.")
    else:
        print(f"Notifications by {_channel_name(args.channel)} were not set up.")
    return 0


def _channel_name(channel: str) -> str:
    return "e-mail" if channel == "email" else channel


# --------------------------------------------------------------------------- sending and the record


def _test(args: argparse.Namespace) -> int:
    from modelyard.core.notify import send_test

    with open_store(args) as store:
        rows = send_test(store, args.channel)
    failed = [r for r in rows if r.status != "sent"]
    if wants_json(args):
        print_json({"delivered": not failed, "notifications": [r.to_json() for r in rows]})
    else:
        for r in rows:
            if r.status == "sent":
                print(f"{_channel_name(r.channel)}: sent to {r.target}")
    for r in failed:
        eprint(f"error: the test {_channel_name(r.channel)} was not delivered after "
               f"{r.attempts} attempt{'s' if r.attempts != 1 else ''}: {r.last_error}")
    return EXIT_FAILURE if failed else 0


def _list(args: argparse.Namespace) -> int:
    from modelyard.core.notify import list_notifications

    with open_store(args) as store:
        rows = list_notifications(store, args.limit, status=args.status)
    if wants_json(args):
        print_json([r.to_json() for r in rows])
        return 0
    if not rows:
        print("No notifications" + (f" with status {args.status}." if args.status else "."))
        return 0
    print_table(["ID", "CREATED", "EVENT", "CHANNEL", "STATUS", "TRIES", "SUBJECT", "LAST ERROR"],
                [[r.id, r.created_at, r.event, r.channel, r.status, r.attempts, r.subject,
                  r.last_error if r.status != "sent" else ""] for r in rows],
                right=(0, 5), max_width=100)  # the reason is what this list is read for
    return 0


def _deliver(args: argparse.Namespace) -> int:
    from modelyard.core.notify import deliver_pending

    with open_store(args) as store:
        counts = deliver_pending(store)
    if wants_json(args):
        print_json(counts)
    else:
        print(f"Sent {counts['sent']}, gave up on {counts['failed']}, {counts['pending']} still waiting.")
    return 0
