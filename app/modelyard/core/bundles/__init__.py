"""Bundles: one ``.mybundle`` file that carries a model version from one store to another, and to MLflow.

::

    from modelyard.core import bundles

    info = bundles.export_bundle(store, "churn@champion", "churn.mybundle", signing_key="team.key")
    report = bundles.inspect_bundle("churn.mybundle", store=other)   # checks everything, writes nothing
    version = bundles.import_bundle(other, "churn.mybundle")           # -> ModelVersionInfo (churn@vN)
    bundles.generate_key("team.key", "team.pub")                       # a team key pair (Ed25519)

    # in the background (GUI, CLI): JobSpecs for core.jobs.run_job / the Qt JobRunner
    bundles.export_bundle_spec("churn@v3", "churn.mybundle")
    bundles.import_bundle_spec("churn.mybundle", trust_pickle=False)

Refusals raise :class:`BundleError` (a :class:`~modelyard.core.common.errors.ModelyardError`) whose
``reason`` tells them apart (:data:`REASONS`: ``checksum``, ``manifest``, ``extra_member``,
``missing_member``, ``duplicate_member``, ``path_traversal``, ``absolute_path``, ``link``,
``too_large``, ``compression_ratio``, ``unsupported``, ``signature``, ``unsigned``,
``untrusted_pickle``, ``already_imported``, ``load_failed``, ``not_a_model``, ``not_a_bundle``,
``output``...) and whose
``member`` names the file inside the bundle. A job records only the message, so the GUI calls
:func:`inspect_bundle` (a quick read) to preview a dropped file and show the reason before it
queues the import job.

**The file** is a zip (deflate, plain files only)::

    manifest.json           format, format_version, bundle_id, created_at/by/with, model (name,
                            version, ref, description, stage, aliases, estimator), source and origin
                            (store id + model version id), signature (inputs), metrics, lineage (run id,
                            experiment, dataset version, split, spec, data facts, imported_from),
                            card (params, slices, data, reproducibility, notes), environment (Python,
                            platform, package versions), requirements, model_files (skops/joblib, the
                            types skops does not trust by default, which of them Modelyard does not
                            trust, safe_load), reference_profile (or reference_profile_note saying why
                            not), reference_rows, check (example rows and their predictions), mlflow,
                            files ({path: {sha256, size}} for every other member)
    manifest.sha256         the manifest's sha256 (catches damage and casual edits)
    manifest.sig            optional: Ed25519 signature of manifest.json's bytes (see .signing)
    model/model.skops       the model in skops format: loads without unpickling
    model/model.joblib      the same model, joblib (a pickle)
    reference/profile.json  per-feature bins and frequencies of the training data (drift checks),
                            from modelyard.core.registry.reference.reference_for_version
    reference/rows.parquet  only with include_rows=True: the training rows themselves
    card/model_card.json    the model card (modelyard.core.registry.cards), and card/model_card.html
    MLmodel, requirements.txt, python_env.yaml, conda.yaml, input_example.json
                            so that the unzipped folder is an MLflow model (see .mlflow_files)
    README.txt

**Export** (:func:`export_bundle`) writes the zip under a temporary name next to the target and
renames it into place inside the write transaction that records the lineage edge
``model_version -> bundle(<file sha256>)`` (``exported_as``) and the audit event ``export_bundle``.
An existing file at the target is refused (``output``) unless ``force=True``. The model and the
joblib bytes shipped are read through :mod:`modelyard.core.registry.modelfiles` (checked against their
recorded sha256).
A version without a reference profile (its data is not in this store and it has none stored) is
exported without one, and the manifest says why.

**Import** (:func:`import_bundle`) refuses, before writing anything and naming the member: a file
that is not a zip; member names with ``..``, a leading ``/`` or ``\\``, a drive letter or a backslash;
symbolic links and special files; duplicate names; encrypted or non-deflate members; more than
:data:`~.format.MAX_MEMBERS` members; a member above :data:`~.format.MAX_MEMBER_BYTES` or a total above
:data:`~.format.MAX_TOTAL_BYTES` (declared sizes are checked first, and reading stops as soon as a
member yields more than it declared); a member above 1 MiB compressed more than 200 times, also inside
the skops file (itself a zip, which skops would unpack in memory); a missing
manifest or digest, or a manifest that does not match its digest or is malformed; a member missing,
added, or not matching its sha256; a signature that does not verify. Every member is hashed before
the store is touched, and again while it is copied into the store's temp folder.

Then the model: the skops file's types are listed with ``skops.io.get_untrusted_types`` and checked
against Modelyard's allow-list (:mod:`.safety`). When all are allowed, the model is loaded with skops
(no unpickling) and the store's joblib copy is **written here from that model**: the bundle's own
joblib file is never unpickled or stored, so a crafted pickle cannot ride along with a clean skops
file. Otherwise the model is *unpickle-only* and refused (``untrusted_pickle``) unless
``trust_pickle=True``, which loads and stores the bundle's joblib file. Either file is loaded with
:func:`modelyard.core.registry.modelfiles.load_file` (its bytes re-hashed against the manifest as they are
read). What is loaded must be a model: without a ``predict`` method, or when ``predict`` fails on
the bundle's example rows (else its first reference rows), the import is refused (``not_a_model``).
Python, scikit-learn and
numpy version differences are warnings, and so is a model whose predictions on the recorded example
rows differ from those recorded at export.

The new version (next number of ``name``, default the bundle's model name; the model is created if
new) is written in one transaction: ``source="bundle"``, the bundle's signature and metrics, a card
with the original run id, experiment and spec, params, slices, data facts and reproducibility,
``reference_profile_sha256`` (the profile is an artifact, ``application/json``), and
``card["bundle"]`` = {sha256, bundle_id, signer, key_id, imported_from, source, origin, lineage,
environment, loaded_from, warnings, ...}; the lineage edge ``bundle(<sha256>) -> model_version``
(``imported_as``) and the audit event ``import_bundle`` (plus ``create_model`` for a new model).
Store-local ids of the source store (dataset version, split) stay in ``card["bundle"]["lineage"]``
and are not linked.

**Importing the same model twice** is refused (``already_imported``, ``BundleError.existing``
names the version): the same bundle file, another export of the same version, or a bundle of a
version that came from this store. A model is known by its *origin*, the store id and model version
id where it was first registered, which re-exports carry along.

**Trust.** Signing is optional (``signing_key``: a PEM file path or bytes). Trusted public keys
are ``trusted_keys`` plus every ``<store>/keys/trusted/*.pub``. With no trusted key at all, a bundle
is imported with a warning that its origin is not verified (a signature still has to verify
against the key it names). Once a store has trusted keys (or keys are passed), it imports only
bundles signed by one of them: unsigned bundles are refused (``unsigned``), and so are bundles
signed by another key (``signature``). The signer (file name of the key and key id) is recorded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from modelyard.core.bundles.exporting import BundleInfo, export_bundle, target_path
from modelyard.core.bundles.format import REASONS, SUFFIX, BundleError
from modelyard.core.bundles.importing import BundleReport, import_bundle, inspect_bundle
from modelyard.core.bundles.signing import (
    generate_key,
    load_trusted_keys,
    store_trusted_dir,
)
from modelyard.core.jobs.runner import JobContext, JobSpec
from modelyard.core.store import Store

__all__ = [
    "REASONS",
    "SUFFIX",
    "BundleError",
    "BundleInfo",
    "BundleReport",
    "export_bundle",
    "export_bundle_job",
    "export_bundle_spec",
    "generate_key",
    "import_bundle",
    "import_bundle_job",
    "import_bundle_spec",
    "inspect_bundle",
    "load_trusted_keys",
    "store_trusted_dir",
    "target_path",
]


def remove_export_leftovers(store: Store, job_id: int, status: str, error: str | None = None) -> list[str]:
    """After an export job was killed (cancelled) or died: remove the half-written bundle it left
    beside the target (``.<name>.mybundle.<random>.tmp``, made after the job was created). The
    target itself is never touched: it is renamed into place whole or not at all. Returns what
    was removed."""
    import datetime as dt

    from modelyard.core.store import models as m

    with store.session() as s:
        job = s.get(m.Job, job_id)
        params, created = (dict(job.params or {}), job.created_at) if job is not None else ({}, None)
    path = params.get("path")
    if not path or created is None:
        return []
    where = Path(path).expanduser()
    folder = where if where.is_dir() else where.parent
    since = (created.replace(tzinfo=dt.timezone.utc) if created.tzinfo is None else created).timestamp() - 1
    removed = []
    for tmp in folder.glob(f".*{SUFFIX}.*.tmp"):
        try:
            if tmp.stat().st_mtime >= since:
                tmp.unlink()
                removed.append(str(tmp))
        except OSError:
            continue
    return removed


def export_bundle_job(ctx: JobContext, *, ref: str, path: str, signing_key: str | None = None,
                      include_rows: bool = False, force: bool = False) -> dict[str, Any]:
    """Job: :func:`export_bundle`; returns :meth:`BundleInfo.to_json`."""
    info = export_bundle(ctx.store, ref, path, signing_key=signing_key, include_rows=include_rows, force=force,
                         progress=ctx.progress)
    for note in info.notes:
        ctx.log(note)
    return info.to_json()


def import_bundle_job(ctx: JobContext, *, path: str, name: str | None = None, trust_pickle: bool = False,
                      trusted_keys: list[str] | None = None, comment: str | None = None) -> dict[str, Any]:
    """Job: :func:`import_bundle`; returns ``{"ref", "version": ModelVersionInfo.to_json(), "warnings"}``."""
    info = import_bundle(ctx.store, path, name=name, trust_pickle=trust_pickle, trusted_keys=trusted_keys,
                         comment=comment, progress=ctx.progress)
    warnings = list(((info.card or {}).get("bundle") or {}).get("warnings") or [])
    for w in warnings:
        ctx.log(f"warning: {w}")
    return {"ref": info.ref, "version": info.to_json(), "warnings": warnings}


def export_bundle_spec(ref: str, path: str | os.PathLike[str], *, signing_key: str | os.PathLike[str] | None = None,
                       include_rows: bool = False, force: bool = False) -> JobSpec:
    return JobSpec.for_kind("bundle.export", f"Export {ref} as a bundle",
                            {"ref": ref, "path": str(path),
                             "signing_key": str(signing_key) if signing_key is not None else None,
                             "include_rows": bool(include_rows), "force": bool(force)})


def import_bundle_spec(path: str | os.PathLike[str], *, name: str | None = None, trust_pickle: bool = False,
                       trusted_keys: list[str] | None = None, comment: str | None = None) -> JobSpec:
    return JobSpec.for_kind("bundle.import", f"Import {os.path.basename(str(path))}",
                            {"path": str(path), "name": name, "trust_pickle": bool(trust_pickle),
                             "trusted_keys": [str(k) for k in trusted_keys or []] or None, "comment": comment})
