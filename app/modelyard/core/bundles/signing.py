"""Team keys: Ed25519 key pairs, signing a manifest, and checking a signature against trusted keys.

Keys are PEM files: the private key PKCS#8 (unencrypted, written with mode 0600), the public key
SubjectPublicKeyInfo. A key is known by its *key id*, the first 16 hex digits of the sha256 of
its 32 raw public bytes. ``manifest.sig`` is JSON::

    {"algorithm": "ed25519", "key_id": "1a2b...", "public_key": "<base64 raw>",
     "signature": "<base64 of the 64-byte signature of manifest.json's bytes>"}

The embedded public key only lets a reader check that the manifest is intact and say which key
signed it; trust comes from the keys the verifier holds (see :func:`load_trusted_keys`).
``cryptography`` is imported inside the functions.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.core.bundles.format import SIGNATURE, BundleError
from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.outputs import cannot_write

KeySource = str | os.PathLike[str] | bytes
TRUSTED_DIR = ("keys", "trusted")  # <store>/keys/trusted/*.pub


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    raw: bytes  # the 32 raw public bytes
    name: str  # the file's stem, or "key <id>"

    @property
    def signer(self) -> str:
        return f"{self.name} ({self.key_id})"


def key_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def raw_public(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def generate_key(private_path: str | os.PathLike[str], public_path: str | os.PathLike[str], *,
                 overwrite: bool = False) -> dict[str, str]:
    """Make a new team key pair: ``private_path`` (keep it secret) and ``public_path`` (share it;
    receivers put it in ``<store>/keys/trusted/``). Returns ``{"key_id", "private", "public"}``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    priv, pub = Path(private_path), Path(public_path)
    if priv.resolve() == pub.resolve():
        raise ModelyardError("The private and the public key need two different files.")
    for p in (priv, pub):
        if p.exists() and not overwrite:
            raise ModelyardError(f"{p} already exists; it was left as it is.",
                                 hint="Choose new file names (a key is never overwritten silently).")
        if not p.parent.is_dir():
            raise ModelyardError(f"The folder {p.parent} does not exist.", hint="Create it first.")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    written = None
    try:
        fd = os.open(priv, flags, 0o600)
        written = priv
        with os.fdopen(fd, "wb") as fh:
            fh.write(private_pem)
        pub.write_bytes(public_pem)
    except OSError as exc:  # a read-only folder, a full disk: no half pair is left behind
        if written is not None:
            written.unlink(missing_ok=True)
        raise cannot_write(pub if written is not None else priv, exc) from None
    return {"key_id": key_id(raw_public(key.public_key())), "private": str(priv), "public": str(pub)}


def _read_source(source: KeySource, what: str) -> tuple[bytes, str | None]:
    if isinstance(source, bytes):
        return source, None
    p = Path(source)
    try:
        return p.read_bytes(), p.stem
    except OSError as exc:
        raise ModelyardError(f"Cannot read the {what} {p}: {exc.strerror or exc}.",
                             hint="Check the path.") from None


def load_private_key(source: KeySource) -> Any:
    """An Ed25519 private key from a PEM file path or PEM bytes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data, _ = _read_source(source, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ModelyardError(f"{source if not isinstance(source, bytes) else 'The signing key'} is not an "
                             f"unencrypted PEM private key ({exc}).",
                             hint="Make a key pair with 'modelyard bundle keygen PRIVATE PUBLIC'.") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ModelyardError("The signing key is not an Ed25519 key.",
                             hint="Make a key pair with 'modelyard bundle keygen PRIVATE PUBLIC'.")
    return key


def load_public_key(source: KeySource) -> TrustedKey:
    """A trusted public key from a PEM file path or PEM bytes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data, stem = _read_source(source, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        where = source if not isinstance(source, bytes) else "A trusted key"
        raise ModelyardError(f"{where} is not a PEM public key ({exc}).",
                             hint="Use the .pub file 'modelyard bundle keygen' wrote.") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ModelyardError(f"{source if not isinstance(source, bytes) else 'A trusted key'} is not an Ed25519 key.")
    raw = raw_public(key)
    kid = key_id(raw)
    return TrustedKey(kid, raw, stem or f"key {kid}")


def store_trusted_dir(store_root: str | os.PathLike[str]) -> Path:
    return Path(store_root).joinpath(*TRUSTED_DIR)


def load_trusted_keys(keys: Iterable[KeySource] | None = None, *,
                      store_root: str | os.PathLike[str] | None = None) -> list[TrustedKey]:
    """The keys given, plus every ``*.pub`` in ``<store>/keys/trusted/`` when a store is given."""
    out: list[TrustedKey] = []
    if store_root is not None:
        folder = store_trusted_dir(store_root)
        if folder.is_dir():
            out.extend(load_public_key(p) for p in sorted(folder.glob("*.pub")) if p.is_file())
    for k in keys or ():
        out.append(load_public_key(k))
    return out


def sign_manifest(manifest_raw: bytes, private_key: Any) -> bytes:
    """The bytes of ``manifest.sig`` for these manifest bytes."""
    raw_pub = raw_public(private_key.public_key())
    sig = private_key.sign(manifest_raw)
    doc = {"algorithm": "ed25519", "key_id": key_id(raw_pub), "public_key": base64.b64encode(raw_pub).decode(),
           "signature": base64.b64encode(sig).decode()}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class SignatureCheck:
    status: str  # "unsigned" | "verified" (a trusted key) | "unknown_key" (intact, signer not trusted)
    key_id: str | None = None
    signer: str | None = None  # "name (key id)" of the trusted key that verified it

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "key_id": self.key_id, "signer": self.signer}


def _bad(path: str, what: str) -> BundleError:
    return BundleError("signature", f"The signature of {path} {what}.", member=SIGNATURE,
                       hint="The manifest or its signature was changed after signing; the bundle was not imported.")


def check_signature(manifest_raw: bytes, signature_raw: bytes | None, trusted: list[TrustedKey], *,
                    path: str) -> SignatureCheck:
    """Verify ``manifest.sig``. Raises ``BundleError('signature')`` when it is malformed or does
    not verify; otherwise says whether a trusted key made it."""
    if signature_raw is None:
        return SignatureCheck("unsigned")
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        doc = json.loads(signature_raw.decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("algorithm") != "ed25519":
            raise ValueError("not an ed25519 signature")
        raw_pub = base64.b64decode(doc["public_key"], validate=True)
        sig = base64.b64decode(doc["signature"], validate=True)
        public = Ed25519PublicKey.from_public_bytes(raw_pub)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise _bad(path, f"is malformed ({exc})") from None
    kid = key_id(raw_pub)
    if doc.get("key_id") != kid:
        raise _bad(path, "names a key id that does not match its public key")
    try:
        public.verify(sig, manifest_raw)
    except InvalidSignature:
        raise _bad(path, f"does not verify: the manifest is not what key {kid} signed") from None
    for key in trusted:
        if key.raw == raw_pub:
            return SignatureCheck("verified", kid, key.signer)
    return SignatureCheck("unknown_key", kid, None)
