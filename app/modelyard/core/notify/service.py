"""Notifications recorded and delivered: one ``notifications`` row per channel, bounded retries.

::

    ids = notify(store, "pipeline.failed", subject="churn-nightly failed", body="...", payload={...})
    deliver_pending(store)        # the agent and the window call this now and then: due retries
    list_notifications(store)     # newest first, plain data

**Delivery.** :func:`notify` records a ``pending`` row per configured channel (e-mail, webhook)
and tries each at once: up to :data:`INLINE_ATTEMPTS` attempts, waiting :data:`INLINE_BACKOFF`
seconds between them, each bounded by a socket timeout (~5 s). A message still not delivered
stays ``pending`` with ``next_attempt_at`` set (:data:`RETRY_DELAYS` later), and
:func:`deliver_pending` tries it again when that time has come; after :data:`MAX_ATTEMPTS`
attempts it is ``failed`` with ``last_error``. Every attempt updates ``attempts`` and
``last_error``; a delivered one gets ``sent_at``.

**Never raises.** A broken SMTP server or webhook, or a store that cannot be written, must not fail
the pipeline or check that notified: problems are logged and recorded, and :func:`notify` returns
the rows it could record.

**Two processes** (the agent and the window) never deliver one row twice: a row is claimed by moving
its ``next_attempt_at`` forward in one conditional UPDATE before it is sent.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, or_, select, update

from modelyard.core.notify.settings import CHANNELS, NotifySettings, get_settings
from modelyard.core.notify.transport import (
    DeliveryError,
    one_line,
    send_email,
    send_webhook,
)
from modelyard.core.store import Store
from modelyard.core.store import models as m

log = logging.getLogger(__name__)

INLINE_BACKOFF = (0.2, 0.5)  # seconds between the attempts made at once
INLINE_ATTEMPTS = len(INLINE_BACKOFF) + 1
RETRY_DELAYS = (60.0, 300.0)  # seconds before each later attempt (deliver_pending)
MAX_ATTEMPTS = INLINE_ATTEMPTS + len(RETRY_DELAYS)
CLAIM_SECONDS = 120.0  # how long a claimed row is left alone by other processes
MAX_ERROR = 500


@dataclass(frozen=True)
class NotificationInfo:
    """One recorded notification (plain data, safe to pass between threads)."""

    id: int
    event: str
    channel: str
    target: str | None
    subject: str
    body: str
    payload: dict[str, Any] | None
    status: str
    attempts: int
    last_error: str | None
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None
    sent_at: dt.datetime | None
    pipeline_run_id: int | None
    check_id: int | None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("created_at", "next_attempt_at", "sent_at"):
            d[key] = d[key].isoformat() if d[key] is not None else None
        return d


def _info(row: m.Notification) -> NotificationInfo:
    return NotificationInfo(id=row.id, event=row.event, channel=row.channel, target=row.target, subject=row.subject,
                            body=row.body, payload=row.payload, status=row.status, attempts=row.attempts,
                            last_error=row.last_error, created_at=row.created_at, next_attempt_at=row.next_attempt_at,
                            sent_at=row.sent_at, pipeline_run_id=row.pipeline_run_id, check_id=row.check_id)


def _now(now: dt.datetime | None = None) -> dt.datetime:
    if now is None:
        return m.utcnow()
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime (UTC)")
    return now


# --------------------------------------------------------------------------- recording


def notify(store: Store, event: str, *, subject: str, body: str, payload: dict[str, Any] | None = None,
           pipeline_run_id: int | None = None, check_id: int | None = None, channels: Iterable[str] | None = None,
           recipients: list[str] | None = None, deliver: bool = True) -> list[int]:
    """Record one notification per configured channel (``channels`` narrows them; ``recipients`` replaces the
    store's e-mail recipients) and, with ``deliver``, try to deliver each now with bounded retries. Returns the
    rows' ids (empty when no channel is set up). Never raises."""
    try:
        return _notify(store, event, subject=subject, body=body, payload=payload, pipeline_run_id=pipeline_run_id,
                       check_id=check_id, channels=channels, recipients=recipients, deliver=deliver)
    except Exception:  # noqa: BLE001 - a notification must never fail its caller
        log.exception("Could not record or send the notification %r", event)
        return []


def _notify(store: Store, event: str, *, subject: str, body: str, payload: dict[str, Any] | None,
            pipeline_run_id: int | None, check_id: int | None, channels: Iterable[str] | None,
            recipients: list[str] | None, deliver: bool, retry_later: bool = True) -> list[int]:
    settings = get_settings(store)
    wanted = [c for c in (CHANNELS if channels is None else list(channels)) if c in settings.channels]
    if not wanted:
        return []
    now = m.utcnow()
    to = [r.strip() for r in recipients or [] if r and r.strip()]
    ids: list[int] = []
    with store.write() as s:
        for channel in wanted:
            channel_settings = settings.email if channel == "email" else settings.webhook
            target = ", ".join(to) if channel == "email" and to else channel_settings.target  # type: ignore[union-attr]
            # a row being delivered now is claimed from the start: deliver_pending elsewhere leaves it alone
            row = m.Notification(event=event, channel=channel, target=target, subject=one_line(subject), body=body,
                                 payload=_plain(payload), status="pending", attempts=0, created_at=now,
                                 next_attempt_at=now + dt.timedelta(seconds=CLAIM_SECONDS) if deliver else now,
                                 pipeline_run_id=pipeline_run_id, check_id=check_id)
            s.add(row)
            s.flush()
            ids.append(row.id)
    if deliver:
        for nid in ids:
            _deliver(store, nid, settings, attempts=INLINE_ATTEMPTS, retry_later=retry_later)
    return ids


def _plain(payload: dict[str, Any] | None) -> dict[str, Any]:
    """``payload`` as plain JSON data (dates and other objects as text), so it can be stored and posted."""
    return json.loads(json.dumps(dict(payload or {}), default=str))


# --------------------------------------------------------------------------- delivering


def _send(settings: NotifySettings, row: NotificationInfo) -> None:
    if row.channel == "email":
        if settings.email is None:
            raise DeliveryError("e-mail notifications are no longer set up (modelyard notify email)")
        recipients = [r.strip() for r in (row.target or "").split(",") if r.strip()] or None
        send_email(settings.email, row.subject, row.body, recipients)
    elif row.channel == "webhook":
        if settings.webhook is None:
            raise DeliveryError("the webhook is no longer set up (modelyard notify webhook)")
        send_webhook(settings.webhook, row.event, row.subject, row.body, row.payload)
    else:
        raise DeliveryError(f"there is no notification channel {row.channel!r}")


def _deliver(store: Store, nid: int, settings: NotifySettings, *, attempts: int, retry_later: bool,
             now: dt.datetime | None = None) -> str:
    """Try to deliver row ``nid`` up to ``attempts`` times (back-off between them), recording each
    attempt; returns the row's status after."""
    with store.session() as s:
        row = s.get(m.Notification, nid)
        if row is None or row.status != "pending":
            return row.status if row is not None else "gone"
        info = _info(row)
    done = info.attempts
    for i in range(attempts):
        if i:
            time.sleep(INLINE_BACKOFF[min(i - 1, len(INLINE_BACKOFF) - 1)])
        error: str | None = None
        permanent = False
        try:
            _send(settings, info)
        except DeliveryError as exc:
            error, permanent = str(exc), exc.permanent
        except Exception as exc:  # noqa: BLE001 - a bug in sending is recorded, never raised
            log.exception("Sending notification %s failed unexpectedly", nid)
            error = f"unexpected {type(exc).__name__}: {exc}"
        done += 1
        final_now = i == attempts - 1 or permanent  # no use trying again at once
        last = done >= MAX_ATTEMPTS or (not retry_later and final_now)
        status = "sent" if error is None else "failed" if last else "pending"
        _record(store, nid, status, done, error, now)
        if status != "pending" or permanent:
            return status
    return "pending"


def _record(store: Store, nid: int, status: str, attempts: int, error: str | None,
            now: dt.datetime | None) -> None:
    at = _now(now)
    values: dict[str, Any] = {"status": status, "attempts": attempts}
    if error is None:
        values.update(sent_at=at, next_attempt_at=None)
    else:
        values["last_error"] = error[:MAX_ERROR]
        if status == "pending":
            later = RETRY_DELAYS[min(max(attempts - INLINE_ATTEMPTS, 0), len(RETRY_DELAYS) - 1)]
            values["next_attempt_at"] = at + dt.timedelta(seconds=later)
        else:
            values["next_attempt_at"] = None
    try:
        with store.write() as s:
            s.execute(update(m.Notification).where(m.Notification.id == nid).values(**values))
    except Exception:  # noqa: BLE001 - recording is best effort; the row stays pending and is retried
        log.exception("Could not record the delivery of notification %s", nid)


def _claim(store: Store, nid: int, now: dt.datetime) -> bool:
    """Take row ``nid`` for delivery if it is still pending and due (one conditional UPDATE: two processes
    never both get it)."""
    with store.write() as s:
        result = s.execute(
            update(m.Notification)
            .where(m.Notification.id == nid, m.Notification.status == "pending",
                   or_(m.Notification.next_attempt_at.is_(None), m.Notification.next_attempt_at <= now))
            .values(next_attempt_at=now + dt.timedelta(seconds=CLAIM_SECONDS)))
        return bool(result.rowcount)


def deliver_pending(store: Store, *, now: dt.datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Try once more every pending notification whose ``next_attempt_at`` has come (``now`` for a test's clock).
    Returns ``{"sent", "failed", "pending"}``: delivered now, given up now, still waiting. Never raises."""
    counts = {"sent": 0, "failed": 0, "pending": 0}
    try:
        at = _now(now)
        with store.session() as s:
            due = list(s.scalars(
                select(m.Notification.id)
                .where(m.Notification.status == "pending",
                       or_(m.Notification.next_attempt_at.is_(None), m.Notification.next_attempt_at <= at))
                .order_by(m.Notification.id).limit(limit)))
        settings = get_settings(store) if due else None
        for nid in due:
            if not _claim(store, nid, at):
                continue
            status = _deliver(store, nid, settings, attempts=1, retry_later=True, now=now)  # type: ignore[arg-type]
            if status in ("sent", "failed"):
                counts[status] += 1
        with store.session() as s:
            counts["pending"] = int(s.scalar(select(func.count()).select_from(m.Notification)
                                             .where(m.Notification.status == "pending")) or 0)
    except Exception:  # noqa: BLE001 - the agent's loop must go on
        log.exception("Delivering pending notifications failed")
    return counts


# --------------------------------------------------------------------------- reading


def list_notifications(store: Store, limit: int = 50, *, status: str | None = None) -> list[NotificationInfo]:
    """The newest ``limit`` notifications (optionally only those with ``status``), newest first."""
    q = select(m.Notification).order_by(m.Notification.id.desc()).limit(max(1, int(limit)))
    if status is not None:
        q = q.where(m.Notification.status == status)
    with store.session() as s:
        return [_info(r) for r in s.scalars(q)]


def get_notifications(store: Store, ids: Iterable[int]) -> list[NotificationInfo]:
    """The rows ``ids`` (in that order; missing ones left out)."""
    wanted = list(ids)
    if not wanted:
        return []
    with store.session() as s:
        rows = {r.id: _info(r) for r in s.scalars(select(m.Notification).where(m.Notification.id.in_(wanted)))}
    return [rows[i] for i in wanted if i in rows]


def send_test(store: Store, channel: str | None = None) -> list[NotificationInfo]:
    """Send a test message through ``channel`` (default: every channel set up) now; the rows after delivery.

    A test that cannot be delivered is ``failed`` at once (it is not retried later). Raises ModelyardError
    when the channel is not set up (or its stored settings no longer validate)."""
    from modelyard.core.common.errors import ModelyardError
    from modelyard.core.common.procs import current_user, hostname

    settings = get_settings(store)
    wanted = [channel] if channel else settings.channels
    missing = [c for c in wanted if c not in settings.channels]
    if not wanted or missing:
        what = missing[0] if missing else "any channel"
        problem = settings.problems.get(missing[0]) if missing else None
        how = {"email": "'modelyard notify email --host H --sender S --to A'",
               "webhook": "'modelyard notify webhook --url URL'"}
        raise ModelyardError(
            problem or f"Notifications by {'e-mail' if what == 'email' else what} are not set up for this store.",
            hint=f"Set them up with {how.get(what, ' or '.join(how.values()))}.")
    where = store.display_location
    ids = _notify(store, "test", subject="Modelyard test notification",
                  body=f"This is a test message from Modelyard, sent by {current_user()} on {hostname()} for the store "
                       f"{where}.\nNotifications of pipelines and drift checks will arrive like this one.",
                  payload={"store": where}, pipeline_run_id=None, check_id=None, channels=wanted, recipients=None,
                  deliver=True, retry_later=False)
    return get_notifications(store, ids)
