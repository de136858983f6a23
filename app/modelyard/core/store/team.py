"""Who you are on a store and what your role lets you do.

A team store (PostgreSQL) has members, each connecting as their own database login, in one of four
roles, each able to do what the one before it can and more:

========== =====================================================================================
viewer     reads everything
scientist  also imports, trains, registers, exports, runs pipelines and checks ("data scientist")
approver   also moves ``champion``, moves versions in and out of Production, edits gates, approves
admin      also manages members and the store's settings
========== =====================================================================================

The database enforces the roles (grants, and row-level security where a table needs it), so a
viewer's login cannot write even from a plain SQL client; the app reads the member's role to
disable what it may not do and to say why (:func:`allowed`), and the core refuses early with a
message naming the role needed (:func:`require`). A SQLite store has one user, with every right.

What the database does is in :mod:`modelyard.core.store.roles_sql`: the store's group roles,
their grants, the row guards, and the function through which admins manage members
(:func:`add_member`, :func:`set_role`, :func:`remove_member`, each audited). A refusal from
the database (SQLSTATE 42501) becomes a :class:`PermissionRefused` naming the role needed
(:func:`translate_denied`, called by the store's error hook), never a traceback.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.core.common.errors import (
    ModelyardError,
    NotFoundError,
    PermissionRefused,
    StoreError,
)
from modelyard.core.common.procs import current_user

if TYPE_CHECKING:
    from modelyard.core.store import Store

ROLES: tuple[str, ...] = ("viewer", "scientist", "approver", "admin")
ROLE_LABELS: dict[str, str] = {"viewer": "viewer", "scientist": "data scientist", "approver": "approver",
                               "admin": "admin"}

# What each kind of action needs (the lowest role allowed).
ACTIONS: dict[str, str] = {
    "write": "scientist",      # import, train, log runs, register, export, run pipelines and checks, serve
    "approve": "approver",     # move champion, Production stage in/out, gates, approvals
    "manage": "admin",         # members and roles, the store's settings (notifications)
}
ACTION_LABELS: dict[str, str] = {"write": "change the store", "approve": "approve models",
                                 "manage": "manage the team and the store's settings"}


@dataclass(frozen=True)
class Member:
    """The person using the store: their login, role and whether the store is a team store."""

    login: str
    role: str  # one of ROLES
    team: bool  # False: a SQLite store (one user, every right)
    owner: bool = False  # the database's owner or a superuser: always admin, their role cannot change

    def to_json(self) -> dict[str, Any]:
        return {"login": self.login, "role": self.role, "role_label": self.role_label, "team": self.team,
                "owner": self.owner}

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    def may(self, action: str) -> bool:
        return role_at_least(self.role, ACTIONS[action])


def role_at_least(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def allowed(member: Member, action: str) -> tuple[bool, str]:
    """Whether ``member`` may do ``action``, and, when not, the one-line reason for a tooltip."""
    needed = ACTIONS[action]
    if member.may(action):
        return True, ""
    return False, (f"Needs the {ROLE_LABELS[needed]} role; you ({member.login}) are "
                   f"{_article(member.role_label)} {member.role_label} on this store.")


def refusal(member: Member, action: str, what: str) -> PermissionRefused:
    """The error for ``member`` asking to do ``what`` (a phrase: "Moving 'champion'") when their role
    does not allow ``action``."""
    needed = ACTIONS[action]
    return PermissionRefused(
        f"{what} needs the {ROLE_LABELS[needed]} role; you ({member.login}) are "
        f"{_article(member.role_label)} {member.role_label} on this store.",
        needed=needed, role=member.role,
        hint="Ask an admin of the store to change your role (Store › Team…, or 'modelyard team set-role').")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


# =========================================================================== who you are

ENTITY = "member"  # audit_log.entity_type of member changes
NEEDED_ACTION = {needed: action for action, needed in ACTIONS.items()}  # "approver" -> "approve"
TEAM_DOCS = "docs/team.md"
USER_ENV = "MODELYARD_USER"  # core/common/procs.py current_user
_LOGIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.@-]{0,62}$")
_asking = threading.local()  # .busy: reading the member from inside the error hook


def member(store: Store) -> Member:
    """Who is using ``store`` and their role (read once per Store: ``store.member``)."""
    return store.member


def read_member(store: Store) -> Member:
    """Ask the database (one query) who this connection is and which of the store's groups it holds.

    SQLite: the OS user (or ``MODELYARD_USER``), admin, not a team store. PostgreSQL: the login,
    admin when it owns the database or is a superuser, else the highest group role it holds
    (viewer when none: the database lets it read at most).
    """
    if store.is_sqlite:
        return Member(current_user(), "admin", team=False)
    from sqlalchemy import text

    names = group_names(store)
    columns = ", ".join(f"(SELECT pg_has_role(current_user, oid, 'USAGE') FROM pg_roles WHERE rolname = :{r})"
                        for r in ROLES)
    with store.engine.connect() as conn:
        row = conn.execute(text(f"SELECT session_user, pg_has_role(current_user, d.datdba, 'USAGE'), {columns} "
                                "FROM pg_database d WHERE d.datname = current_database()"), names).one()
    login, owner, holds = str(row[0]), bool(row[1]), [bool(x) for x in row[2:]]
    role = "admin" if owner else next((r for r, has in zip(reversed(ROLES), reversed(holds), strict=True) if has),
                                      "viewer")
    return Member(login, role, team=True, owner=owner)


def session_actor(mem: Member) -> str | None:
    """The actor a team store's write session records: the member's login. An admin's tool may name
    another (``MODELYARD_USER``: a service acting for someone); the database lets only admins do so
    (its trigger writes the login into ``actor`` for everyone else). None: the current user."""
    if mem.role == "admin" and os.environ.get(USER_ENV):
        return None
    return mem.login


def require(store: Store, action: str, what: str) -> None:
    """Refuse (:class:`PermissionRefused`, naming the role needed) when the store's member may not do
    ``action``; ``what`` is the phrase for the message ("Moving 'champion'")."""
    mem = store.member
    if not mem.may(action):
        raise refusal(mem, action, what)


# =========================================================================== the database's side


def group_names(store: Store) -> dict[str, str]:
    """The store's group role per role (PostgreSQL roles are the server's: named after the database)."""
    from modelyard.core.store.roles_sql import group_names as names

    url = store.engine.url
    return names(str(url.database or url.username))  # libpq's default database is the login's name


def roles_installed(store: Store) -> bool:
    """Whether the store's group roles exist (always True on SQLite, which has none to install)."""
    if store.is_sqlite:
        return True
    from sqlalchemy import text

    with store.engine.connect() as conn:
        found = conn.execute(text("SELECT count(*) FROM pg_roles WHERE rolname = ANY(:names)"),
                             {"names": list(group_names(store).values())}).scalar()
    return found == len(ROLES)


