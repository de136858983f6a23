"""The bundle file format: member names, limits, :class:`BundleError`, and the checked zip reader.

Nothing here writes anywhere. :func:`open_checked` opens a bundle, checks every member's name,
type and sizes (before reading a byte of it), reads and checks the manifest, and returns a
:class:`CheckedBundle` whose :meth:`~CheckedBundle.copy_member` streams a member to a sink while
counting and hashing it, refusing it if it is longer than its header says, longer than the limits,
or does not hash to what the manifest records.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.names import display, unsafe_character

# --------------------------------------------------------------------------- names

SUFFIX = ".mybundle"
FORMAT = "modelyard-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_DIGEST = "manifest.sha256"
SIGNATURE = "manifest.sig"
CONTROL_MEMBERS = (MANIFEST, MANIFEST_DIGEST, SIGNATURE)  # the members the manifest cannot list

SKOPS_PATH = "model/model.skops"
JOBLIB_PATH = "model/model.joblib"
PROFILE_PATH = "reference/profile.json"
ROWS_PATH = "reference/rows.parquet"
CARD_JSON_PATH = "card/model_card.json"
CARD_HTML_PATH = "card/model_card.html"
MLMODEL_PATH = "MLmodel"
REQUIREMENTS_PATH = "requirements.txt"
PYTHON_ENV_PATH = "python_env.yaml"
CONDA_PATH = "conda.yaml"
EXAMPLE_PATH = "input_example.json"
README_PATH = "README.txt"

# --------------------------------------------------------------------------- limits

MAX_MEMBERS = 64
MAX_MEMBER_BYTES = 8 << 30  # one member, uncompressed
MAX_TOTAL_BYTES = 16 << 30  # every member together, uncompressed
MAX_MANIFEST_BYTES = 32 << 20  # manifest.json, manifest.sig, manifest.sha256
MAX_SCHEMA_BYTES = 256 << 20  # the schema.json inside a skops file
MAX_PROFILE_BYTES = 256 << 20  # reference/profile.json, read into memory on import
MAX_COMPRESSION_RATIO = 200  # uncompressed / compressed, for members above RATIO_FLOOR_BYTES
RATIO_FLOOR_BYTES = 1 << 20  # a small member may compress as well as it likes
MAX_NAME_CHARS = 255
CHUNK = 1 << 20

_DRIVE = re.compile(r"^[A-Za-z]:")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

REASONS = {
    "not_a_bundle": "the file is not a Modelyard bundle (not a readable zip file)",
    "manifest": "the manifest is missing, unreadable or was changed",
    "checksum": "a member does not match the checksum the manifest records",
    "missing_member": "a member the manifest lists is not in the file",
    "extra_member": "the file holds a member the manifest does not list",
    "duplicate_member": "two members have the same name",
    "path_traversal": "a member name climbs out of the bundle ('..') or is malformed",
    "absolute_path": "a member name is an absolute path or names a drive",
    "link": "a member is a symbolic link or another special file",
    "too_large": "a member or the whole bundle is larger than allowed",
    "compression_ratio": "a member is compressed suspiciously well (a zip bomb)",
    "unsupported": "the file uses a zip feature bundles do not use (encryption, another compression)",
    "signature": "the signature does not verify, or the signer is not trusted here",
    "unsigned": "the bundle is not signed, but this store only accepts signed bundles",
    "untrusted_pickle": "the model can only be unpickled, which can run arbitrary code",
    "already_imported": "the model in the bundle is already in this store",
    "load_failed": "the model could not be loaded",
    "not_a_model": "what the bundle holds has no predict method, or cannot predict on its example rows",
    "output": "the bundle file cannot be written there (or exists, without force)",
    "no_model": "the model version has no model file to export",
}


class BundleError(ModelyardError):
    """A bundle refused, with a machine-readable ``reason`` (a key of :data:`REASONS`) and the
    ``member`` involved (None when the reason is about the whole file)."""

    def __init__(self, reason: str, message: str, *, member: str | None = None, hint: str | None = None,
                 existing: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason
        self.member = member
        self.existing = existing  # already_imported: the version that holds the model ("churn@v3")

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "member": self.member, "message": self.message, "hint": self.hint}


# --------------------------------------------------------------------------- names


def check_member_name(name: str, *, where: str = "The bundle") -> None:
    """Refuse a member name that is absolute, climbs out ('..'), or is otherwise malformed."""
    shown = name if len(name) <= 120 else name[:117] + "..."
    if not name or len(name) > MAX_NAME_CHARS or any(ord(c) < 32 for c in name):
        raise BundleError("path_traversal", f"{where} has a malformed member name {shown!r}.", member=name,
                          hint="The file was not made by Modelyard or was changed; it was not imported.")
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise BundleError("absolute_path", f"{where} has a member with an absolute path: {shown!r}.", member=name,
                          hint="A bundle only holds relative names; this file was not imported.")
    if "\\" in name:
        raise BundleError("path_traversal", f"{where} has a member name with a backslash: {shown!r}.",
                          member=name, hint="A bundle's names use '/'; this file was not imported.")
    parts = name.rstrip("/").split("/")
    if any(p == ".." for p in parts):
        raise BundleError("path_traversal", f"{where} has a member that climbs out of the bundle: {shown!r}.",
                          member=name, hint="This is how a crafted file overwrites other files; it was not imported.")
    if any(p in ("", ".") for p in parts):
        raise BundleError("path_traversal", f"{where} has a malformed member name {shown!r}.", member=name,
                          hint="The file was not made by Modelyard or was changed; it was not imported.")


def _file_kind(info: zipfile.ZipInfo) -> str | None:
    """'link' or 'special' for a symbolic link or device/fifo/socket entry (Unix mode bits)."""
    mode = (info.external_attr >> 16) & 0xFFFF
    if not mode:
        return None
    fmt = stat.S_IFMT(mode)
    if fmt == stat.S_IFLNK:
        return "link"
    if fmt not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "special"
    return None


def check_infos(infos: list[zipfile.ZipInfo], *, path: str) -> dict[str, zipfile.ZipInfo]:
    """Check every entry's name, type and sizes from the zip's directory; name -> info for files."""
    if len(infos) > MAX_MEMBERS:
        raise BundleError("too_large", f"{path} has {len(infos)} members; a bundle has at most {MAX_MEMBERS}.",
                          hint="It was not made by Modelyard; it was not imported.")
    files: dict[str, zipfile.ZipInfo] = {}
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        check_member_name(name, where=path)
        if name in seen:
            raise BundleError("duplicate_member", f"{path} holds two members named {name!r}.", member=name,
                              hint="A second copy can hide behind the checked one; the file was not imported.")
        seen.add(name)
        kind = _file_kind(info)
        if kind is not None:
            what = "a symbolic link" if kind == "link" else "a special file (device, pipe or socket)"
            raise BundleError("link", f"The member {name!r} of {path} is {what}.", member=name,
                              hint="A bundle holds only plain files; it was not imported.")
        if info.flag_bits & 0x1:
            raise BundleError("unsupported", f"The member {name!r} of {path} is encrypted.", member=name,
                              hint="Bundles are not encrypted; it was not imported.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BundleError("unsupported", f"The member {name!r} of {path} uses compression method "
                              f"{info.compress_type}; bundles use deflate.", member=name,
                              hint="Export the bundle again with Modelyard.")
        if info.is_dir():
            if info.file_size:
                raise BundleError("extra_member", f"The folder entry {name!r} of {path} holds data.", member=name)
            continue
        if info.file_size > MAX_MEMBER_BYTES:
            raise BundleError("too_large", f"The member {name!r} of {path} unpacks to {info.file_size:,} bytes "
                              f"(at most {MAX_MEMBER_BYTES:,}).", member=name, hint="It was not imported.")
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise BundleError("compression_ratio", f"The member {name!r} of {path} unpacks {ratio:,.0f} times larger "
                              f"than it is stored ({info.compress_size:,} -> {info.file_size:,} bytes; at most "
                              f"{MAX_COMPRESSION_RATIO}x): this is how zip bombs work.", member=name,
                              hint="It was not unpacked or imported.")
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise BundleError("too_large", f"{path} unpacks to more than {MAX_TOTAL_BYTES:,} bytes.", member=name,
                              hint="It was not imported.")
        files[name] = info
    return files


def check_inner_zip(fileobj: IO[bytes], *, member: str, path: str) -> None:
    """The skops file is itself a zip that skops unpacks in memory: refuse one that would unpack to
    more than the limits allow (a zip bomb nested in a member)."""
    where = f"The member {member!r} of {path}"
    try:
        with zipfile.ZipFile(fileobj) as inner:
            infos = inner.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BundleError("load_failed", f"{where} is not a readable skops file ({exc}).", member=member,
                          hint="Export the bundle again with Modelyard.") from None
    finally:
        fileobj.seek(0)
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise BundleError("compression_ratio", f"{where} holds {info.filename!r}, which unpacks "
                              f"{info.file_size / max(info.compress_size, 1):,.0f} times larger than it is stored: "
                              "this is how zip bombs work.", member=member, hint="It was not unpacked or imported.")
        if info.file_size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES or (
                info.filename == "schema.json" and info.file_size > MAX_SCHEMA_BYTES):
            raise BundleError("too_large", f"{where} unpacks to more than the limits allow "
                              f"({info.filename!r}: {info.file_size:,} bytes).", member=member,
                              hint="It was not unpacked or imported.")


# --------------------------------------------------------------------------- the manifest


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The canonical bytes of a manifest (what is hashed and signed)."""
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode()


