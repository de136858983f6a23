"""``modelyard bundle export | import | inspect | keygen``: move model versions between stores as files."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any

from modelyard.cli._common import (
    UsageError,
    add_command,
    add_noun,
    eprint,
    fmt_bytes,
    is_verbose,
    open_store,
    outcome_json,
    print_json,
    print_kv,
    raise_for_outcome,
    run_foreground,
    store_location,
    wants_json,
)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    verbs = add_noun(subparsers, "bundle", common, help="export, check and import model bundles (.mybundle)",
                     description="Bundles: one .mybundle file holding a model version (skops and joblib), its "
                                 "manifest with checksums, signature, metrics, lineage and requirements, a "
                                 "reference profile for drift checks, the model card, and an MLflow MLmodel. "
                                 "Signed with a team key when asked; checked completely before import.")
    p = add_command(verbs, "export", common, _export, help="write a model version as a .mybundle file",
                    epilog="examples:\n  modelyard bundle export churn@champion -o churn.mybundle\n"
                           "  modelyard bundle export churn@v3 -o churn-v3.mybundle --sign team.key")
    p.add_argument("ref", metavar="NAME@vN", help="the version: NAME@vN, NAME@ALIAS or NAME (the latest)")
    p.add_argument("-o", "--output", metavar="FILE", required=True,
                   help="the bundle file to write (.mybundle is added when the name has no extension)")
    p.add_argument("--sign", metavar="KEYFILE", help="sign with this Ed25519 private key (PEM)")
    p.add_argument("--include-rows", action="store_true",
                   help="also ship the training rows (by default only per-feature bins and frequencies)")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists (refused without)")

    p = add_command(verbs, "import", common, _import, help="check a bundle and add it as a model version",
                    epilog="examples:\n  modelyard bundle import churn.mybundle\n"
                           "  modelyard bundle import churn.mybundle --name churn-eu --trusted-key alice.pub\n\n"
                           "Refused, with the reason, and nothing written: a changed, added or missing member, a "
                           "'..' or absolute path, a link, a zip bomb, a bad signature, a model that can only be "
                           "unpickled (unless --trust-pickle), or a model this store already holds.")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--name", help="register it under this model name (default: the bundle's)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow a model that can only be unpickled (this can run any code: trust the source)")
    p.add_argument("--trusted-key", action="append", default=[], metavar="PUB", dest="trusted_keys",
                   help="a trusted public key, besides the store's keys/trusted/*.pub (repeat for several)")
    p.add_argument("--comment", help="a comment for the audit log")

    p = add_command(verbs, "inspect", common, _inspect, help="check a bundle and show what is in it (writes nothing)",
                    epilog="example:\n  modelyard bundle inspect churn.mybundle --json")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--trusted-key", action="append", default=[], metavar="PUB", dest="trusted_keys",
                   help="a trusted public key, besides the store's keys/trusted/*.pub (repeat for several)")

    p = add_command(verbs, "keygen", common, _keygen, help="make a team signing key pair (Ed25519)",
                    epilog="example:\n  modelyard bundle keygen team.key team.pub --trust\n\n"
                           "Keep PRIVATE secret and sign with it (export --sign). Receivers put PUBLIC in "
                           "<store>/keys/trusted/; a store with trusted keys imports only bundles they signed.")
    p.add_argument("private", metavar="PRIVATE")
    p.add_argument("public", metavar="PUBLIC")
    p.add_argument("--trust", action="store_true",
                   help="also copy PUBLIC into this store's keys/trusted/ folder")


def _abs(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def _export(args: argparse.Namespace) -> int:
    from modelyard.core import bundles
    from modelyard.core.common.outputs import check_output_folder

    if Path(_abs(args.output)).is_dir():
        raise UsageError(f"-o {args.output} is a folder; give the bundle a file name.",
                         hint=f"e.g. -o {Path(args.output) / 'model.mybundle'}")
    target = check_output_folder(bundles.target_path(_abs(args.output)))  # before the export's long work
    sign = _abs(args.sign) if args.sign else None
    with open_store(args) as store:
        outcome = run_foreground(store, bundles.export_bundle_spec(args.ref, target, signing_key=sign,
                                                                   include_rows=args.include_rows,
                                                                   force=args.force),
                                 wants_json(args), verbose=is_verbose(args))
    raise_for_outcome(outcome)
    result = outcome.result or {}
    if wants_json(args):
        print_json(outcome_json(outcome))
        return 0
    signed = f", signed with key {result['key_id']}" if result.get("signed") else ""
    print(f"Exported {result['ref']} to {result['path']} ({fmt_bytes(result['size'])}, sha256 "
          f"{result['sha256'][:12]}{signed}). (job {outcome.job_id})")
    for note in result.get("notes") or []:
        eprint(f"note: {note}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from modelyard.core import bundles

    path = _abs(args.file)
    keys = [_abs(k) for k in args.trusted_keys]
    with open_store(args) as store:
        outcome = run_foreground(store, bundles.import_bundle_spec(path, name=args.name, trust_pickle=args.trust_pickle,
                                                                   trusted_keys=keys, comment=args.comment),
                                 wants_json(args), verbose=is_verbose(args))
    raise_for_outcome(outcome)
    result = outcome.result or {}
    if wants_json(args):
        print_json(outcome_json(outcome))
        return 0
    bundle = ((result.get("version") or {}).get("card") or {}).get("bundle") or {}
    source = (bundle.get("source") or {}).get("ref")
    signer = f", signed by {bundle['signer']}" if bundle.get("signer") else ""
    print(f"Imported {source} from {Path(path).name} as {result['ref']}{signer}. (job {outcome.job_id})")
    for w in result.get("warnings") or []:
        eprint(f"warning: {w}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from modelyard.core import bundles

    report = bundles.inspect_bundle(_abs(args.file), trusted_keys=[_abs(k) for k in args.trusted_keys],
                                    store=store_location(args))
    if wants_json(args):
        print_json(report.to_json())
        return 0
    sig = report.signature
    signature = {"verified": f"verified: {sig.get('signer')}",
                 "unknown_key": f"signed with key {sig.get('key_id')} (not a trusted key)",
                 "unsigned": "not signed"}.get(sig.get("status"), str(sig.get("status")))
    safe = ("yes (skops, no unpickling)" if report.safe_load else
            "no: only by unpickling (" + (", ".join(report.unsafe_types) or report.skops_error or "no skops file")
            + "); import needs --trust-pickle")
    env = (report.manifest.get("environment") or {})
    packages = env.get("packages") or {}
    print(f"{report.path}: checked, every member matches its checksum.")
    print_kv([("model", report.ref), ("created", report.created_at or ""),
              ("created by", report.created_by or ""), ("made with", report.created_with or ""),
              ("python", env.get("python") or ""), ("scikit-learn", packages.get("scikit-learn") or ""),
              ("signature", signature), ("loads safely", safe),
              ("reference profile", "yes" if report.has_profile else "no"),
              ("training rows", "yes" if report.has_rows else "no"),
              ("MLflow", "yes (unzip, then mlflow.pyfunc.load_model)" if report.has_mlflow else "no"),
              ("files", f"{len(report.files)} ({fmt_bytes(report.size)})"), ("sha256", report.sha256)])
    if report.metrics:
        print("metrics:")
        print_kv({k: f"{v:.4g}" if isinstance(v, int | float) else str(v) for k, v in report.metrics.items()},
                 indent=2)
    for w in report.warnings:
        eprint(f"warning: {w}")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from modelyard.core import bundles

    if args.trust:
        with open_store(args) as store:
            folder = bundles.store_trusted_dir(store.root)
        dest = folder / (Path(args.public).stem + ".pub")
        if dest.exists():
            raise UsageError(f"{dest} already exists.", hint="Name the public key file differently.")
    result = bundles.generate_key(_abs(args.private), _abs(args.public))
    if args.trust:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result["public"], dest)
        result["trusted_copy"] = str(dest)
    if wants_json(args):
        print_json(result)
        return 0
    print(f"Key {result['key_id']}: private key {result['private']} (keep it secret), public key {result['public']}.")
    if args.trust:
        print(f"This store now trusts it ({dest}); it imports only bundles signed by its trusted keys.")
    else:
        print("Receivers trust it by copying the public key into <store>/keys/trusted/.")
    return 0
