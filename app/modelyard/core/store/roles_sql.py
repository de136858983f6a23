"""The SQL that makes PostgreSQL enforce a team store's roles (core/store/team.py says what each may do).

Per store (a database), four group roles (``NOLOGIN``), each a member of the one below so it holds
its rights too: ``modelyard_<database>_viewer`` < ``_scientist`` < ``_approver`` < ``_admin``.
Roles are the server's, not the database's, so the names carry the database's name (shortened
with a hash past 32 characters: at most 63 bytes) and two stores on one server never share one.
Members are login roles granted one group. The database's owner and superusers are admins.

=========== ===================================================================================
viewer      CONNECT; SELECT on every table
scientist   INSERT, UPDATE, DELETE on the working tables; USAGE on their sequences; INSERT only
            on ``audit_log``; nothing on ``store_meta`` (the store's settings)
approver    what the row guards below keep for it
admin       ``store_meta`` and ``audit_log`` writes; EXECUTE on the member functions
=========== ===================================================================================

Row guards are ``BEFORE`` triggers raising SQLSTATE 42501 (insufficient privilege) whose message
names the role needed, for any client: ``champion`` rows of ``model_aliases``, a version moving
into or out of (inserted at, deleted from) the ``Production`` stage, and a change to a model's
``gates`` need the approver role. Row-level security was the other way, but it hides rows from
an UPDATE or DELETE (no error: nothing happens) and cannot compare a row's old and new values,
which a stage *move* needs. ``promotion_requests`` (issue 16): a member files requests in their own
name; approving or rejecting needs the approver role, in one's own name and never of one's own
request; a data scientist may only withdraw their own open request; a decision is final.
``model_evidence``: rows are only added (``created_by`` is the login); changing them needs an admin. A trigger on ``audit_log`` (and ``change_log``, ``jobs``,
``pipeline_runs``) writes the login into ``actor`` for everyone but admins, so no member writes
an entry in someone else's name (an admin may name another actor: a tool acting for someone).

Members are managed through a ``SECURITY DEFINER`` function owned by whoever installed the roles
(the store's owner: a superuser, or a login with CREATEROLE), executable by the admin group only.
So an admin member needs no CREATEROLE of their own (on PostgreSQL 15 that would let them take
any non-superuser role on the server, other stores' included; PostgreSQL 16 would need ADMIN
OPTION on every login), and the same SQL works on both. The function refuses superusers, the
database's owner, roles that cannot log in, and setting the password of a login that exists
already (an admin of one store could otherwise take over a login used on another); the password
of a new login arrives as a SCRAM-SHA-256 verifier computed here, never in clear text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import unicodedata

ROLE_PREFIX = "modelyard_"
MEMBER_FN = "modelyard_set_member"
HAS_ROLE_FN = "modelyard_role_at_least"
# Tables whose writes the scientist role does not get (and what they are kept for).
ADMIN_TABLES = ("store_meta",)
APPEND_ONLY = ("audit_log",)
OWNER_ONLY = ("alembic_version",)
# Tables whose ``actor`` column the database fills with the login.
ACTOR_TABLES = ("audit_log", "change_log", "jobs", "pipeline_runs")
GUARD_DETAIL = "modelyard-needs"  # DETAIL of a guard's error: "modelyard-needs:<role>:<what>"


def _slug(database: str) -> str:
    slug = re.sub(r"[^a-z0-9_]", "_", database.lower())
    if slug != database or len(slug) > 32:
        digest = hashlib.blake2b(database.encode(), digest_size=3).hexdigest()
        slug = f"{slug[:25]}_{digest}"
    return slug


def group_names(database: str) -> dict[str, str]:
    """The store's group role per role name (``ROLES``), from its database's name."""
    slug = _slug(database)
    return {role: f"{ROLE_PREFIX}{slug}_{role}" for role in ("viewer", "scientist", "approver", "admin")}


def qi(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def ql(value: str) -> str:
    """A quoted SQL string literal (standard_conforming_strings is on since PostgreSQL 9.1)."""
    return "'" + value.replace("'", "''") + "'"


def install_script(database: str, schema: str, table_owner: str, tables: list[str]) -> str:
    """The whole, idempotent set-up as one script (one round trip)."""
    g = group_names(database)
    v, sc, ap, ad = (qi(g[r]) for r in ("viewer", "scientist", "approver", "admin"))
    s = qi(schema)
    fq = f"{s}.{qi(HAS_ROLE_FN)}"
    parts: list[str] = []
    creates = "\n".join(
        f"  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {ql(name)}) THEN "
        f"CREATE ROLE {qi(name)} NOLOGIN; END IF;" for name in g.values())
    parts.append(f"DO $$\nBEGIN\n{creates}\nEND $$")
    parts += [f"GRANT {v} TO {sc}", f"GRANT {sc} TO {ap}", f"GRANT {ap} TO {ad}"]
    db = qi(database)
    parts += [f"REVOKE CONNECT ON DATABASE {db} FROM PUBLIC", f"GRANT CONNECT ON DATABASE {db} TO {v}",
              f"REVOKE CREATE ON SCHEMA {s} FROM PUBLIC", f"GRANT USAGE ON SCHEMA {s} TO {v}"]
    if tables:
        every = ", ".join(f"{s}.{qi(t)}" for t in tables)
        working = ", ".join(f"{s}.{qi(t)}" for t in tables if t not in ADMIN_TABLES + APPEND_ONLY + OWNER_ONLY)
        parts += [f"GRANT SELECT ON {every} TO {v}"]
        if working:
            parts.append(f"GRANT INSERT, UPDATE, DELETE ON {working} TO {sc}")
        for t in ADMIN_TABLES + APPEND_ONLY + OWNER_ONLY:
            if t in tables:
                parts.append(f"REVOKE INSERT, UPDATE, DELETE ON {s}.{qi(t)} FROM {sc}")
        for t in APPEND_ONLY:
            if t in tables:
                parts.append(f"GRANT INSERT ON {s}.{qi(t)} TO {sc}")
        for t in ADMIN_TABLES + APPEND_ONLY:
            if t in tables:
                parts.append(f"GRANT INSERT, UPDATE, DELETE ON {s}.{qi(t)} TO {ad}")
    parts += [f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO {sc}"]
    # tables a later upgrade adds get the same rights at once (install_roles runs again after it, too)
    who = f"FOR ROLE {qi(table_owner)} "
    parts += [f"ALTER DEFAULT PRIVILEGES {who}IN SCHEMA {s} GRANT SELECT ON TABLES TO {v}",
              f"ALTER DEFAULT PRIVILEGES {who}IN SCHEMA {s} GRANT INSERT, UPDATE, DELETE ON TABLES TO {sc}",
              f"ALTER DEFAULT PRIVILEGES {who}IN SCHEMA {s} GRANT USAGE ON SEQUENCES TO {sc}"]
    # who holds at least a role: the groups, the database's owner, superusers (pg_has_role says true)
    cases = " ".join(f"WHEN {ql(r)} THEN {ql(n)}" for r, n in g.items())
    # PL/pgSQL, not SQL: a SQL function with SET is never inlined and plans its query again at
    # every call from a trigger (the change_log actor trigger runs at every write: +0.1-0.4 ms)
    parts.append(f"""CREATE OR REPLACE FUNCTION {fq}(needed text) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $fn$
