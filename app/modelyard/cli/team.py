"""``modelyard team add | list | set-role | remove | whoami``: the members of a team store and their roles.

A team store (PostgreSQL) has members, each connecting as their own database login, in one of the
roles viewer, scientist (data scientist), approver, admin; the database enforces them
(core/store/team.py, core/store/roles_sql.py). An SQLite store has one user, with every right.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from modelyard.cli._common import (
    add_command,
    add_noun,
    open_store,
    print_json,
    print_table,
    wants_json,
)
from modelyard.core.common.errors import ModelyardError

# Mirror modelyard.core.store.team.ROLES (not imported here: the store pulls in SQLAlchemy at start-up).
ROLES = ("viewer", "scientist", "approver", "admin")
ROLE_HELP = ("viewer (reads everything), scientist (a data scientist: imports, trains, registers, exports), "
             "approver (also moves champion and the Production stage, edits gates), admin (also manages members "
             "and the store's settings)")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    verbs = add_noun(subparsers, "team", common, help="the members of a team store and their roles",
                     description="The members of a team store (PostgreSQL) and their roles:\n"
                                 "  viewer     reads everything\n"
                                 "  scientist  a data scientist: also imports, trains, registers, exports\n"
                                 "  approver   also moves champion and the Production stage, edits gates\n"
                                 "  admin      also manages members and the store's settings\n"
                                 "Each member connects as their own database login, and the database enforces the\n"
                                 "roles. Only an admin adds members or changes roles; every change is audited.\n"
                                 "An SQLite store has one user, with every right.")
    p = add_command(verbs, "add", common, _add, help="add a member (creating their login on the server if needed)",
                    epilog="examples:\n  modelyard team add vera --role viewer\n"
                           "  PW=... modelyard team add sam --role scientist --password-env PW\n"
                           "  modelyard team add ada --role approver --password-file ~/ada.pw\n\n"
                           "The password is turned into a SCRAM verifier here and never sent or stored in clear "
                           "text. A login that exists on the server already keeps its password.")
    p.add_argument("login", help="the member's database login")
    p.add_argument("--role", required=True, choices=ROLES, help=ROLE_HELP)
    secret = p.add_mutually_exclusive_group()
    secret.add_argument("--password-env", metavar="NAME", dest="password_env",
                        help="the environment variable holding the new login's password")
    secret.add_argument("--password-file", metavar="PATH", dest="password_file",
                        help="a file holding the new login's password (its first line)")
    p.add_argument("--comment", help="why (kept in the audit trail)")
    add_command(verbs, "list", common, _list, help="list the members and their roles",
                epilog="example:\n  modelyard team list --db-url postgresql+psycopg://ana@db.example.com/modelyard")
    p = add_command(verbs, "set-role", common, _set_role, help="change a member's role",
                    epilog="example:\n  modelyard team set-role sam approver --comment \"takes over releases\"")
    p.add_argument("login", help="the member's database login")
    p.add_argument("role", choices=ROLES, help="the new role")
    p.add_argument("--comment", help="why (kept in the audit trail)")
    p = add_command(verbs, "remove", common, _remove,
                    help="take every role on this store from a member (the login stays on the server)")
    p.add_argument("login", help="the member's database login")
    p.add_argument("--comment", help="why (kept in the audit trail)")
    add_command(verbs, "whoami", common, _whoami, help="who you are on the store and your role")


def _password(args: argparse.Namespace) -> str | None:
    if args.password_env:
        value = os.environ.get(args.password_env)
        if not value:
            raise ModelyardError(f"The environment variable {args.password_env} (--password-env) is not set or empty.",
                                 hint=f"Set it first: read -s {args.password_env}; export {args.password_env}")
        return value
    if args.password_file:
        try:
            lines = Path(args.password_file).expanduser().read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelyardError(f"Cannot read the password file {args.password_file} (--password-file): "
                                 f"{getattr(exc, 'strerror', None) or exc}.",
                                 hint="Check the path and that you may read it.") from None
        if not lines or not lines[0]:
            raise ModelyardError(f"The password file {args.password_file} (--password-file) is empty.",
                                 hint="Put the password on its first line.")
        return lines[0]
    return None


def _add(args: argparse.Namespace) -> int:
    from modelyard.core.store import team

    password = _password(args)
    with open_store(args) as store:
        added = team.add_member(store, args.login, args.role, password, comment=args.comment)
        url = team.login_url(store, added.login)
    if wants_json(args):
        print_json({"member": added.to_json(), "url": url, "password_set": password is not None})
        return 0
    print(f"Added {added.login} as {_a(added.role_label)} {added.role_label}.")
    if password is None:
        print(f"No password was set: {added.login} logs in as the server's pg_hba.conf allows "
              "(or with the password the login already has).")
    print(f"{added.login} opens the store with: modelyard --db-url {url}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from modelyard.core.store import team

    with open_store(args, sweep=False) as store:
        me = store.member
        members = team.list_members(store)
    if wants_json(args):
        print_json({"team": me.team, "you": me.to_json(), "members": [m.to_json() for m in members]})
        return 0
    print_table(["LOGIN", "ROLE", ""], [(m.login, m.role_label, _notes(m, me)) for m in members])
    if not me.team:
        print("This is an SQLite store: it has one user, with every right. Members and roles need a team store "
              "on PostgreSQL (docs/team.md).")
    return 0


def _notes(member: Any, me: Any) -> str:
    notes = ["you"] if member.login == me.login else []
    if member.owner:
        notes.append("owner")
    return ", ".join(notes)


def _set_role(args: argparse.Namespace) -> int:
    from modelyard.core.store import team

    with open_store(args) as store:
        before = {m.login: m.role for m in team.list_members(store)} if not store.is_sqlite else {}
        changed = team.set_role(store, args.login, args.role, comment=args.comment)
    old = before.get(changed.login)
    if wants_json(args):
        print_json({"member": changed.to_json(), "from": old, "changed": old != changed.role})
        return 0
    if old == changed.role:
        print(f"{changed.login} is {_a(changed.role_label)} {changed.role_label} already; nothing changed.")
    else:
        print(f"{changed.login} is now {_a(changed.role_label)} {changed.role_label} (was "
              f"{_a(_label(old))} {_label(old)}).")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from modelyard.core.store import team

    with open_store(args) as store:
        removed = team.remove_member(store, args.login, comment=args.comment)
    if wants_json(args):
        print_json({"removed": removed.to_json()})
        return 0
    print(f"{removed.login} is no longer a member ({_a(removed.role_label)} {removed.role_label} before); the login "
          "stays on the server.")
    return 0


def _whoami(args: argparse.Namespace) -> int:
    with open_store(args, sweep=False) as store:
        me = store.member
    if wants_json(args):
        print_json(me.to_json())
        return 0
    where = "a team store" if me.team else "an SQLite store (one user, every right)"
    print(f"{me.login} · {me.role_label}{' (owner)' if me.owner else ''} · {where}")
    return 0


def _label(role: str | None) -> str:
    return "data scientist" if role == "scientist" else role or "none"


def _a(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
