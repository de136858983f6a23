"""Notifications: e-mail through SMTP and webhooks (JSON, or a Slack-compatible body), recorded and retried.

Sits below the lifecycle rooms (a drift check notifies) and above the store; never fails its caller.
"""