BEGIN
  RETURN (SELECT pg_has_role(current_user, d.datdba, 'USAGE')
                 OR pg_has_role(current_user, (CASE needed {cases} END)::name, 'USAGE')
          FROM pg_database d WHERE d.datname = current_database());
END $fn$""")
    parts += _guards(schema, tables, fq)
    parts += _member_function(schema, database, g)
    return ";\n".join(parts) + ";"


def _raise(what: str, needed: str) -> str:
    label = "data scientist" if needed == "scientist" else needed
    return (f"RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = {ql(f'{what} needs the {label} role')}, "
            f"DETAIL = {ql(f'{GUARD_DETAIL}:{needed}:{what}')}")


def _guards(schema: str, tables: list[str], fq: str) -> list[str]:
    s = qi(schema)
    fns: dict[str, tuple[str, str]] = {
        "model_aliases": ("modelyard_guard_alias", f"""
  IF TG_OP <> 'INSERT' THEN
    IF OLD.alias = 'champion' AND NOT {fq}('approver') THEN {_raise("Moving 'champion'", "approver")}; END IF;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    IF NEW.alias = 'champion' AND NOT {fq}('approver') THEN {_raise("Moving 'champion'", "approver")}; END IF;
  END IF;"""),
        "model_versions": ("modelyard_guard_stage", f"""
  IF TG_OP = 'INSERT' THEN
    IF NEW.stage = 'Production' AND NOT {fq}('approver') THEN
      {_raise("Moving a version into Production", "approver")}; END IF;
  ELSIF TG_OP = 'DELETE' THEN
    IF OLD.stage = 'Production' AND NOT {fq}('approver') THEN
      {_raise("Moving a version out of Production", "approver")}; END IF;
  ELSIF (OLD.stage = 'Production') <> (NEW.stage = 'Production') AND NOT {fq}('approver') THEN
    IF NEW.stage = 'Production' THEN {_raise("Moving a version into Production", "approver")};
    ELSE {_raise("Moving a version out of Production", "approver")}; END IF;
  END IF;"""),
        "registered_models": ("modelyard_guard_gates", f"""
  IF TG_OP = 'INSERT' THEN
    IF NEW.gates IS NOT NULL AND NOT {fq}('approver') THEN {_raise("Changing a model's gates", "approver")};
    END IF;
  ELSIF NEW.gates::text::jsonb IS DISTINCT FROM OLD.gates::text::jsonb AND NOT {fq}('approver') THEN
    {_raise("Changing a model's gates", "approver")}; END IF;"""),
        "promotion_requests": ("modelyard_guard_request", _request_guard(fq)),
        "model_evidence": ("modelyard_guard_evidence", f"""
  IF NOT {fq}('admin') THEN
    IF TG_OP = 'INSERT' THEN
      NEW.created_by := session_user;
    ELSE
      {_raise("Changing or deleting stored evidence", "admin")};
    END IF;
  END IF;"""),
    }
    parts: list[str] = []
    for table, (fn, body) in fns.items():
        if table not in tables:
            continue
        events = "INSERT OR UPDATE" if table == "registered_models" else "INSERT OR UPDATE OR DELETE"
        parts += [f"""CREATE OR REPLACE FUNCTION {s}.{qi(fn)}() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