def _bad_manifest(path: str, what: str, *, hint: str | None = None) -> BundleError:
    return BundleError("manifest", f"The manifest of {path} {what}.", member=MANIFEST,
                       hint=hint or "The file was damaged or edited after export; it was not imported.")


def parse_manifest(data: bytes, *, path: str) -> dict[str, Any]:
    """Parse and check the structure of ``manifest.json`` (not the members it lists)."""
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad_manifest(path, f"is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _bad_manifest(path, f"does not say it is a {FORMAT!r} manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _bad_manifest(path, "has no format version")
    if version > FORMAT_VERSION:
        raise BundleError("manifest", f"{path} is bundle format {version}; this Modelyard reads format "
                          f"{FORMAT_VERSION} and older.", member=MANIFEST,
                          hint="Upgrade Modelyard to import it, or export it again with this version.")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise _bad_manifest(path, "lists no files")
    for name, entry in files.items():
        check_member_name(str(name), where=f"The manifest of {path}")
        if name in CONTROL_MEMBERS:
            raise _bad_manifest(path, f"lists its own control file {name!r}")
        if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and _HEX64.match(entry["sha256"])
                and isinstance(entry.get("size"), int) and entry["size"] >= 0):
            raise _bad_manifest(path, f"has a malformed entry for {name!r}")
    model = manifest.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str) or not isinstance(
            model.get("version"), int):
        raise _bad_manifest(path, "does not name the model and version it holds")
    mf = manifest.get("model_files")
    if not isinstance(mf, dict) or mf.get("joblib") not in files:
        raise _bad_manifest(path, "does not point at the model file")
    if mf.get("skops") is not None and mf.get("skops") not in files:
        raise _bad_manifest(path, "points at a skops file it does not list")
    for key in ("metrics", "environment", "lineage"):
        if not isinstance(manifest.get(key), dict):
            raise _bad_manifest(path, f"has no {key!r} section")
    if manifest.get("signature") is not None and not isinstance(manifest.get("signature"), dict):
        raise _bad_manifest(path, "has a malformed 'signature' section")
    _check_texts(manifest, path)
    return manifest


