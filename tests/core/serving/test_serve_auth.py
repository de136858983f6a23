"""Serving beyond this machine: a bearer token from a file only its owner can read (401 without
it, 200 with it, /ping open), HTTPS with a self-signed certificate made here, both through
``ModelServer`` and through ``modelyard serve`` in a child process."""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import json
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli
from factories import make_garden_store
from modelyard.core.common.errors import ModelyardError
from modelyard.core.serving import ServerProcess
from modelyard.core.serving.auth import read_token_file, server_ssl_context
from modelyard.core.serving.server import ModelServer

TOKEN = "s3cret-token-0123456789abcdef"
RECORD = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2,
          "region": "north", "measured": "2024-03-01T10:00:00", "greenhouse": True}


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modelyard test server")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("auth")
    store, info = make_garden_store(root / "store")
    token_file = root / "serve.token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    cert, key = make_certificate(root)
    try:
        yield {"store": store, "info": info, "token_file": token_file, "cert": cert, "key": key, "root": root}
    finally:
        store.close()


def _request(conn: http.client.HTTPConnection, method: str, path: str, body: Any = None,
             token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=headers)
    resp = conn.getresponse()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


def _check_token(conn: http.client.HTTPConnection) -> None:
    """401 without the token or with a wrong one (JSON, naming the header), 200 with it, /ping open;
    one keep-alive connection throughout."""
    doc = {"dataframe_records": [RECORD]}
    status, headers, body = _request(conn, "POST", "/invocations", doc)
    err = json.loads(body)
    assert status == 401 and err["error_code"] == "UNAUTHORIZED" and "Authorization: Bearer" in err["message"]
    assert headers["www-authenticate"].startswith("Bearer") and headers["content-type"] == "application/json"
    status, _, body = _request(conn, "POST", "/invocations", doc, token=TOKEN + "x")
    assert status == 401 and "not this server's" in json.loads(body)["message"]
    status, _, body = _request(conn, "POST", "/invocations", doc, token=TOKEN[:-1])
    assert status == 401
    for path in ("/stats", "/metrics", "/metadata", "/admin/route"):
        assert _request(conn, "GET", path)[0] == 401, path
    status, headers, body = _request(conn, "POST", "/invocations", doc, token=TOKEN)
    assert status == 200 and len(json.loads(body)["predictions"]) == 1 and headers["x-modelyard-model"] == "flowers@v1"
    assert _request(conn, "GET", "/ping")[0] == 200 and _request(conn, "GET", "/health")[0] == 200
    status, _, body = _request(conn, "GET", "/stats", token=TOKEN)
    stats = json.loads(body)
    assert status == 200 and stats["token"] is True
    assert stats["by_version"]["flowers@v1"]["requests"] >= 1


def test_a_token_file_others_can_read_is_refused(lab: dict[str, Any], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    loose = tmp_path / "loose.token"
    loose.write_text(TOKEN)
    loose.chmod(0o644)
    with pytest.raises(ModelyardError, match=f"chmod 600 {loose}"):
        read_token_file(loose)
    code, _, err = cli(capsys, "serve", "flowers@champion", "--port", "0", "--store", str(lab["store"].root),
                       "--token-file", str(loose))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1, err
    assert str(loose) in lines[0] and "chmod 600" in lines[0] and "read by others" in lines[0]
    loose.chmod(0o640)  # group-readable is "others" too
    with pytest.raises(ModelyardError, match="read by others"):
        read_token_file(loose)
    loose.chmod(0o600)
    assert read_token_file(loose) == TOKEN.encode()
    short = tmp_path / "short.token"
    short.write_text("abc\n")
    short.chmod(0o600)
    with pytest.raises(ModelyardError, match="shorter than 16"):
        read_token_file(short)
    with pytest.raises(ModelyardError, match="does not exist"):
        read_token_file(tmp_path / "missing.token")


def test_a_token_server_answers_401_without_it_and_200_with_it(lab: dict[str, Any]) -> None:
    server = ModelServer(lab["store"], "flowers@champion", port=0, record=False,
                         token=read_token_file(lab["token_file"])).start()
    try:
        assert server.host == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        _check_token(conn)
        conn.close()
        snap = server.stats()
        assert snap["client_errors"] >= 3  # the 401s are counted
    finally:
        server.shutdown()


def test_https_with_a_self_signed_certificate(lab: dict[str, Any]) -> None:
    server = ModelServer(lab["store"], "flowers@champion", port=0, record=False,
                         token=read_token_file(lab["token_file"]),
                         ssl_context=server_ssl_context(lab["cert"], lab["key"])).start()
    try:
        assert server.url == f"https://127.0.0.1:{server.port}"
        trusting = ssl.create_default_context(cafile=str(lab["cert"]))  # checks the host name too
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=10, context=trusting)
        _check_token(conn)
        assert isinstance(conn.sock, ssl.SSLSocket) and conn.sock.version() in ("TLSv1.2", "TLSv1.3")
        conn.close()
        # a client that does not trust the certificate cannot talk to it
        strict = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=10,
                                             context=ssl.create_default_context())
        with pytest.raises(ssl.SSLCertVerificationError):
            strict.request("GET", "/ping")
        strict.close()
        # plain HTTP to the HTTPS port gets no answer; the server carries on
        plain = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        with pytest.raises((http.client.HTTPException, OSError)):
            plain.request("GET", "/ping")
            plain.getresponse().read()
        plain.close()
        again = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=10, context=trusting)
        assert _request(again, "GET", "/ping")[0] == 200
        again.close()
    finally:
        server.shutdown()


def test_bad_certificate_options_are_one_line_errors(lab: dict[str, Any], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    root = str(lab["store"].root)
    code, _, err = cli(capsys, "serve", "flowers@champion", "--port", "0", "--store", root, "--cert", str(lab["cert"]))
    assert code == 2 and "--cert FILE and --key FILE" in err  # options that need each other: a usage error
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    code, _, err = cli(capsys, "serve", "flowers@champion", "--port", "0", "--store", root, "--cert", str(junk),
                       "--key", str(lab["key"]))
    assert code == 1 and str(junk) in err and "--cert" in err
    code, _, err = cli(capsys, "serve", "flowers@champion", "--port", "0", "--store", root, "--cert",
                       str(tmp_path / "nope.pem"), "--key", str(lab["key"]))
    assert code == 1 and "does not exist" in err


def test_serve_command_with_a_token_over_https(lab: dict[str, Any]) -> None:
    proc = ServerProcess("flowers@champion", store=lab["store"].root, port=0, token_file=lab["token_file"],
                         cert=lab["cert"], key=lab["key"])
    try:
        proc.start()
        assert proc.info is not None and proc.info["https"] is True and proc.info["token"] is True
        assert proc.url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(lab["cert"]))
        conn = http.client.HTTPSConnection("127.0.0.1", int(proc.url.rsplit(":", 1)[1]), timeout=10, context=context)
        _check_token(conn)
        conn.close()
        assert proc.stats()["requests"] >= 4  # ServerProcess sends the token and trusts the certificate
    finally:
        code = proc.stop()
        proc.cleanup()
    assert code == 0
    assert os.stat(lab["token_file"]).st_mode & 0o077 == 0