def install_roles(store: Store, *, required: bool = True) -> bool:
    """Create (or bring up to date) the store's group roles, their grants, the row guards and the
    member function on PostgreSQL; nothing on SQLite. Idempotent: run when a store is created and
    after every upgrade (so new tables get their grants), by the store's owner or a superuser.

    Creating the roles needs a login that may create roles (a superuser, or CREATEROLE): without
    one, :class:`PermissionRefused` saying so — or, with ``required=False`` (opening a store),
    False and nothing done: the store works for its owner, and ``team add`` says what is missing.
    """
    if store.is_sqlite:
        return True
    from sqlalchemy import inspect, text

    from modelyard.core.store.migrate import lock_schema
    from modelyard.core.store.roles_sql import install_script

    try:
        with store.engine.begin() as conn:
            lock_schema(conn)  # one installer at a time (CREATE ROLE of the same name would race)
            login, may_create, present = conn.execute(text(
                "SELECT current_user, rolsuper OR rolcreaterole, (SELECT count(*) FROM pg_roles WHERE rolname = "
                "ANY(:names)) FROM pg_roles WHERE rolname = current_user"),
                {"names": list(group_names(store).values())}).one()
            if present < len(ROLES) and not may_create:
                if not required:
                    return False
                raise PermissionRefused(
                    f"Setting up the store's roles needs a login that may create roles (a superuser, or one with "
                    f"CREATEROLE); {login} may not.", needed="admin",
                    hint=f"Ask the server's administrator to run 'ALTER ROLE {login} CREATEROLE', or open the store "
                         "once as a superuser; then add members again.")
            schema = conn.execute(text("SELECT current_schema()")).scalar() or "public"
            tables = sorted(inspect(conn).get_table_names(schema=schema))
            owner = conn.execute(text("SELECT tableowner FROM pg_tables WHERE schemaname = :s AND tablename = "
                                      "'alembic_version'"), {"s": schema}).scalar() or login
            script = install_script(str(store.engine.url.database), schema, str(owner), tables)
            with conn.connection.dbapi_connection.cursor() as cur:  # no parameters: '%I' in it stays as it is
                cur.execute(script)
    except Exception as exc:
        if getattr(exc, "sqlstate", None) != "42501":  # the raw cursor's errors skip the store's error hook
            raise
        if required:
            raise translate_denied(store, exc, "CREATE") from exc
        return False  # e.g. an owner upgrading a store whose roles a superuser installed: 'store init' as them
    return True