# The fields of a manifest that become names in the store or are printed as names, and the free
# text fields (where line breaks are allowed): none may hold a control character or terminal escape.
_NAME_FIELDS = (("created_by",), ("created_with",), ("model", "name"), ("model", "ref"), ("model", "stage"),
                ("model", "aliases"), ("model", "created_by"), ("model", "source"), ("source", "ref"),
                ("lineage", "experiment"), ("lineage", "run_id"))
_TEXT_FIELDS = (("model", "description"), ("card", "notes"))


def _check_texts(manifest: dict[str, Any], path: str) -> None:
    def values(keys: tuple[str, ...]) -> list[Any]:
        value: Any = manifest
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value if isinstance(value, list) else [value]

    found = [(".".join(keys), v, False) for keys in _NAME_FIELDS for v in values(keys)]
    found += [(".".join(keys), v, True) for keys in _TEXT_FIELDS for v in values(keys)]
    found += [("metrics (a metric's name)", k, False) for k in manifest["metrics"]]
    for field_name, value, free_text in found:
        bad = unsafe_character(value, free_text=free_text) if isinstance(value, str) else None
        if bad is not None:
            raise _bad_manifest(path, f"has a control character (U+{ord(bad):04X}) in its field {field_name} "
                                f"('{display(value)[:80]}'): names cannot hold terminal escapes or control "
                                "characters", hint="The bundle was not imported. Export it again from a store "
                                                   "where the name is plain text.")


