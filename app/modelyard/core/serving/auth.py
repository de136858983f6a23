"""Serving beyond this machine: a bearer token read from a file only its owner can read, and
HTTPS with a given certificate (standard library only).

::

    token = read_token_file("~/.modelyard/serve.token")   # refused unless mode 0600 (or 0400)
    authorized(request_header, token)                      # constant-time comparison
    context = server_ssl_context("cert.pem", "key.pem")     # for ModelServer(..., ssl_context=...)

A server started with a token answers every request but ``/ping`` and ``/health`` (health
checks) with 401 unless it carries ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import os
import ssl
import stat
from pathlib import Path

from modelyard.core.common.errors import ModelyardError

OPEN_PATHS = frozenset({"/ping", "/health"})  # answered without a token: health checks


def read_token_file(path: str | os.PathLike[str]) -> bytes:
    """The token in ``path`` (its first line, stripped), refused unless only its owner can read
    the file (no permission bits for group or others, as ``chmod 600`` leaves it)."""
    p = Path(path).expanduser()
    try:
        st = p.stat()
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelyardError(f"The token file {p} does not exist; write the token into it and run chmod 600 {p}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelyardError(f"Cannot read the token file {p}: {getattr(exc, 'strerror', None) or exc}.") from None
    if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ModelyardError(f"The token file {p} can be read by others (mode {stat.S_IMODE(st.st_mode):o}); "
                             f"run chmod 600 {p}.")
    lines = text.strip().splitlines()
    token = lines[0].strip() if lines else ""
    if len(token) < 16:
        raise ModelyardError(f"The token in {p} is {'empty' if not token else 'shorter than 16 characters'}; "
                             "put a long random token on its first line (for example: "
                             f"python -c 'import secrets; print(secrets.token_urlsafe(32))' > {p}).")
    return token.encode("utf-8")


def authorized(header: str | None, token: bytes) -> bool:
    """Whether an ``Authorization`` header value carries ``Bearer <token>`` (constant time in
    the token's content)."""
    if not header:
        return False
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), token)


def server_ssl_context(cert: str | os.PathLike[str], key: str | os.PathLike[str]) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or newer) from a PEM certificate (chain) and its key."""
    cert_p, key_p = Path(cert).expanduser(), Path(key).expanduser()
    for p, option in ((cert_p, "cert"), (key_p, "key")):
        if not p.is_file():
            raise ModelyardError(f"The {'certificate' if option == 'cert' else 'key'} file {p} does not exist; "
                                 f"give a PEM file with --{option}.")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert_p), str(key_p))
    except (ssl.SSLError, OSError) as exc:
        raise ModelyardError(f"Cannot use the certificate {cert_p} with the key {key_p}: "
                             f"{getattr(exc, 'reason', None) or exc}; give a PEM certificate with --cert and its "
                             "private key with --key.") from None
    return context


def client_ssl_context(cafile: str | os.PathLike[str] | None = None, *, check_hostname: bool = True) -> ssl.SSLContext:
    """A client-side context that trusts ``cafile`` (a self-signed server certificate, say) or the
    system's authorities."""
    context = ssl.create_default_context(cafile=str(cafile) if cafile is not None else None)
    context.check_hostname = check_hostname
    return context
