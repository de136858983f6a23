"""The user's settings: an INI file in the platform's config folder (``MODELYARD_CONFIG_DIR`` for tests).

Versioned: ``settings_version`` is stored, and :func:`open_settings` migrates older files
forward, so a later Modelyard can rename or reshape a key without losing what users chose.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings

from modelyard.core.common.paths import config_dir

SETTINGS_VERSION = 1


def open_settings() -> QSettings:
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True)
    settings = QSettings(str(folder / "modelyard.ini"), QSettings.Format.IniFormat)
    version = int(settings.value("settings_version", 0) or 0)
    if version < SETTINGS_VERSION:
        _migrate(settings, version)
        settings.setValue("settings_version", SETTINGS_VERSION)
    return settings


def _migrate(settings: QSettings, from_version: int) -> None:
    # Version 0 -> 1: nothing to reshape yet; later versions add steps here, oldest first.
    del settings, from_version


def recent_stores(settings: QSettings) -> list[str]:
    value = settings.value("stores/recent", []) or []
    return [value] if isinstance(value, str) else list(value)


def remember_store(settings: QSettings, location: str) -> None:
    recent = [location] + [s for s in recent_stores(settings) if s != location]
    settings.setValue("stores/recent", recent[:8])
    settings.setValue("stores/last", location)
    settings.setValue("stores/last_team", "")  # the last store is this folder, not a team store


# Team stores are remembered by their database URL without its password (never written here) and the
# artifacts folder the user gave (empty: the one recorded in the store).
def recent_team_stores(settings: QSettings) -> list[dict[str, str]]:
    import json

    value = settings.value("stores/recent_team", []) or []
    out = []
    for item in [value] if isinstance(value, str) else list(value):
        try:
            entry = json.loads(item)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("url"):
            out.append({"url": str(entry["url"]), "artifacts": str(entry.get("artifacts") or "")})
    return out


def remember_team_store(settings: QSettings, url: str, artifacts: str = "") -> None:
    import json

    from modelyard.core.store.teamstore import url_without_password

    entry = {"url": url_without_password(url), "artifacts": artifacts}
    recent = [entry] + [e for e in recent_team_stores(settings) if e["url"] != entry["url"]]
    settings.setValue("stores/recent_team", [json.dumps(e) for e in recent[:8]])
    settings.setValue("stores/last_team", json.dumps(entry))


def last_team_store(settings: QSettings) -> dict[str, str] | None:
    """The team store the window showed last (None: the last store was a folder)."""
    import json

    try:
        entry = json.loads(str(settings.value("stores/last_team", "") or ""))
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and entry.get("url") else None
