"""Loading a model file: the one place Modelyard turns a stored model back into an object.

::

    from modelyard.core.registry import modelfiles

    model = modelfiles.load_version_model(store, ref="churn@v3", model_sha256=sha, card=card)
    model = modelfiles.load_file(path, expected_sha256, what="the model in churn.mybundle", fmt="skops")

A model file is an artifact named by the sha256 of its bytes, and unpickling one runs whatever
code the pickle names. Whoever can write the store's artifact folder (a folder a team shares)
could replace a model file with a crafted pickle; so :func:`load_file` reads the whole file
into memory, hashes those bytes, and deserialises exactly those bytes, only when their hash is
the recorded one: nothing can swap the file between the check and the use. A mismatch is
refused with a one-line :class:`~modelyard.core.common.errors.ModelyardError` naming the model
version and the artifact, and nothing of the file is deserialised.

A version that has a skops file (one imported from a bundle whose model loads safely; its
``card["bundle"]["skops_sha256"]``) is loaded from that file, with skops and Modelyard's
allow-list (:mod:`modelyard.core.registry.safety`): no unpickling at all. Otherwise, and when
the skops file names a type outside the allow-list (or skops cannot read it here), the joblib file (``model_sha256``) is
unpickled, after the same check.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelyard.core.common.errors import ModelyardError

if TYPE_CHECKING:
    from modelyard.core.store import Store

__all__ = ["VERIFY_HINT", "load_artifact", "load_file", "load_version_model", "read_verified"]

VERIFY_HINT = ("'modelyard store verify' checks every artifact; restore the store folder from a backup, or register "
               "or import the model again.")


class _SkopsUnusable(ModelyardError):
    """A skops file names a type Modelyard does not load without trust, or skops cannot read it here."""


def read_verified(path: str | os.PathLike[str], sha256: str, *, what: str, hint: str = VERIFY_HINT) -> bytes:
    """The bytes of ``path``, read once into memory; refused unless they hash to ``sha256``.

    Use the returned bytes, never the file again (that would reopen the gap this closes).
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ModelyardError(f"The model file of {what} (artifact {sha256[:12]}...) is missing.", hint=hint) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ModelyardError(
            f"The model file of {what} (artifact {sha256[:12]}...) does not match its recorded sha256 (its bytes hash "
            f"to {actual[:12]}...): it was changed after it was stored, so it was not loaded.", hint=hint)
    return data


def _deserialise(data: bytes, fmt: str, what: str) -> Any:
    if fmt == "skops":
        import skops.io as sio

        from modelyard.core.registry import safety

        try:
            untrusted = safety.untrusted_types(data)
            unsafe = safety.not_allowed(untrusted)
            if not unsafe:
                return sio.loads(data, trusted=list(untrusted))
        except Exception as exc:  # noqa: BLE001 - e.g. a scikit-learn version skops cannot rebuild
            raise _SkopsUnusable(f"skops cannot load the model of {what}: {type(exc).__name__}: {exc}") from None
        raise _SkopsUnusable(f"The skops file of {what} uses {', '.join(unsafe)}, which Modelyard does not load "
                             "without trust.")
    if fmt == "joblib":
        import joblib

        return joblib.load(io.BytesIO(data))
    raise ValueError(f"unknown model file format {fmt!r}")


def load_file(path: str | os.PathLike[str], sha256: str, *, what: str, fmt: str = "joblib",
              hint: str = VERIFY_HINT) -> Any:
    """Load the model file at ``path`` (``fmt`` "joblib" or "skops"), refused unless its bytes hash
    to ``sha256``. ``what`` names the model in messages (``"churn@v3"``). A skops file loads only
    when every type it names is on Modelyard's allow-list."""
    return _deserialise(read_verified(path, sha256, what=what, hint=hint), fmt, what)


def load_artifact(store: Store, sha256: str, *, what: str, fmt: str = "joblib") -> Any:
    """Load the model stored as artifact ``sha256`` (see :func:`load_file`)."""
    if not sha256 or not store.artifacts.exists(sha256):
        raise ModelyardError(f"The model file of {what} is missing from the store's artifacts.",
                             hint="'modelyard store verify' checks the artifact files.")
    return load_file(store.artifacts.path(sha256), sha256, what=what, fmt=fmt)


def load_version_model(store: Store, *, ref: str, model_sha256: str | None, card: Mapping[str, Any] | None) -> Any:
    """The fitted model of a registered version: its skops file when it has a loadable one, else
    its joblib file (both checked against their recorded sha256)."""
    skops_sha = ((card or {}).get("bundle") or {}).get("skops_sha256")
    if isinstance(skops_sha, str) and store.artifacts.exists(skops_sha):
        try:
            return load_artifact(store, skops_sha, what=ref, fmt="skops")
        except _SkopsUnusable:
            pass  # not loadable without trust (or not here): the joblib file, checked the same way
    return load_artifact(store, model_sha256 or "", what=ref)