BEGIN{body}
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END $fn$""", f"DROP TRIGGER IF EXISTS {qi(fn)} ON {s}.{qi(table)}",
                  f"CREATE TRIGGER {qi(fn)} BEFORE {events} ON {s}.{qi(table)} "
                  f"FOR EACH ROW EXECUTE FUNCTION {s}.{qi(fn)}()"]
    actor_tables = [t for t in ACTOR_TABLES if t in tables]
    if actor_tables:
        parts.append(f"""CREATE OR REPLACE FUNCTION {s}.modelyard_actor() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
BEGIN
  IF NOT {fq}('admin') THEN
    NEW.actor := session_user;
  END IF;
  RETURN NEW;
END $fn$""")
        for t in actor_tables:
            parts += [f"DROP TRIGGER IF EXISTS modelyard_actor ON {s}.{qi(t)}",
                      f"CREATE TRIGGER modelyard_actor BEFORE INSERT ON {s}.{qi(t)} "
                      f"FOR EACH ROW EXECUTE FUNCTION {s}.modelyard_actor()"]
    for fn, _ in fns.values():
        parts.append(f"REVOKE ALL ON FUNCTION {s}.{qi(fn)}() FROM PUBLIC")
    return parts


def _request_guard(fq: str) -> str:
    """``promotion_requests``: a member files a request in their own name (``requested_by`` is the login);
    approving or rejecting needs the approver role, in one's own name (``decided_by``), never of one's own
    request; a data scientist may only withdraw their own open request; what a request asks, and a
    decision once made, do not change; requests are not deleted. Admins may name another login (a tool
    acting for someone) but never decide a request in its author's name either."""
    own = ("RAISE EXCEPTION USING ERRCODE = '42501', "
           "MESSAGE = 'The author of a promotion request cannot approve or reject it'")
    return f"""
  IF TG_OP = 'DELETE' THEN
    IF NOT {fq}('admin') THEN {_raise("Deleting a promotion request", "admin")}; END IF;
  ELSIF TG_OP = 'INSERT' THEN
    IF NOT {fq}('admin') THEN
      NEW.requested_by := session_user;
      IF NEW.status <> 'open' OR NEW.decided_by IS NOT NULL OR NEW.decision_sha256 IS NOT NULL THEN
        {_raise("Recording a decided promotion request", "admin")}; END IF;
    END IF;
  ELSE
    IF NOT {fq}('admin') AND (NEW.requested_by IS DISTINCT FROM OLD.requested_by
        OR NEW.model_id IS DISTINCT FROM OLD.model_id OR NEW.version_id IS DISTINCT FROM OLD.version_id
        OR NEW.target IS DISTINCT FROM OLD.target OR NEW.reason IS DISTINCT FROM OLD.reason
        OR NEW.requested_at IS DISTINCT FROM OLD.requested_at
        OR NEW.model_revision IS DISTINCT FROM OLD.model_revision
        OR NEW.replaces_version_id IS DISTINCT FROM OLD.replaces_version_id
        OR (OLD.snapshot_sha256 IS NOT NULL AND NEW.snapshot_sha256 IS DISTINCT FROM OLD.snapshot_sha256)) THEN
      {_raise("Changing what a promotion request asks", "admin")}; END IF;
    IF OLD.status <> 'open' THEN
      IF NOT {fq}('admin') AND (NEW.status IS DISTINCT FROM OLD.status
          OR NEW.decided_by IS DISTINCT FROM OLD.decided_by OR NEW.decided_at IS DISTINCT FROM OLD.decided_at
          OR NEW.decision_comment IS DISTINCT FROM OLD.decision_comment
          OR (OLD.decision_sha256 IS NOT NULL AND NEW.decision_sha256 IS DISTINCT FROM OLD.decision_sha256)) THEN
        {_raise("Changing a decided promotion request", "admin")}; END IF;
    ELSIF NEW.status IN ('approved', 'rejected') THEN
      IF NOT {fq}('approver') THEN {_raise("Approving or rejecting a promotion request", "approver")}; END IF;
      IF NEW.decided_by IS NOT DISTINCT FROM OLD.requested_by THEN {own}; END IF;
      IF NEW.decided_by IS DISTINCT FROM session_user AND NOT {fq}('admin') THEN
        {_raise("Deciding a promotion request in someone else's name", "admin")}; END IF;
    ELSIF NEW.status = 'withdrawn' THEN
      IF NOT {fq}('admin') AND (OLD.requested_by IS DISTINCT FROM session_user
          OR NEW.decided_by IS DISTINCT FROM session_user) THEN
        {_raise("Withdrawing someone else's promotion request", "admin")}; END IF;
    ELSIF NEW.status IS DISTINCT FROM 'open' OR NEW.decided_by IS NOT NULL THEN
      {_raise("Changing an open promotion request", "admin")};
    END IF;
  END IF;"""


