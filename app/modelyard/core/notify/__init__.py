"""Notifications: e-mail through SMTP and webhooks (JSON, or a Slack-compatible body), recorded and retried.

Sits below the lifecycle rooms (a drift check notifies) and above the store; never fails its caller.

* :mod:`~modelyard.core.notify.settings`: the store's channels (``store_meta`` ``notify.email`` /
  ``notify.webhook``) and the SMTP password (environment or an owner-only file, never the database);
* :mod:`~modelyard.core.notify.transport`: one attempt to send (smtplib, urllib), bounded in time;
* :mod:`~modelyard.core.notify.service`: :func:`notify`, :func:`deliver_pending`, :func:`list_notifications`.

See docs/notifications.md.
"""

from modelyard.core.notify.service import (
    INLINE_ATTEMPTS,
    MAX_ATTEMPTS,
    NotificationInfo,
    deliver_pending,
    get_notifications,
    list_notifications,
    notify,
    send_test,
)
from modelyard.core.notify.settings import (
    CHANNELS,
    EmailSettings,
    NotifySettings,
    NotifySettingsError,
    WebhookSettings,
    clear,
    get_settings,
    read_password,
    set_email,
    set_webhook,
)

__all__ = [
    "CHANNELS",
    "INLINE_ATTEMPTS",
    "MAX_ATTEMPTS",
    "EmailSettings",
    "NotificationInfo",
    "NotifySettings",
    "NotifySettingsError",
    "WebhookSettings",
    "clear",
    "deliver_pending",
    "get_notifications",
    "get_settings",
    "list_notifications",
    "notify",
    "read_password",
    "send_test",
    "set_email",
    "set_webhook",
]