# --------------------------------------------------------------------------- the reader


@dataclass
class CheckedBundle:
    """An open bundle whose directory, names, sizes and manifest were checked."""

    path: str
    zf: zipfile.ZipFile
    members: dict[str, zipfile.ZipInfo]  # files only
    manifest: dict[str, Any]
    manifest_raw: bytes
    signature_raw: bytes | None

    def copy_member(self, name: str, sink: Callable[[bytes], Any] | None = None, *,
                    limit: int | None = None) -> str:
        """Stream member ``name`` to ``sink`` (chunk by chunk) and return its sha256.

        Refuses it (``too_large``) when it yields more bytes than its header or ``limit`` allow,
        and (``checksum``) when the zip's CRC fails. Does not compare with the manifest.
        """
        info = self.members[name]
        cap = min(info.file_size, limit) if limit is not None else info.file_size
        h = hashlib.sha256()
        n = 0
        try:
            with self.zf.open(info) as fh:
                while chunk := fh.read(CHUNK):
                    n += len(chunk)
                    if n > cap:
                        raise BundleError("too_large", f"The member {name!r} of {self.path} unpacks to more "
                                          f"than the {cap:,} bytes its header declares.", member=name,
                                          hint="The file was crafted or damaged; it was not imported.")
                    h.update(chunk)
                    if sink is not None:
                        sink(chunk)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError) as exc:
            raise BundleError("checksum", f"The member {name!r} of {self.path} is damaged and cannot be "
                              f"unpacked ({exc}).", member=name,
                              hint="The file was changed or truncated; it was not imported.") from None
        if n != info.file_size:
            raise BundleError("checksum", f"The member {name!r} of {self.path} is {n:,} bytes, not the "
                              f"{info.file_size:,} its header declares.", member=name,
                              hint="The file was changed or truncated; it was not imported.")
        return h.hexdigest()

    def read_member(self, name: str, *, limit: int) -> bytes:
        parts: list[bytes] = []
        self.copy_member(name, parts.append, limit=limit)
        return b"".join(parts)

    def expected(self, name: str) -> dict[str, Any]:
        return self.manifest["files"][name]

    def verify_member(self, name: str, sink: Callable[[bytes], Any] | None = None) -> str:
        """Stream a listed member to ``sink`` and refuse it unless it matches the manifest."""
        entry = self.expected(name)
        info = self.members[name]
        if info.file_size != entry["size"]:
            raise BundleError("checksum", f"The member {name!r} of {self.path} is {info.file_size:,} bytes; the "
                              f"manifest records {entry['size']:,}.", member=name,
                              hint="It was changed after export; the bundle was not imported.")
        digest = self.copy_member(name, sink)
        if digest != entry["sha256"]:
            raise BundleError("checksum", f"The member {name!r} of {self.path} does not match its checksum in the "
                              f"manifest (sha256 {digest[:12]}..., expected {entry['sha256'][:12]}...).",
                              member=name, hint="It was changed after export; the bundle was not imported.")
        return digest