def _member_function(schema: str, database: str, g: dict[str, str]) -> list[str]:
    """``modelyard_set_member(login, role, verifier, creating)``: gives ``login`` the store's group
    ``role`` (None: none of them), creating the login when ``creating`` and it does not exist.
    Returns the role it had before (NULL: none)."""
    s = qi(schema)
    fn = f"{s}.{qi(MEMBER_FN)}"
    roles = ", ".join(ql(r) for r in g)
    groups = ", ".join(ql(n) for n in g.values())
    return [f"""CREATE OR REPLACE FUNCTION {fn}(login text, new_role text, verifier text, creating boolean)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
  roles text[] := ARRAY[{roles}];
  groups text[] := ARRAY[{groups}];
  r record;
  old text;
  i int;
BEGIN
  IF new_role IS NOT NULL AND NOT (new_role = ANY (roles)) THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('%s is not a role (viewer, scientist, approver, admin)', new_role);
  END IF;
  SELECT oid, rolsuper, rolcanlogin INTO r FROM pg_roles WHERE rolname = login;
  IF NOT FOUND THEN
    IF NOT creating THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('There is no login %s on this server', login);
    END IF;
    IF verifier IS NULL THEN
      EXECUTE format('CREATE ROLE %I LOGIN', login);
    ELSE
      EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', login, verifier);
    END IF;
  ELSE
    IF r.rolsuper OR r.oid = (SELECT datdba FROM pg_database WHERE datname = current_database()) THEN
      RAISE EXCEPTION USING ERRCODE = '22023',
        MESSAGE = format('%s owns the store (or is a superuser) and is always an admin', login);
    END IF;
    IF NOT r.rolcanlogin THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('%s is a group role, not a login', login);
    END IF;
    IF verifier IS NOT NULL THEN
      RAISE EXCEPTION USING ERRCODE = '22023',
        MESSAGE = format('The login %s exists already; its password is not changed here', login);
    END IF;
  END IF;
  FOR i IN REVERSE array_length(groups, 1)..1 LOOP
    IF EXISTS (SELECT 1 FROM pg_auth_members am JOIN pg_roles gr ON gr.oid = am.roleid
               JOIN pg_roles u ON u.oid = am.member WHERE gr.rolname = groups[i] AND u.rolname = login) THEN
      old := coalesce(old, roles[i]);
      EXECUTE format('REVOKE %I FROM %I', groups[i], login);
    END IF;
  END LOOP;
  IF new_role IS NOT NULL THEN
    EXECUTE format('GRANT %I TO %I', groups[array_position(roles, new_role)], login);
  END IF;
  RETURN old;
END $fn$""", f"REVOKE ALL ON FUNCTION {fn}(text, text, text, boolean) FROM PUBLIC",
            f"GRANT EXECUTE ON FUNCTION {fn}(text, text, text, boolean) TO {qi(g['admin'])}"]


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier of ``password`` (what ``CREATE ROLE ... PASSWORD`` stores),
    so the password itself never reaches the server or its logs. Non-ASCII passwords are
    NFKC-normalised, as PostgreSQL's SASLprep does."""
    text = password if password.isascii() else unicodedata.normalize("NFKC", password)
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", text.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return (f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:"
            f"{b64(server_key).decode()}")
