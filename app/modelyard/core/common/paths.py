"""Where things live: the default store, the user's configuration, and bundled resources."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "Modelyard"
STORE_ENV = "MODELYARD_STORE"
DB_URL_ENV = "MODELYARD_DB_URL"
CONFIG_ENV = "MODELYARD_CONFIG_DIR"


def default_store_dir() -> Path:
    """The platform's per-user data folder (``platformdirs``), e.g. ``~/.local/share/Modelyard/store``."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "store"


def config_dir() -> Path:
    """Per-user configuration folder; ``MODELYARD_CONFIG_DIR`` overrides it (tests use this)."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def resolve_store_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--store`` wins, then ``MODELYARD_STORE``, then the platform default."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(STORE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return default_store_dir()


def resources_dir() -> Path:
    """The ``resources/`` folder: inside the package in a wheel, at the repository root in a checkout."""
    package_dir = Path(__file__).resolve().parents[2]
    installed = package_dir / "resources"
    if installed.is_dir():
        return installed
    checkout = package_dir.parent.parent / "resources"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"Modelyard's resources folder is missing (looked in {installed} and {checkout}); "
        "reinstall Modelyard."
    )


def resource_path(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)