def _check_listing(cb: CheckedBundle, dirs: set[str]) -> None:
    listed = set(cb.manifest["files"])
    for name in sorted(cb.members):
        if name not in listed and name not in CONTROL_MEMBERS:
            raise BundleError("extra_member", f"{cb.path} holds a member the manifest does not list: {name!r}.",
                              member=name, hint="Something was added after export; the bundle was not imported.")
    for name in sorted(listed):
        if name not in cb.members:
            raise BundleError("missing_member", f"The manifest of {cb.path} lists {name!r}, which is not in the "
                              "file.", member=name, hint="The file is incomplete; it was not imported.")
    parents = {"/".join(n.split("/")[:i]) + "/" for n in listed for i in range(1, n.count("/") + 1)}
    for d in sorted(dirs):
        if d not in parents:
            raise BundleError("extra_member", f"{cb.path} holds a folder the manifest does not list: {d!r}.",
                              member=d, hint="Something was added after export; the bundle was not imported.")


@contextmanager
def open_checked(path: str | Path) -> Iterator[CheckedBundle]:
    """Open ``path`` and check its directory and manifest (see the module docstring)."""
    shown = str(path)
    p = Path(path)
    if not p.is_file():
        raise BundleError("not_a_bundle", f"{shown} is not a file." if p.exists() else f"There is no file {shown}.",
                          hint="Choose a .mybundle file exported by Modelyard.")
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BundleError("not_a_bundle", f"{shown} is not a Modelyard bundle: it is not a readable zip file "
                          f"({exc}).", hint="Choose a .mybundle file exported by Modelyard.") from None
    try:
        infos = zf.infolist()
        members = check_infos(infos, path=shown)
        dirs = {i.filename for i in infos if i.is_dir()}
        if MANIFEST not in members:
            raise BundleError("manifest", f"{shown} has no manifest ({MANIFEST}).", member=MANIFEST,
                              hint="It is not a Modelyard bundle, or the manifest was removed; it was not imported.")
        cb = CheckedBundle(shown, zf, members, {}, b"", None)
        raw = cb.read_member(MANIFEST, limit=MAX_MANIFEST_BYTES)
        if MANIFEST_DIGEST not in members:
            raise BundleError("manifest", f"{shown} has no manifest digest ({MANIFEST_DIGEST}).",
                              member=MANIFEST_DIGEST, hint="It was changed after export; it was not imported.")
        digest_text = cb.read_member(MANIFEST_DIGEST, limit=1024).decode("ascii", "replace").split()
        if not digest_text or digest_text[0] != hashlib.sha256(raw).hexdigest():
            raise BundleError("manifest", f"The manifest of {shown} was altered: it does not match its digest "
                              f"({MANIFEST_DIGEST}).", member=MANIFEST,
                              hint="It was changed after export; the bundle was not imported.")
        cb.manifest = parse_manifest(raw, path=shown)
        cb.manifest_raw = raw
        if SIGNATURE in members:
            cb.signature_raw = cb.read_member(SIGNATURE, limit=64 * 1024)
        _check_listing(cb, dirs)
        yield cb
    finally:
        zf.close()


def hash_file(path: str | Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def write_to(fh: IO[bytes]) -> Callable[[bytes], Any]:
    return fh.write