# =========================================================================== members


def list_members(store: Store) -> list[Member]:
    """The store's members, admins first (the database's owner among them); on SQLite, its one user."""
    if store.is_sqlite:
        return [store.member]
    from sqlalchemy import text

    names = group_names(store)
    rank = {name: role for role, name in names.items()}
    with store.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT u.rolname, g.rolname FROM pg_auth_members am JOIN pg_roles g ON g.oid = am.roleid "
            "JOIN pg_roles u ON u.oid = am.member WHERE g.rolname = ANY(:groups) AND u.rolcanlogin"),
            {"groups": list(names.values())}).all()
        owner = conn.execute(text("SELECT r.rolname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
                                  "WHERE d.datname = current_database() AND r.rolcanlogin")).scalar()
    best: dict[str, str] = {}
    for login, group in rows:
        role = rank[group]
        if login not in best or ROLES.index(role) > ROLES.index(best[login]):
            best[login] = role
    found = {login: Member(login, role, team=True) for login, role in best.items()}
    if owner:
        found[owner] = Member(owner, "admin", team=True, owner=True)
    me = store.member
    found.setdefault(me.login, me)  # a superuser using the store is listed too
    return sorted(found.values(), key=lambda mem: (-ROLES.index(mem.role), mem.login))


def _check_role(role: str) -> str:
    key = (role or "").strip().lower().replace("data scientist", "scientist").replace("data-scientist", "scientist")
    if key not in ROLES:
        raise ModelyardError(f"{role!r} is not a role.", hint="Choose one of viewer, scientist (data scientist), "
                                                              "approver, admin.")
    return key


def _check_login(login: str) -> str:
    login = (login or "").strip()
    if not _LOGIN.match(login) or login.lower().startswith("pg_"):
        raise ModelyardError(f"{login!r} is not a usable login name.",
                             hint="Use letters, digits, _ . @ - (at most 63, starting with a letter or _; "
                                  "not pg_...).")
    return login


def _sqlite_refusal(store: Store, what: str) -> StoreError:
    return StoreError(f"{what}: this store is an SQLite file with one user ({store.member.login}), who has every "
                      "right; members and roles need a team store on PostgreSQL.",
                      hint=f"See {TEAM_DOCS}: 'modelyard store init --db-url postgresql://...' makes one.")


def _server_role(store: Store, login: str) -> dict[str, Any] | None:
    from sqlalchemy import text

    with store.engine.connect() as conn:
        row = conn.execute(text("SELECT r.rolsuper, r.rolcanlogin, r.oid = d.datdba FROM pg_roles r, pg_database d "
                                "WHERE r.rolname = :l AND d.datname = current_database()"), {"l": login}).first()
    return None if row is None else {"superuser": row[0], "login": row[1], "owner": row[2]}


