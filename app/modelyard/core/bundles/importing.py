"""Reading a bundle: :func:`inspect_bundle` (check, write nothing) and :func:`import_bundle`."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import tempfile
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from modelyard.core.bundles.format import (
    JOBLIB_PATH,
    MAX_PROFILE_BYTES,
    BundleError,
    CheckedBundle,
    check_inner_zip,
    hash_file,
    open_checked,
)
from modelyard.core.bundles.mlflow_files import package_versions
from modelyard.core.bundles.signing import (
    KeySource,
    SignatureCheck,
    TrustedKey,
    check_signature,
    load_trusted_keys,
    store_trusted_dir,
)
from modelyard.core.common.errors import ModelyardError
from modelyard.core.common.procs import current_user
from modelyard.core.registry import safety
from modelyard.core.registry.modelfiles import load_file
from modelyard.core.store import Store, lookup, records
from modelyard.core.store import models as m
from modelyard.core.store.server import xact_lock

Progress = Callable[[float | None, str], Any]
ENTITY = "registered_model"
SPOOL_BYTES = 64 << 20  # the skops file is checked in memory up to this size, else in a system temp file


@dataclass(frozen=True)
class BundleReport:
    """Everything :func:`inspect_bundle` found, for a preview before importing."""

    path: str
    sha256: str
    size: int
    name: str
    version: int
    ref: str  # the version in the store it came from, e.g. "churn@v3"
    created_at: str | None
    created_by: str | None
    created_with: str | None
    signature: dict[str, Any]  # {"status": unsigned|verified|unknown_key, "key_id", "signer"}
    safe_load: bool  # loads with skops and Modelyard's allow-list: no unpickling
    untrusted_types: list[str]  # what skops does not trust by default (all allowed when safe_load)
    unsafe_types: list[str]  # what Modelyard does not trust either (empty when safe_load)
    skops_error: str | None
    has_profile: bool
    has_rows: bool
    has_mlflow: bool
    metrics: dict[str, Any]
    warnings: list[str]
    files: list[dict[str, Any]]
    manifest: dict[str, Any] = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _noop(fraction: float | None, message: str) -> None:
    pass


def _minor(version: str | None) -> str | None:
    return ".".join(str(version).split(".")[:2]) if version else None


def _major(version: str | None) -> str | None:
    return str(version).split(".")[0] if version else None


def version_warnings(manifest: dict[str, Any]) -> list[str]:
    """Differences between the exporting machine's Python and packages and this one's that matter."""
    env = manifest.get("environment") or {}
    theirs = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    ours = package_versions()
    out: list[str] = []
    py = env.get("python")
    if py and _minor(py) != _minor(platform.python_version()):
        out.append(f"The bundle was made with Python {py}; this is Python {platform.python_version()}. "
                   "The model may load or predict differently.")
    sk = theirs.get("scikit-learn")
    if sk and sk != ours.get("scikit-learn"):
        out.append(f"The bundle was made with scikit-learn {sk}; this is scikit-learn {ours.get('scikit-learn')}. "
                   f"Predictions may differ; install scikit-learn=={sk} to be sure.")
    npv = theirs.get("numpy")
    if npv and _major(npv) != _major(ours.get("numpy")):
        out.append(f"The bundle was made with numpy {npv}; this is numpy {ours.get('numpy')}.")
    return out


def _verify(cb: CheckedBundle, trusted: list[TrustedKey], *, progress: Progress) -> BundleReport:
    """Check every member against the manifest and the signature; analyse the skops file."""
    man = cb.manifest
    sig = check_signature(cb.manifest_raw, cb.signature_raw, trusted, path=cb.path)
    mf = man["model_files"]
    skops_name = mf.get("skops")
    untrusted: list[str] = []
    skops_error = mf.get("skops_error") if skops_name is None else None
    names = sorted(man["files"])
    total = sum(man["files"][n]["size"] for n in names) or 1
    done = 0
    for name in names:
        progress(0.05 + 0.45 * done / total, f"Checking the {len(names)} files of the bundle")
        if name == skops_name:
            with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
                cb.verify_member(name, spool.write)
                spool.seek(0)
                check_inner_zip(spool, member=name, path=cb.path)
                try:
                    untrusted = safety.untrusted_types(spool)
                except Exception as exc:  # noqa: BLE001 - a skops file skops cannot read is not safe
                    skops_error = f"skops cannot read {name}: {type(exc).__name__}: {exc}"
        else:
            cb.verify_member(name)
        done += man["files"][name]["size"]
    unsafe = safety.not_allowed(untrusted) if skops_name is not None and skops_error is None else []
    safe = skops_name is not None and skops_error is None and not unsafe
    warnings = version_warnings(man)
    if sig.status == "unsigned":
        warnings.append("The bundle is not signed: where it comes from cannot be checked.")
    elif sig.status == "unknown_key":
        warnings.append(f"The bundle is signed with key {sig.key_id}, which is not among the trusted keys: where it "
                        "comes from is not verified.")
    if not safe:
        why = (f"it uses {', '.join(unsafe)}" if unsafe else (skops_error or "it has no skops file"))
        warnings.append(f"The model can only be loaded by unpickling ({why}), which can run any code: import it "
                        "only if you trust where it comes from.")
    if man.get("reference_profile") is None:
        warnings.append(man.get("reference_profile_note") or "The bundle has no reference profile for drift checks.")
    sha, size = hash_file(cb.path)
    model = man["model"]
    return BundleReport(
        path=cb.path, sha256=sha, size=size, name=model["name"], version=model["version"],
        ref=str(model.get("ref") or f"{model['name']}@v{model['version']}"), created_at=man.get("created_at"),
        created_by=man.get("created_by"), created_with=man.get("created_with"), signature=sig.to_json(),
        safe_load=safe, untrusted_types=untrusted, unsafe_types=unsafe, skops_error=skops_error,
        has_profile=man.get("reference_profile") is not None, has_rows=man.get("reference_rows") is not None,
        has_mlflow=man.get("mlflow") is not None, metrics=dict(man.get("metrics") or {}), warnings=warnings,
        files=[{"path": n, **man["files"][n]} for n in names], manifest=man)


def inspect_bundle(path: str | os.PathLike[str], *, trusted_keys: Iterable[KeySource] | None = None,
                   store: Store | str | os.PathLike[str] | None = None) -> BundleReport:
    """Check a bundle completely without writing anything, and say what is in it.

    Raises :class:`BundleError` for anything :func:`import_bundle` refuses because of the file
    itself (checksums, names, sizes, manifest, a signature that does not verify). Trusted keys:
    ``trusted_keys`` plus, with ``store`` (a Store or its folder), ``<store>/keys/trusted/*.pub``.
    Whether the store already holds the model, or would refuse the signer, is for
    :func:`import_bundle` to say.
    """
    root = store.root if isinstance(store, Store) else store
    trusted = load_trusted_keys(trusted_keys, store_root=root)
    with open_checked(path) as cb:
        rep = _verify(cb, trusted, progress=_noop)
    if trusted and rep.signature["status"] != "verified":
        rep.warnings.append("Trusted keys are set up here, so importing it will be refused: it is "
                            + ("not signed." if rep.signature["status"] == "unsigned" else
                               f"signed with key {rep.signature['key_id']}, which is not trusted."))
    return rep


# --------------------------------------------------------------------------- policy


def _enforce_signature(rep: BundleReport, trusted: list[TrustedKey], store: Store) -> SignatureCheck:
    sig = SignatureCheck(rep.signature["status"], rep.signature.get("key_id"), rep.signature.get("signer"))
    if not trusted:
        return sig
    folder = store_trusted_dir(store.root)
    if sig.status == "unknown_key":
        raise BundleError("signature", f"{rep.path} is signed with key {sig.key_id}, which this store does not "
                          "trust.", member="manifest.sig",
                          hint=f"If you trust its signer, put their public key in {folder} or pass it with "
                               "--trusted-key. Nothing was imported.")
    if sig.status == "unsigned":
        raise BundleError("unsigned", f"{rep.path} is not signed, and this store only accepts bundles signed by "
                          "a trusted key.", member="manifest.sig",
                          hint=f"Ask for a signed bundle (modelyard bundle export --sign KEY). Trusted keys: {folder}"
                               " or --trusted-key. Nothing was imported.")
    return sig


def _origin_key(man: dict[str, Any]) -> tuple[str, int] | None:
    origin = man.get("origin") if isinstance(man.get("origin"), dict) else man.get("source")
    if not isinstance(origin, dict):
        return None
    sid, vid = origin.get("store_id"), origin.get("model_version_id")
    if not isinstance(sid, str) or not isinstance(vid, int):
        return None
    return sid, vid


def _existing(s: Any, store_id: str | None, man: dict[str, Any], bundle_sha: str) -> str | None:
    """The ref of a version of this store that already holds the bundle's model, if any."""
    def ref_of(mv: m.ModelVersion) -> str:
        name = s.scalar(select(m.RegisteredModel.name).where(m.RegisteredModel.id == mv.model_id))
        return f"{name}@v{mv.version}"

    edge = s.scalars(select(m.LineageEdge).where(m.LineageEdge.src_type == "bundle",
                                                 m.LineageEdge.src_id == bundle_sha,
                                                 m.LineageEdge.relation == "imported_as")).first()
    if edge is not None and edge.dst_id.isdigit():
        mv = s.get(m.ModelVersion, int(edge.dst_id))
        if mv is not None:
            return ref_of(mv)
    key = _origin_key(man)
    if key is None:
        return None
    if key[0] == store_id:
        mv = s.get(m.ModelVersion, key[1])
        if mv is not None:
            return ref_of(mv)
    for mv in s.scalars(select(m.ModelVersion).where(m.ModelVersion.source == "bundle")
                        .order_by(m.ModelVersion.id)):
        origin = ((mv.card or {}).get("bundle") or {}).get("origin")
        if isinstance(origin, dict) and (origin.get("store_id"), origin.get("model_version_id")) == key:
            return ref_of(mv)
    return None


def _already(rep: BundleReport, existing: str) -> BundleError:
    return BundleError("already_imported", f"The model in {rep.path} ({rep.ref}) is already in this store as "
                       f"{existing}.", existing=existing,
                       hint=f"Use {existing}; nothing was imported.")


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _same_predictions(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(x == y or (_is_nan(x) and _is_nan(y)) for x, y in zip(a, b, strict=True))


def _predicts(model: Any, man: dict[str, Any], check: dict[str, Any] | None, rows_tmp: Path | None, *,
              shown: str, member: str) -> list[Any] | None:
    """Refuse what is not a model: it must have ``predict`` and predict on the bundle's example rows
    (else its first reference rows). Returns the example rows' predictions (JSON values), if any."""
    from modelyard.core.bundles.exporting import example_input

    kind = f"{type(model).__module__}.{type(model).__qualname__}".removeprefix("builtins.")
    if not callable(getattr(model, "predict", None)):
        raise BundleError("not_a_model", f"The model file of {shown} holds an object of type {kind}, which has no "
                          "predict method: it is not a model, so it was not imported.", member=member,
                          hint="Nothing was imported.")
    X: Any = None
    rows = "the bundle's example rows"
    if check is not None and isinstance(check.get("input"), dict):
        X = check["input"]
    elif rows_tmp is not None:
        import pandas as pd

        names = [c.get("name") for c in (man.get("signature") or {}).get("inputs") or [] if isinstance(c, dict)]
        if names and all(isinstance(n, str) for n in names):
            try:
                X, rows = pd.read_parquet(rows_tmp, columns=names).head(5), "the bundle's reference rows"
            except Exception:  # noqa: BLE001 - rows that cannot be read give no check
                X = None
    if X is None:
        return None
    try:
        out = model.predict(example_input(X, man.get("signature")) if isinstance(X, dict) else X)
        return json.loads(json.dumps(list(out.tolist() if hasattr(out, "tolist") else out), default=str))
    except Exception as exc:  # noqa: BLE001
        raise BundleError("not_a_model", f"The {kind} in {shown} cannot predict on {rows} here "
                          f"({type(exc).__name__}: {exc}), so it was not imported.", member=member,
                          hint="A different scikit-learn version may be the cause; see 'modelyard bundle inspect'. "
                               "Nothing was imported.") from None


def _clean_card(man: dict[str, Any]) -> dict[str, Any]:
    card = man.get("card") if isinstance(man.get("card"), dict) else {}
    out: dict[str, Any] = {}
    for key in ("params", "slices", "data", "reproducibility", "notes"):
        if isinstance(card.get(key), dict):
            out[key] = card[key]
    return out


# --------------------------------------------------------------------------- import


def import_bundle(store: Store, path: str | os.PathLike[str], *, name: str | None = None, trust_pickle: bool = False,
                  trusted_keys: Iterable[KeySource] | None = None, comment: str | None = None,
                  progress: Progress | None = None) -> Any:
    """Import a bundle as the next version of ``name`` (default: the bundle's model name).

    Returns the new :class:`~modelyard.core.registry.versions.ModelVersionInfo`; its
    ``card["bundle"]["warnings"]`` lists the warnings (version mismatches, unsigned...).
    Everything is checked before anything is written; see :mod:`modelyard.core.bundles`.
    """
    import joblib

    from modelyard.core.registry import versions as registry
    from modelyard.core.registry.reference import validate_reference

    report = progress or _noop
    new_name = registry.check_name(name) if name is not None else None
    trusted = load_trusted_keys(trusted_keys, store_root=store.root)
    store_id = store.meta().get("store_id")
    shown = str(path)
    with open_checked(path) as cb, ExitStack() as temps:
        rep = _verify(cb, trusted, progress=report)
        man = rep.manifest
        sig = _enforce_signature(rep, trusted, store)
        target_name = new_name or registry.check_name(rep.name)
        with store.session() as s:
            existing = _existing(s, store_id, man, rep.sha256)
        if existing is not None:
            raise _already(rep, existing)
        if not rep.safe_load and not trust_pickle:
            why = (f"it uses {', '.join(rep.unsafe_types)}, which Modelyard does not load without trust"
                   if rep.unsafe_types else (rep.skops_error or "it has no skops file"))
            raise BundleError("untrusted_pickle", f"The model in {shown} can only be loaded by unpickling ({why}); "
                              "unpickling can run any code, so it was not imported.", member=JOBLIB_PATH,
                              hint="Import it only if you trust where it comes from: --trust-pickle "
                                   "(trust_pickle=True).")
        warnings = list(rep.warnings)

        # ---- copy the members the store keeps into its temp folder, checking them again
        report(0.55, "Copying the model")
        mf = man["model_files"]

        def copy(member: str) -> Path:
            tmp = temps.enter_context(store.artifacts.temp_path())
            with open(tmp, "wb") as fh:
                cb.verify_member(member, fh.write)
                fh.flush()
                os.fsync(fh.fileno())
            return tmp

        joblib_tmp = copy(mf["joblib"]) if not rep.safe_load else None
        skops_tmp = copy(mf["skops"]) if mf.get("skops") and rep.safe_load else None
        prof = man.get("reference_profile")
        profile_tmp = None
        if isinstance(prof, dict) and prof.get("path") in man["files"]:
            if man["files"][prof["path"]]["size"] > MAX_PROFILE_BYTES:
                warnings.append(f"The reference profile was left out: it is larger than {MAX_PROFILE_BYTES:,} bytes.")
            else:
                profile_tmp = copy(prof["path"])
        rows = man.get("reference_rows")
        rows_tmp = copy(rows["path"]) if isinstance(rows, dict) and rows.get("path") in man["files"] else None

        # ---- load the model: skops with the allow-list, or (trusted) joblib; re-checked against the
        # manifest's sha256 as it is read into memory, and what is loaded must be a model that predicts
        report(0.7, "Loading the model")
        member = mf["skops"] if rep.safe_load and skops_tmp is not None else mf["joblib"]
        try:
            model = load_file(skops_tmp if member == mf["skops"] else joblib_tmp,
                              man["files"][member]["sha256"], what=f"the model in {shown}",
                              fmt="skops" if member == mf["skops"] else "joblib",
                              hint="Nothing was imported.")
        except BundleError:
            raise
        except ModelyardError as exc:
            raise BundleError("load_failed", exc.message, member=member, hint=exc.hint) from None
        except Exception as exc:  # noqa: BLE001 - tell the user why, name the file
            how = "loaded" if member == mf["skops"] else "unpickled"
            raise BundleError("load_failed", f"The model in {shown} cannot be {how}: {type(exc).__name__}: {exc}.",
                              member=member,
                              hint=("A different scikit-learn version may be the cause; see 'modelyard bundle inspect'."
                                    if member == mf["skops"] else "It may need a module that is not installed here.")
                              + " Nothing was imported.") from None
        if member == mf["skops"]:
            model_tmp = temps.enter_context(store.artifacts.temp_path(suffix=".joblib"))
            joblib.dump(model, model_tmp)  # the store's joblib is made here, from the safely loaded model
            loaded_from = "skops"
        else:
            assert joblib_tmp is not None
            model_tmp = joblib_tmp
            loaded_from = "joblib"
        check = man.get("check") if isinstance(man.get("check"), dict) else None
        got = _predicts(model, man, check, rows_tmp, shown=shown, member=member)
        if got is not None and check and isinstance(check.get("predictions"), list) \
                and not _same_predictions(got, check["predictions"]):
            warnings.append("The model's predictions on the bundle's example rows differ from those recorded when "
                            "it was exported (a different scikit-learn or numpy may be the cause).")
        profile_ok = False
        if profile_tmp is not None:
            try:
                validate_reference(json.loads(profile_tmp.read_bytes()), what="The bundle's reference profile")
                profile_ok = True
            except Exception as exc:  # noqa: BLE001 - a profile this version cannot read is left out
                warnings.append(f"The reference profile was left out: {getattr(exc, 'message', exc)}")

        # ---- one write transaction
        report(0.9, "Recording the model version")
        now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        source = man.get("source") if isinstance(man.get("source"), dict) else {}
        lineage = man["lineage"]
        with store.write() as s:
            existing = _existing(s, store_id, man, rep.sha256)
            if existing is not None:
                raise _already(rep, existing)
            xact_lock(s, "registered_model", target_name)  # PostgreSQL: one next version number
            model_row = lookup.find_model(s, target_name)
            if model_row is None:
                model_row = m.RegisteredModel(name=target_name, description=man["model"].get("description"))
                s.add(model_row)
                s.flush()
                records.audit(s, ENTITY, model_row.id, "create_model", to_value=target_name, comment=comment)
            model_ref = store.artifacts.adopt(model_tmp, session=s, media_type="application/x-joblib")
            skops_ref = (store.artifacts.adopt(skops_tmp, session=s, media_type="application/x-skops")
                         if skops_tmp is not None else None)
            profile_ref = (store.artifacts.adopt(profile_tmp, session=s, media_type="application/json")
                           if profile_tmp is not None and profile_ok else None)
            rows_ref = (store.artifacts.adopt(rows_tmp, session=s, media_type="application/vnd.apache.parquet")
                        if rows_tmp is not None else None)
            number = (s.scalar(select(func.max(m.ModelVersion.version))
                               .where(m.ModelVersion.model_id == model_row.id)) or 0) + 1
            card: dict[str, Any] = {
                "run_id": lineage.get("run_id"), "experiment": lineage.get("experiment"),
                "dataset_version_id": None, "split_id": None, "spec": lineage.get("spec"),
                **_clean_card(man),
                "bundle": {
                    "sha256": rep.sha256, "bundle_id": man.get("bundle_id"), "signer": sig.signer,
                    "key_id": sig.key_id, "signature": sig.status, "imported_from": shown, "imported_at": now,
                    "created_at": man.get("created_at"), "created_by": man.get("created_by"),
                    "created_with": man.get("created_with"),
                    "source": {"store_id": source.get("store_id"), "model_version_id": source.get("model_version_id"),
                               "model": rep.name, "version": rep.version, "ref": rep.ref},
                    "origin": man.get("origin") if isinstance(man.get("origin"), dict) else None,
                    "lineage": lineage, "environment": man.get("environment"),
                    "joblib_sha256": man["files"][mf["joblib"]]["sha256"],
                    "skops_sha256": skops_ref.sha256 if skops_ref is not None else None,
                    "loaded_from": loaded_from, "trusted_pickle": loaded_from == "joblib",
                    "reference_rows_sha256": rows_ref.sha256 if rows_ref is not None else None,
                    "warnings": warnings,
                },
            }
            if profile_ref is not None:
                card["reference_profile_sha256"] = profile_ref.sha256
            mv = m.ModelVersion(model_id=model_row.id, version=number, run_id=None, dataset_version_id=None,
                                stage="None", model_sha256=model_ref.sha256, source="bundle",
                                signature=man.get("signature"), metrics=dict(man.get("metrics") or {}), card=card,
                                description=man["model"].get("description"), created_by=current_user())
            s.add(mv)
            s.flush()
            records.link(s, "bundle", rep.sha256, "model_version", mv.id, "imported_as",
                         {"path": shown, "source_model": rep.name, "source_version": rep.version,
                          "signer": sig.signer})
            records.audit(s, ENTITY, model_row.id, "import_bundle", from_value=f"bundle {Path(shown).name} ({rep.ref})",
                          to_value=f"{target_name}@v{number}", comment=comment,
                          details={"version": number, "bundle_sha256": rep.sha256, "source_model": rep.name,
                                   "source_version": rep.version, "signer": sig.signer,
                                   "trusted_pickle": loaded_from == "joblib", "warnings": warnings})
            model_row.updated_at = m.utcnow()
    return registry.get_version(store, f"{target_name}@v{number}")