def _change(store: Store, login: str, role: str | None, *, verifier: str | None, creating: bool, action: str,
            comment: str | None) -> str | None:
    """Run the member function and audit it, in one transaction; the role the login had before."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from modelyard.core.store import records
    from modelyard.core.store.roles_sql import MEMBER_FN

    try:
        with store.write() as s:
            old = s.execute(text(f"SELECT {MEMBER_FN}(:l, :r, :v, :c)"),
                            {"l": login, "r": role, "v": verifier, "c": creating}).scalar()
            records.audit(s, ENTITY, login, action, from_value=old, to_value=role, comment=comment,
                          actor=store.member.login)  # member changes always name the admin's login
    except DBAPIError as exc:  # the function's own refusals (a raw call would get them too)
        diag = getattr(exc.orig, "diag", None)
        if getattr(exc.orig, "sqlstate", None) == "22023" and diag is not None:
            raise ModelyardError(f"{diag.message_primary}.") from None
        raise
    if login == store.member.login:
        store.forget_member()  # your own role changed: read it again
    return old


def add_member(store: Store, login: str, role: str, password: str | None = None, *,
               comment: str | None = None) -> Member:
    """Give ``login`` the ``role`` on this team store, creating the login (with ``password``, when
    given) if the server has none of that name. Admin only; audited."""
    if store.is_sqlite:
        raise _sqlite_refusal(store, "Cannot add a member")
    role, login = _check_role(role), _check_login(login)
    require(store, "manage", "Adding members")
    if not roles_installed(store):
        install_roles(store)
    existing = _server_role(store, login)
    if existing is not None:
        if existing["superuser"] or existing["owner"]:
            raise ModelyardError(f"{login} owns the store (or is a superuser) and is always an admin.")
        if not existing["login"]:
            raise ModelyardError(f"{login} is a group role on the server, not a login.",
                                 hint="Give the name of a person's login.")
        now = {mem.login: mem for mem in list_members(store)}.get(login)
        if now is not None:
            raise ModelyardError(f"{login} is a member already ({now.role_label}).",
                                 hint=f"Change the role with 'modelyard team set-role {login} {role}'.")
        if password:
            raise ModelyardError(f"The login {login} exists on the server already; its password is not changed "
                                 "here.", hint=f"{login} changes it (psql: \\password), or add them without a "
                                               "password.")
    from modelyard.core.store.roles_sql import scram_verifier

    verifier = scram_verifier(password) if password else None
    _change(store, login, role, verifier=verifier, creating=True, action="add_member", comment=comment)
    return Member(login, role, team=True)


def set_role(store: Store, login: str, role: str, *, comment: str | None = None) -> Member:
    """Change a member's role (admin only; audited with the role before and after)."""
    if store.is_sqlite:
        raise _sqlite_refusal(store, "Cannot change a role")
    role, login = _check_role(role), (login or "").strip()
    require(store, "manage", "Changing roles")
    now = _existing_member(store, login)
    if now.role == role:
        return now
    _change(store, login, role, verifier=None, creating=False, action="set_role", comment=comment)
    return Member(login, role, team=True)


def remove_member(store: Store, login: str, *, comment: str | None = None) -> Member:
    """Take every role on this store from ``login`` (admin only; audited). The login stays on the
    server (it may use other databases); without a role it cannot connect to this one."""
    if store.is_sqlite:
        raise _sqlite_refusal(store, "Cannot remove a member")
    login = (login or "").strip()
    require(store, "manage", "Removing members")
    now = _existing_member(store, login)
    _change(store, login, None, verifier=None, creating=False, action="remove_member", comment=comment)
    return now


def _existing_member(store: Store, login: str) -> Member:
    now = {mem.login: mem for mem in list_members(store)}.get(login)
    if now is None:
        raise NotFoundError(f"{login!r} is not a member of this store.",
                            hint=f"'modelyard team list' shows the members; add one with 'modelyard team add "
                                 f"{login or 'LOGIN'} --role viewer'.")
    if now.owner:
        raise ModelyardError(f"{login} owns the store (or is a superuser) and is always an admin.")
    return now


# =========================================================================== refusals from the database

_DENIED = re.compile(r'permission denied for (table|relation|sequence|function|schema|database) "?([^\s"]+)"?')
TABLE_WHAT: dict[str, str] = {
    "runs": "Recording runs", "metrics": "Logging metrics", "latest_metrics": "Logging metrics",
    "params": "Logging parameters", "tags": "Tagging runs", "experiments": "Creating experiments",
    "datasets": "Importing datasets", "dataset_versions": "Importing datasets", "dataset_splits": "Splitting datasets",
    "artifacts": "Storing artifacts", "run_artifacts": "Storing artifacts", "lineage_edges": "Recording lineage",
    "registered_models": "Registering models", "model_versions": "Registering models",
    "model_aliases": "Setting aliases", "jobs": "Running jobs", "pipelines": "Saving pipelines",
    "pipeline_runs": "Running pipelines", "pipeline_step_runs": "Running pipelines",
    "monitoring_checks": "Recording monitoring checks", "trigger_firings": "Running triggers",
    "notifications": "Sending notifications", "prediction_log_files": "Logging predictions", "runs_table_cache": "Recording runs",
    "audit_log": "Changing the store", "change_log": "Changing the store",
}
# An UPDATE or DELETE says something else than an INSERT of the same table.
CHANGE_WHAT: dict[str, str] = {
    "runs": "Changing runs", "experiments": "Changing experiments", "datasets": "Changing datasets",
    "dataset_versions": "Changing datasets", "registered_models": "Changing registered models",
    "model_versions": "Changing model versions", "pipelines": "Changing pipelines",
}


def denied_what(message: str, statement: str | None) -> tuple[str, str]:
    """(what was refused, the role needed) for PostgreSQL's "permission denied" ``message`` on ``statement``."""
    from modelyard.core.store.roles_sql import (
        ADMIN_TABLES,
        APPEND_ONLY,
        MEMBER_FN,
        OWNER_ONLY,
    )

    op = (statement or "").lstrip().split(None, 1)[0].upper() if (statement or "").strip() else ""
    found = _DENIED.search(message)
    if found is None:
        if "create role" in message or message.startswith("must be owner") or "must have admin option" in message:
            return "Changing the store's roles or tables", "owner"
        return "Changing the store", "scientist"
    kind, name = found.group(1), found.group(2).split(".")[-1]
    if kind == "database":
        return "Opening this store", "viewer"
    if kind == "function":
        return ("Managing the store's members", "admin") if name == MEMBER_FN else ("Changing the store", "scientist")
    if kind == "schema":
        return "Changing the store's tables", "owner"
    if kind == "sequence":
        return "Changing the store", "scientist"
    if op == "SELECT":
        return "Reading the store", "viewer"
    if name in ADMIN_TABLES:
        return "Changing the store's settings", "admin"
    if name in APPEND_ONLY and op in ("UPDATE", "DELETE"):
        return "Editing the audit trail", "admin"
    if name in OWNER_ONLY:
        return "Upgrading the store", "owner"
    if op in ("UPDATE", "DELETE") and name in CHANGE_WHAT:
        return CHANGE_WHAT[name], "scientist"
    return TABLE_WHAT.get(name, f"Changing {name.replace('_', ' ')}"), "scientist"


def translate_denied(store: Store, orig: BaseException, statement: str | None) -> PermissionRefused:
    """The one-line refusal for a PostgreSQL error with SQLSTATE 42501 (a missing grant, a row guard)."""
    from modelyard.core.store.roles_sql import GUARD_DETAIL

    diag = getattr(orig, "diag", None)
    primary = str(getattr(diag, "message_primary", None) or orig).strip()
    detail = str(getattr(diag, "message_detail", None) or "")
    if detail.startswith(GUARD_DETAIL + ":"):
        _, needed, what = detail.split(":", 2)
    else:
        what, needed = denied_what(primary, statement)
    mem = _known_member(store)
    ask = "Ask an admin of the store to change your role (Store › Team…, or 'modelyard team set-role')."
    if needed == "owner":
        who = f"; you ({mem.login}) are {_article(mem.role_label)} {mem.role_label}" if mem else ""
        return PermissionRefused(f"{what} needs the owner of the store's database or a superuser{who} "
                                 f"(the server said: {primary}).", needed="admin", role=mem.role if mem else None,
                                 hint="Open the store once as the login that created it (upgrades and roles are "
                                      "made by it).")
    if needed == "viewer":
        login = mem.login if mem else store.engine.url.username
        who = f"the login {login}" if login else "this login"
        return PermissionRefused(f"{what} needs a role on it; {who} has none.", needed="viewer",
                                 hint=f"Ask an admin of the store to add you ('modelyard team add {login or 'LOGIN'} "
                                      "--role viewer').")
    action = NEEDED_ACTION.get(needed, "write")
    if mem is None or mem.may(action):  # the database knows better than our cached view
        return PermissionRefused(f"{what} needs the {ROLE_LABELS[ACTIONS[action]]} role.", needed=ACTIONS[action],
                                 role=mem.role if mem else None, hint=ask)
    return refusal(mem, action, what)


def _known_member(store: Store) -> Member | None:
    """The store's member, read if need be (never from inside a read that is itself failing)."""
    cached = getattr(store, "_member", None)
    if cached is not None or getattr(_asking, "busy", False):
        return cached
    _asking.busy = True
    try:
        return store.member
    except Exception:  # noqa: BLE001 - the refusal is still worth saying without the role
        return None
    finally:
        _asking.busy = False


def login_url(store: Store, login: str) -> str:
    """The store's database URL for ``login`` (no password: libpq reads ~/.pgpass or PGPASSWORD)."""
    return store.engine.url.set(username=login, password=None).render_as_string(hide_password=True)
