"""Bundles: export, inspect and import of .mybundle files between two stores; every tampering is
refused with a named reason and writes nothing; signing; unpickle-only models; the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import stat
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from backends import backend_params, module_db_url, module_store
from cli_helpers import cli, cli_json
from factories import iris_table, read_members, remanifest, write_zip
from modelyard.core import bundles
from modelyard.core.bundles import format as bformat
from modelyard.core.bundles.signing import sign_manifest
from modelyard.core.common.errors import ModelyardError, NotFoundError
from modelyard.core.datasets.service import import_frame
from modelyard.core.experiments import tracking
from modelyard.core.experiments.training.spec import TrainSpec, train_spec_job
from modelyard.core.jobs.runner import JobSpec, run_job
from modelyard.core.registry import versions as registry
from modelyard.core.registry.reference import load_reference_data, reference_for_version
from modelyard.core.store import Store
from modelyard.core.store import models as m
from sqlalchemy import func, select


def double(X: Any) -> Any:
    """A module-level function in a custom pipeline step: skops does not trust it (unpickle-only)."""
    return np.asarray(X, dtype=float) * 2.0


DOUBLE = f"{double.__module__}.double"  # how skops names it


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", params=backend_params())
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A source store with a Modelyard-trained iris model (iris@champion) and a script-logged
    model with a custom function (custom@v1, no dataset), and a bundle of iris@champion, on each
    backend (the tests' own ``store``, the target, is on the same backend)."""
    root = tmp_path_factory.mktemp("bundles")
    with pytest.MonkeyPatch.context() as mp, module_store(request, root / "source") as store:
        mp.setenv("MODELYARD_USER", "tester")  # module fixtures run before the per-test environment
        yield from _lab(store, root)


def _lab(store: Store, root: Path) -> Iterator[dict[str, Any]]:
    import_frame(store, iris_table(), "iris", target="species")
    spec = train_spec_job(TrainSpec(dataset="iris@v1", model="logistic_regression", curves=False))
    outcome = run_job(store, JobSpec(spec.func, spec.title, spec.params, process=False, kind=spec.kind))
    assert outcome.status == "succeeded", outcome.error
    iris = registry.register(store, outcome.result["run_id"], "iris")
    registry.set_alias(store, "iris@v1", "champion", comment="first")

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    X = np.array([[i, i % 3] for i in range(20)], dtype=float)
    y = np.array([0] * 10 + [1] * 10)
    with tracking.start_run("custom", store=store) as run:
        run.log_metric("accuracy", 0.9)
        run.log_model(Pipeline([("double", FunctionTransformer(double)), ("lr", LogisticRegression())]).fit(X, y),
                      input_example=X[:3])
    custom = registry.register(store, run.id, "custom")

    features = [c["name"] for c in iris.signature["inputs"]]
    data = load_reference_data(store, iris.id, columns=features)
    assert data is not None
    info = bundles.export_bundle(store, "iris@champion", root / "iris")
    yield {"store": store, "root": root, "iris": iris, "custom": custom, "custom_X": X, "bundle": info,
           "X": data.frame[features], "n_train": len(data.frame)}


def source_args(lab: dict[str, Any]) -> list[str]:
    """The CLI's options naming the lab's source store (its folder; on PostgreSQL its database too:
    ``MODELYARD_DB_URL`` names the test's own)."""
    url = module_db_url(lab["store"])
    return ["--store", str(lab["store"].root), *(["--db-url", url] if url else [])]


# --------------------------------------------------------------------------- helpers


def tampered(lab: dict[str, Any], tmp_path: Path, name: str,
             change: Callable[[dict[str, bytes]], list[tuple[str | zipfile.ZipInfo, bytes]] | dict[str, bytes]]) -> Path:
    items = read_members(Path(lab["bundle"].path))
    out = change(items)
    pairs = list(out.items()) if isinstance(out, dict) else out
    return write_zip(tmp_path / f"{name}.mybundle", pairs)


def flip_byte(data: bytes, at: int | None = None) -> bytes:
    i = len(data) // 2 if at is None else at
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]


def assert_untouched(store: Store) -> None:
    """No model, version, artifact, edge or audit row, no artifact file and no temp file."""
    with store.session() as s:
        for model in (m.RegisteredModel, m.ModelVersion, m.Artifact, m.LineageEdge, m.AuditEvent):
            assert s.scalar(select(func.count()).select_from(model)) == 0, model.__name__
    assert [p for p in (store.root / "artifacts").rglob("*") if p.is_file()] == []
    assert [p for p in (store.root / "tmp").rglob("*") if p.is_file()] == []


def edges(store: Store, relation: str) -> list[m.LineageEdge]:
    with store.session() as s:
        return list(s.scalars(select(m.LineageEdge).where(m.LineageEdge.relation == relation)))


# --------------------------------------------------------------------------- round trip


def test_round_trip_keeps_predictions_lineage_metrics_and_profile(lab: dict[str, Any], store: Store) -> None:
    src, info, iris = lab["store"], lab["bundle"], lab["iris"]
    assert info.ref == "iris@v1" and info.safe_load and info.unsafe_types == [] and info.has_profile and info.mlflow
    assert Path(info.path).name == "iris.mybundle" and Path(info.path).stat().st_size == info.size
    assert [p.name for p in Path(info.path).parent.iterdir() if p.name.startswith(".iris")] == []  # no temp left

    version = bundles.import_bundle(store, info.path, comment="from the lab")
    assert version.ref == "iris@v1" and version.source == "bundle"
    # predictions identical on every training row (with gaps, categories, dates and flags)
    X = lab["X"]
    expected = registry.load_model(src, "iris@champion").predict(X)
    got = registry.load_model(store, "iris@v1").predict(X)
    assert list(got) == list(expected) and len(got) == lab["n_train"]
    # metrics, signature and lineage intact
    assert version.metrics == iris.metrics and version.metrics["accuracy"] > 0.5
    assert version.signature == iris.signature
    assert version.run_id == iris.run_id and version.card["experiment"] == "iris"
    assert version.card["spec"]["model"] == "logistic_regression"
    bundle = version.card["bundle"]
    assert bundle["source"]["ref"] == "iris@v1" and bundle["sha256"] == info.sha256
    assert bundle["lineage"]["dataset_version_id"] == iris.dataset_version_id
    assert bundle["loaded_from"] == "skops" and bundle["signature"] == "unsigned"
    assert any("not signed" in w for w in bundle["warnings"])
    assert version.card["data"]["content_hash"] and version.card["params"]["model"] == "logistic_regression"
    # the reference profile travels and is what drift checks read in the receiving store
    profile = reference_for_version(store, version.id)
    assert profile is not None and profile == json.loads(read_members(Path(info.path))["reference/profile.json"])
    assert set(profile["columns"]) >= {"sepal length (cm)", "region", "species"}
    assert store.artifacts.exists(version.card["reference_profile_sha256"])
    # lineage edges and audit events on both sides
    (out_edge,) = [e for e in edges(src, "exported_as") if e.dst_id == info.sha256]
    assert (out_edge.src_type, out_edge.src_id, out_edge.dst_type) == ("model_version", str(iris.id), "bundle")
    assert out_edge.details["path"] == info.path and out_edge.details["signed"] is False
    (in_edge,) = edges(store, "imported_as")
    assert (in_edge.src_type, in_edge.src_id, in_edge.dst_id) == ("bundle", info.sha256, str(version.id))
    assert in_edge.details["source_model"] == "iris" and in_edge.details["source_version"] == 1
    assert any(e["action"] == "export_bundle" and e["details"]["bundle_sha256"] == info.sha256
               for e in registry.timeline(src, "iris"))
    actions = [(e["action"], e["comment"]) for e in registry.timeline(store, "iris")]
    assert actions == [("import_bundle", "from the lab"), ("create_model", "from the lab")]


def test_manifest_records_checksums_environment_and_requirements(lab: dict[str, Any]) -> None:
    items = read_members(Path(lab["bundle"].path))
    man = json.loads(items["manifest.json"])
    assert man["format"] == "modelyard-bundle" and man["format_version"] == 1 and man["created_by"] == "tester"
    assert set(man["files"]) == set(items) - set(bformat.CONTROL_MEMBERS)
    for name, entry in man["files"].items():
        assert entry == {"sha256": hashlib.sha256(items[name]).hexdigest(), "size": len(items[name])}, name
    assert hashlib.sha256(items["manifest.json"]).hexdigest() == items["manifest.sha256"].split()[0].decode()
    import sklearn

    assert man["environment"]["packages"]["scikit-learn"] == sklearn.__version__
    assert f"scikit-learn=={sklearn.__version__}" in man["requirements"]
    assert items["requirements.txt"].decode().splitlines() == man["requirements"]
    assert man["lineage"]["run_id"] == lab["iris"].run_id and man["metrics"] == lab["iris"].metrics
    assert man["model_files"]["safe_load"] and "modelyard.core.experiments.training.preprocess.to_float" in \
        man["model_files"]["skops_untrusted_types"]
    assert man["reference_profile"]["path"] == "reference/profile.json" and "reference/rows.parquet" not in items
    assert {"MLmodel", "model/model.skops", "model/model.joblib", "card/model_card.json"} <= set(items)
    assert len(man["check"]["predictions"]) == len(man["check"]["input"]["rows"]) > 0


def test_training_rows_only_when_asked(lab: dict[str, Any], store: Store, tmp_path: Path) -> None:
    info = bundles.export_bundle(lab["store"], "iris@v1", tmp_path / "rows.mybundle", include_rows=True)
    assert info.has_rows
    items = read_members(Path(info.path))
    rows = pd.read_parquet(__import__("io").BytesIO(items["reference/rows.parquet"]))
    assert len(rows) == lab["n_train"] and set(rows.columns) == {*lab["X"].columns, "species"}
    version = bundles.import_bundle(store, info.path)
    assert store.artifacts.exists(version.card["bundle"]["reference_rows_sha256"])


def test_a_version_without_a_profile_says_why(lab: dict[str, Any], store: Store, tmp_path: Path) -> None:
    info = bundles.export_bundle(lab["store"], "custom@v1", tmp_path / "custom.mybundle")
    man = json.loads(read_members(Path(info.path))["manifest.json"])
    assert man["reference_profile"] is None and "not in this store" in man["reference_profile_note"]
    assert not info.has_profile and any("No reference profile" in n for n in info.notes)
    report = bundles.inspect_bundle(info.path)
    assert not report.has_profile and any("reference profile" in w for w in report.warnings)


def test_export_failures_write_nothing(lab: dict[str, Any], tmp_path: Path) -> None:
    src = lab["store"]
    before = len(edges(src, "exported_as"))
    with pytest.raises(bundles.BundleError) as err:
        bundles.export_bundle(src, "iris@v1", tmp_path / "missing" / "x.mybundle")
    assert err.value.reason == "output" and "does not exist" in err.value.message
    with pytest.raises(NotFoundError):
        bundles.export_bundle(src, "iris@v9", tmp_path / "x.mybundle")
    with pytest.raises(ModelyardError, match="PEM"):
        bundles.export_bundle(src, "iris@v1", tmp_path / "x.mybundle", signing_key=b"not a key")
    assert list(tmp_path.iterdir()) == [] and len(edges(src, "exported_as")) == before


# --------------------------------------------------------------------------- tampering


def _add(name: str, data: bytes = b"print('hi')\n") -> Callable[[dict[str, bytes]], list[Any]]:
    return lambda items: [*items.items(), (name, data)]


def _symlink(items: dict[str, bytes]) -> list[Any]:
    zi = zipfile.ZipInfo("model/link")
    zi.create_system = 3
    zi.external_attr = (stat.S_IFLNK | 0o777) << 16
    return [*items.items(), (zi, b"/etc/passwd")]


def _bomb(items: dict[str, bytes]) -> dict[str, bytes]:
    return remanifest({**items, "reference/zeros.bin": bytes(20 << 20)})  # listed, correct checksum


def _nested_bomb(items: dict[str, bytes]) -> dict[str, bytes]:
    """A skops file (a zip itself) whose schema.json unpacks 1000 times larger: skops would read it whole."""
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("schema.json", b" " * (20 << 20))
    return remanifest({**items, "model/model.skops": buf.getvalue()})


def _metric_edit(items: dict[str, bytes]) -> dict[str, bytes]:
    man = json.loads(items["manifest.json"])
    man["metrics"]["accuracy"] = 0.5
    return {**items, "manifest.json": bformat.manifest_bytes(man)}  # digest left as it was


TAMPERING: dict[str, tuple[Callable[[dict[str, bytes]], Any], str, str]] = {
    "model byte (skops)": (lambda it: {**it, "model/model.skops": flip_byte(it["model/model.skops"])},
                           "checksum", "model/model.skops"),
    "model byte (joblib)": (lambda it: {**it, "model/model.joblib": flip_byte(it["model/model.joblib"])},
                            "checksum", "model/model.joblib"),
    "manifest byte": (_metric_edit, "manifest", "manifest"),
    "manifest missing": (lambda it: {k: v for k, v in it.items() if k != "manifest.json"}, "manifest",
                         "manifest.json"),
    "member added": (_add("model/extra.py"), "extra_member", "model/extra.py"),
    "member missing": (lambda it: {k: v for k, v in it.items() if k != "reference/profile.json"},
                       "missing_member", "reference/profile.json"),
    "../ path": (_add("../evil.py"), "path_traversal", "../evil.py"),
    "nested ../ path": (_add("model/../../evil.py"), "path_traversal", "model/../../evil.py"),
    "absolute path": (_add("/tmp/evil.py"), "absolute_path", "/tmp/evil.py"),
    "drive letter": (_add("C:/evil.py"), "absolute_path", "C:/evil.py"),
    "backslash": (_add("model\\..\\evil.py"), "path_traversal", "evil.py"),
    "symlink": (_symlink, "link", "model/link"),
    "duplicate manifest": (lambda it: [*it.items(), ("manifest.json", it["manifest.json"])], "duplicate_member",
                           "manifest.json"),
    "zip bomb": (_bomb, "compression_ratio", "reference/zeros.bin"),
    "zip bomb inside the skops file": (_nested_bomb, "compression_ratio", "model/model.skops"),
}


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampering_is_refused_with_a_named_reason_and_writes_nothing(case: str, lab: dict[str, Any], store: Store,
                                                                    tmp_path: Path) -> None:
    change, reason, member = TAMPERING[case]
    path = tampered(lab, tmp_path, case.replace(" ", "_").replace("/", "_"), change)
    with pytest.raises(bundles.BundleError) as err:
        bundles.inspect_bundle(path)
    assert err.value.reason == reason and member in err.value.message, err.value.message
    with pytest.raises(bundles.BundleError) as err:
        bundles.import_bundle(store, path)
    assert err.value.reason == reason and member in err.value.message
    assert err.value.hint  # says what happened / what to do
    assert_untouched(store)


def test_oversized_members_are_refused_before_reading(lab: dict[str, Any], store: Store,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bformat, "MAX_MEMBER_BYTES", 100_000)
    with pytest.raises(bundles.BundleError) as err:
        bundles.import_bundle(store, lab["bundle"].path)
    assert err.value.reason == "too_large" and "model/model.skops" in err.value.message
    monkeypatch.setattr(bformat, "MAX_MEMBER_BYTES", 8 << 30)
    monkeypatch.setattr(bformat, "MAX_TOTAL_BYTES", 200_000)
    with pytest.raises(bundles.BundleError) as err:
        bundles.import_bundle(store, lab["bundle"].path)
    assert err.value.reason == "too_large"
    assert_untouched(store)


def test_not_a_zip_and_a_newer_format_are_refused(lab: dict[str, Any], store: Store, tmp_path: Path) -> None:
    junk = tmp_path / "junk.mybundle"
    junk.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(bundles.BundleError) as err:
        bundles.import_bundle(store, junk)
    assert err.value.reason == "not_a_bundle" and "junk.mybundle" in err.value.message

    def newer(items: dict[str, bytes]) -> dict[str, bytes]:
        return remanifest(items, lambda man: man.update(format_version=99))

    with pytest.raises(bundles.BundleError) as err:
        bundles.import_bundle(store, tampered(lab, tmp_path, "newer", newer))
    assert err.value.reason == "manifest" and "format 99" in err.value.message
    assert_untouched(store)


def test_a_swapped_joblib_is_never_unpickled_when_the_skops_file_is_safe(lab: dict[str, Any], store: Store,
                                                                         tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> Any:
            return (Path.touch, (marker,))

    crafted = pickle.dumps(Evil())
    path = tampered(lab, tmp_path, "swapped", lambda it: remanifest({**it, "model/model.joblib": crafted}))
    version = bundles.import_bundle(store, path)
    assert not marker.exists()
    assert version.model_sha256 != hashlib.sha256(crafted).hexdigest()
    assert version.card["bundle"]["joblib_sha256"] == hashlib.sha256(crafted).hexdigest()
    got = registry.load_model(store, version.ref).predict(lab["X"])  # the store's joblib came from skops
    assert list(got) == list(registry.load_model(lab["store"], "iris@v1").predict(lab["X"]))
    assert not marker.exists()


# --------------------------------------------------------------------------- unpickle-only models


def test_an_unpickle_only_model_is_not_loaded_without_explicit_trust(lab: dict[str, Any], store: Store,
                                                                     tmp_path: Path) -> None:
    info = bundles.export_bundle(lab["store"], "custom@v1", tmp_path / "custom.mybundle")
    assert not info.safe_load and info.unsafe_types == [DOUBLE]
    report = bundles.inspect_bundle(info.path)
    assert not report.safe_load and report.unsafe_types == [DOUBLE]
    assert any("unpickling" in w for w in report.warnings)
    with pytest.raises(bundles.BundleError) as err:
        bundles.import_bundle(store, info.path)
    assert err.value.reason == "untrusted_pickle" and DOUBLE in err.value.message
    assert "--trust-pickle" in (err.value.hint or "")
    assert_untouched(store)

    version = bundles.import_bundle(store, info.path, trust_pickle=True)
    assert version.card["bundle"]["loaded_from"] == "joblib" and version.card["bundle"]["trusted_pickle"]
    X = lab["custom_X"]
    assert list(registry.load_model(store, version.ref).predict(X)) == \
        list(registry.load_model(lab["store"], "custom@v1").predict(X))
    assert version.metrics == {"accuracy": 0.9}


def test_the_allow_list_trusts_library_classes_not_arbitrary_callables() -> None:
    from modelyard.core.registry import safety

    assert safety.is_allowed("sklearn.tree._tree.Tree")
    assert safety.is_allowed("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor")
    assert safety.is_allowed("numpy.dtype") and safety.is_allowed("numpy.log1p")
    assert safety.is_allowed("modelyard.core.experiments.training.preprocess.to_float")
    assert safety.is_allowed("sklearn.feature_selection._univariate_selection.f_classif")
    for bad in ("builtins.eval", "os.system", "sklearn.datasets.dump_svmlight_file", "numpy.save", "numpy.memmap",
                "sklearn.utils._testing.assert_array_equal", DOUBLE, "functools.partial",
                "sklearn.does.not.Exist", "subprocess.Popen", "modelyard.core.store.Store"):
        assert not safety.is_allowed(bad), bad


# --------------------------------------------------------------------------- duplicates and names


def test_importing_the_same_model_twice_is_refused_naming_the_version(lab: dict[str, Any], store: Store,
                                                                     tmp_path: Path) -> None:
    path = lab["bundle"].path
    first = bundles.import_bundle(store, path)
    with pytest.raises(bundles.BundleError) as err:
        bundles.import_bundle(store, path, name="other")
    assert err.value.reason == "already_imported" and err.value.existing == "iris@v1"
    assert "already in this store as iris@v1" in err.value.message
    # another export of the same version is the same model
    again = bundles.export_bundle(lab["store"], "iris@v1", tmp_path / "again.mybundle")
    assert again.sha256 != lab["bundle"].sha256
    with pytest.raises(bundles.BundleError, match="as iris@v1"):
        bundles.import_bundle(store, again.path)
    # a bundle of the receiving store's copy, sent back to the source store, is recognised there
    back = bundles.export_bundle(store, first.ref, tmp_path / "back.mybundle")
    with pytest.raises(bundles.BundleError) as err:
        bundles.import_bundle(lab["store"], back.path)
    assert err.value.reason == "already_imported" and err.value.existing == "iris@v1"
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(m.ModelVersion)) == 1


def test_import_under_another_name_as_the_next_version(lab: dict[str, Any], store: Store) -> None:
    # the receiving store already has a model of that name: the bundle becomes its next version
    with store.write() as s:
        s.add(m.RegisteredModel(name="flowers"))
    version = bundles.import_bundle(store, lab["bundle"].path, name="flowers")
    assert version.ref == "flowers@v1"
    with pytest.raises(ModelyardError, match="cannot contain '@'"):
        bundles.import_bundle(store, lab["bundle"].path, name="a@b")


# --------------------------------------------------------------------------- versions


def test_python_and_scikit_learn_mismatches_are_visible_warnings(lab: dict[str, Any], store: Store,
                                                                 tmp_path: Path) -> None:
    def old_env(man: dict[str, Any]) -> None:
        man["environment"]["python"] = "3.8.10"
        man["environment"]["packages"]["scikit-learn"] = "1.0.2"

    path = tampered(lab, tmp_path, "old", lambda it: remanifest(it, old_env))
    report = bundles.inspect_bundle(path)
    assert any("Python 3.8.10" in w for w in report.warnings)
    assert any("scikit-learn 1.0.2" in w and "scikit-learn==1.0.2" in w for w in report.warnings)
    version = bundles.import_bundle(store, path)
    assert any("scikit-learn 1.0.2" in w for w in version.card["bundle"]["warnings"])
    (event,) = [e for e in registry.timeline(store, "iris") if e["action"] == "import_bundle"]
    assert any("Python 3.8.10" in w for w in event["details"]["warnings"])


def test_changed_predictions_on_the_example_rows_are_a_warning(lab: dict[str, Any], store: Store,
                                                              tmp_path: Path) -> None:
    def other_predictions(man: dict[str, Any]) -> None:
        man["check"]["predictions"] = ["virginica"] * len(man["check"]["predictions"])

    version = bundles.import_bundle(store, tampered(lab, tmp_path, "preds", lambda it: remanifest(it, other_predictions)))
    assert any("predictions on the bundle's example rows differ" in w for w in version.card["bundle"]["warnings"])


# --------------------------------------------------------------------------- signing


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from modelyard.core.bundles.signing import load_private_key

    root = tmp_path_factory.mktemp("keys")
    team = bundles.generate_key(root / "team.key", root / "team.pub")
    other = bundles.generate_key(root / "other.key", root / "other.pub")
    return {"root": root, "team": team, "other": other, "team_key": load_private_key(root / "team.key"),
            "other_key": load_private_key(root / "other.key")}


def trust(store: Store, pub: Path) -> None:
    folder = bundles.store_trusted_dir(store.root)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / pub.name).write_bytes(pub.read_bytes())


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(keys: dict[str, Any]) -> None:
    root = keys["root"]
    assert stat.S_IMODE((root / "team.key").stat().st_mode) == 0o600
    assert b"PUBLIC KEY" in (root / "team.pub").read_bytes() and len(keys["team"]["key_id"]) == 16
    with pytest.raises(ModelyardError, match="already exists"):
        bundles.generate_key(root / "team.key", root / "new.pub")
    assert not (root / "new.pub").exists()


def test_a_signed_bundle_is_verified_and_its_signer_recorded(lab: dict[str, Any], keys: dict[str, Any],
                                                             store: Store, tmp_path: Path) -> None:
    info = bundles.export_bundle(lab["store"], "iris@v1", tmp_path / "signed", signing_key=keys["root"] / "team.key")
    assert info.signed and info.key_id == keys["team"]["key_id"]
    assert "manifest.sig" in read_members(Path(info.path))
    report = bundles.inspect_bundle(info.path, trusted_keys=[keys["root"] / "team.pub"])
    assert report.signature == {"status": "verified", "key_id": info.key_id, "signer": f"team ({info.key_id})"}
    trust(store, keys["root"] / "team.pub")
    version = bundles.import_bundle(store, info.path)
    assert version.card["bundle"]["signer"] == f"team ({info.key_id})"
    assert edges(store, "imported_as")[0].details["signer"] == f"team ({info.key_id})"
    assert not any("signed" in w for w in version.card["bundle"]["warnings"])
    (edge,) = [e for e in edges(lab["store"], "exported_as") if e.dst_id == info.sha256]
    assert edge.details["signed"] is True


def test_wrong_signatures_are_refused(lab: dict[str, Any], keys: dict[str, Any], store: Store,
                                      tmp_path: Path) -> None:
    trust(store, keys["root"] / "team.pub")
    # signed by a key this store does not trust
    by_other = bundles.export_bundle(lab["store"], "iris@v1", tmp_path / "other",
                                     signing_key=keys["root"] / "other.key")
    with pytest.raises(bundles.BundleError) as err:
        bundles.import_bundle(store, by_other.path)
    assert err.value.reason == "signature" and by_other.key_id in err.value.message
    assert "does not trust" in err.value.message and str(bundles.store_trusted_dir(store.root)) in err.value.hint
    # a signed manifest changed afterwards (checksums and digest made consistent again)
    signed = bundles.export_bundle(lab["store"], "iris@v1", tmp_path / "team", signing_key=keys["root"] / "team.key")
    items = read_members(Path(signed.path))
    sig = items["manifest.sig"]
    forged = remanifest(items, lambda man: man["metrics"].update(accuracy=0.5))
    forged["manifest.sig"] = sig
    path = write_zip(tmp_path / "forged.mybundle", list(forged.items()))
    with pytest.raises(bundles.BundleError) as err:
        bundles.import_bundle(store, path)
    assert err.value.reason == "signature" and "manifest.sig" in (err.value.member or "")
    assert "does not verify" in err.value.message
    # a signature that claims the team's key id but was made with another key
    doc = json.loads(sig)
    doc["signature"] = json.loads(sign_manifest(items["manifest.json"], keys["other_key"]))["signature"]
    path = write_zip(tmp_path / "claimed.mybundle", list({**items, "manifest.sig": json.dumps(doc).encode()}.items()))
    with pytest.raises(bundles.BundleError) as err:
        bundles.inspect_bundle(path)
    assert err.value.reason == "signature"
    # unsigned, into a store that trusts keys
    with pytest.raises(bundles.BundleError) as err:
        bundles.import_bundle(store, lab["bundle"].path)
    assert err.value.reason == "unsigned" and "not signed" in err.value.message
    assert_untouched(store)


def test_a_signature_by_an_unknown_key_is_only_a_warning_where_no_key_is_trusted(
        lab: dict[str, Any], keys: dict[str, Any], store: Store, tmp_path: Path) -> None:
    info = bundles.export_bundle(lab["store"], "iris@v1", tmp_path / "other", signing_key=keys["root"] / "other.key")
    version = bundles.import_bundle(store, info.path)
    assert version.card["bundle"]["signature"] == "unknown_key" and version.card["bundle"]["signer"] is None
    assert any(info.key_id in w and "not among the trusted keys" in w for w in version.card["bundle"]["warnings"])


# --------------------------------------------------------------------------- jobs and the CLI


@pytest.mark.slow  # several bundle exports and imports (skops files written and checked): 5-70 s a backend, by load
def test_jobs_export_and_import_in_the_background(lab: dict[str, Any], store: Store, tmp_path: Path) -> None:
    out = run_job(lab["store"], bundles.export_bundle_spec("iris@champion", tmp_path / "job.mybundle"))
    assert out.status == "succeeded", out.error
    assert out.result["path"] == str(tmp_path / "job.mybundle") and out.result["safe_load"]
    out = run_job(store, bundles.import_bundle_spec(out.result["path"], comment="job"))
    assert out.status == "succeeded" and out.result["ref"] == "iris@v1" and out.result["warnings"]
    out = run_job(store, bundles.import_bundle_spec(tmp_path / "job.mybundle"))
    assert out.status == "failed" and "already in this store as iris@v1" in out.error


class CancelAt:
    """A reporter that asks the job to stop when a progress message starts with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self.event = prefix, threading.Event()

    def progress(self, fraction: float | None, message: str) -> None:
        if message.startswith(self.prefix):
            self.event.set()

    def log(self, line: str) -> None:
        pass


@pytest.mark.slow  # several bundle exports and imports (skops files written and checked): 5-70 s a backend, by load
def test_cancelled_jobs_leave_no_file_and_no_record(lab: dict[str, Any], store: Store, tmp_path: Path) -> None:
    before = len(edges(lab["store"], "exported_as"))
    rec = CancelAt("Writing x.mybundle")  # noticed at the next step, once the zip is under its temporary name
    (tmp_path / "out").mkdir()
    out = run_job(lab["store"], bundles.export_bundle_spec("iris@v1", tmp_path / "out" / "x.mybundle"), reporter=rec,
                  cancel_event=rec.event)
    assert out.status == "cancelled" and list((tmp_path / "out").iterdir()) == []
    assert len(edges(lab["store"], "exported_as")) == before
    rec = CancelAt("Loading the model")  # noticed once the model is loaded from the store's temp folder
    out = run_job(store, bundles.import_bundle_spec(lab["bundle"].path), reporter=rec, cancel_event=rec.event)
    assert out.status == "cancelled"
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(m.ModelVersion)) == 0
        assert s.scalar(select(func.count()).select_from(m.Artifact)) == 0
    assert [p for p in (store.root / "artifacts").rglob("*") if p.is_file()] == []
    assert [p for p in (store.root / "tmp").rglob("*") if p.is_file()] == []


@pytest.mark.slow  # several bundle exports and imports (skops files written and checked): 5-70 s a backend, by load
def test_cli_export_inspect_import_and_keygen(lab: dict[str, Any], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    src = source_args(lab)
    dst = str(tmp_path / "dst")
    assert cli(capsys, "store", "init", "--store", dst)[0] == 0
    target = tmp_path / "cli"
    code, data, _ = cli_json(capsys, "bundle", "export", "iris@champion", "-o", str(target), *src)
    assert code == 0 and data["status"] == "succeeded" and data["result"]["path"] == str(target) + ".mybundle"
    path = data["result"]["path"]
    code, data, _ = cli_json(capsys, "bundle", "inspect", path, "--store", dst)
    assert code == 0 and data["safe_load"] and data["ref"] == "iris@v1" and data["signature"]["status"] == "unsigned"
    code, out, err = cli(capsys, "bundle", "inspect", path, "--store", dst)
    assert code == 0 and "iris@v1" in out and "loads safely" in out and "warning: The bundle is not signed" in err
    code, out, err = cli(capsys, "bundle", "import", path, "--store", dst, "--comment", "cli")
    assert code == 0 and "Imported iris@v1" in out and "as iris@v1" in out and "not signed" in err
    code, data, err = cli_json(capsys, "bundle", "import", path, "--store", dst)
    assert code == 1 and "already in this store as iris@v1" in data["error"]["message"]
    # a tampered file: exit 1, the member named
    bad = tampered(lab, tmp_path, "cli_bad", lambda it: {**it, "model/model.skops": flip_byte(it["model/model.skops"])})
    code, out, err = cli(capsys, "bundle", "import", str(bad), "--store", dst)
    assert code == 1 and "model/model.skops" in err and "checksum" in err
    code, out, err = cli(capsys, "bundle", "inspect", str(bad), "--store", dst)
    assert code == 1 and "model/model.skops" in err
    # keys: a store that trusts a key refuses unsigned bundles; a signed one goes in
    priv, pub = tmp_path / "cli.key", tmp_path / "cli.pub"
    code, data, _ = cli_json(capsys, "bundle", "keygen", str(priv), str(pub), "--trust", "--store", dst)
    assert code == 0 and Path(data["trusted_copy"]).is_file() and os.path.exists(priv)
    code, out, err = cli(capsys, "bundle", "import", path, "--store", dst, "--name", "again")
    assert code == 1 and "not signed" in err
    signed = tmp_path / "signed.mybundle"
    code, _, _ = cli(capsys, "bundle", "export", "custom@v1", "-o", str(signed), "--sign", str(priv), *src)
    assert code == 0
    code, out, err = cli(capsys, "bundle", "import", str(signed), "--store", dst)
    assert code == 1 and "--trust-pickle" in err
    code, data, _ = cli_json(capsys, "bundle", "import", str(signed), "--store", dst, "--trust-pickle")
    assert code == 0 and data["result"]["ref"] == "custom@v1"
    assert data["result"]["version"]["card"]["bundle"]["signer"].startswith("cli (")


# --------------------------------------------------------------------------- what is loaded must predict


class _Stubborn:
    """Has a predict method, but it cannot score anything."""

    def predict(self, X: Any) -> Any:
        raise RuntimeError("no")


@pytest.mark.parametrize(("planted", "said"), [(42, "int"), ({"weights": [1, 2]}, "dict"),
                                               (_Stubborn(), "cannot predict")])
def test_trust_pickle_refuses_an_object_that_does_not_predict(lab: dict[str, Any], store: Store, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str], planted: Any,
                                                              said: str) -> None:
    import io

    import joblib

    info = bundles.export_bundle(lab["store"], "custom@v1", tmp_path / "custom.mybundle")
    buf = io.BytesIO()
    joblib.dump(planted, buf)
    path = tampered(lab | {"bundle": info}, tmp_path, "not-a-model",
                    lambda it: remanifest({**it, "model/model.joblib": buf.getvalue()}))
    with pytest.raises(bundles.BundleError) as err:
        bundles.import_bundle(store, path, trust_pickle=True)
    assert err.value.reason == "not_a_model" and said in err.value.message and "\n" not in err.value.message
    assert_untouched(store)
    code, _, err_text = cli(capsys, "bundle", "import", str(path), "--trust-pickle", "--store", str(store.root))
    assert code == 1 and said in err_text and "Traceback" not in err_text
    assert_untouched(store)


def test_a_safe_skops_file_that_holds_no_model_is_refused(lab: dict[str, Any], store: Store, tmp_path: Path) -> None:
    import skops.io as sio

    data = sio.dumps(np.arange(4.0))
    path = tampered(lab, tmp_path, "array", lambda it: remanifest({**it, "model/model.skops": data}))
    assert bundles.inspect_bundle(path).safe_load
    with pytest.raises(bundles.BundleError) as err:
        bundles.import_bundle(store, path)
    assert err.value.reason == "not_a_model" and "ndarray" in err.value.message
    assert_untouched(store)


# --------------------------------------------------------------------------- overwriting on export


@pytest.mark.slow  # several bundle exports and imports (skops files written and checked): 5-70 s a backend, by load
def test_export_refuses_to_overwrite_a_file_unless_forced(lab: dict[str, Any], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    src = lab["store"]
    target = tmp_path / "keep.mybundle"
    target.write_bytes(b"precious")
    before = len(edges(src, "exported_as"))
    with pytest.raises(bundles.BundleError) as err:
        bundles.export_bundle(src, "iris@v1", target)
    assert err.value.reason == "output" and str(target) in err.value.message and "--force" in (err.value.hint or "")
    assert target.read_bytes() == b"precious" and len(edges(src, "exported_as")) == before
    code, _, err_text = cli(capsys, "bundle", "export", "iris@v1", "-o", str(tmp_path / "keep"), *source_args(lab))
    assert code == 1 and "already exists" in err_text and "--force" in err_text and "Traceback" not in err_text
    assert target.read_bytes() == b"precious" and sorted(p.name for p in tmp_path.iterdir()) == ["keep.mybundle"]
    code, _, err_text = cli(capsys, "bundle", "export", "iris@v1", "-o", str(target), "--force", *source_args(lab))
    assert code == 0, err_text
    assert bundles.inspect_bundle(target).ref == "iris@v1"
    info = bundles.export_bundle(src, "iris@v1", target, force=True)
    assert info.path == str(target) and bformat.hash_file(target)[0] == info.sha256


def test_an_imported_version_loads_from_its_checked_skops_file_without_unpickling(lab: dict[str, Any], store: Store,
                                                                                  tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> Any:
            return (Path.touch, (marker,))

    version = bundles.import_bundle(store, lab["bundle"].path)
    skops_sha = version.card["bundle"]["skops_sha256"]
    assert version.card["bundle"]["loaded_from"] == "skops" and skops_sha
    expected = list(registry.load_model(lab["store"], "iris@v1").predict(lab["X"]))
    # the joblib copy is not even read: a crafted pickle there is never unpickled...
    store.artifacts.path(version.model_sha256).write_bytes(pickle.dumps(Evil()))
    assert list(registry.load_model(store, version.ref).predict(lab["X"])) == expected
    assert not marker.exists()
    # ...and the bundle export, which ships the joblib bytes, refuses them
    with pytest.raises(ModelyardError, match="does not match its recorded sha256"):
        bundles.export_bundle(store, version.ref, tmp_path / "again.mybundle")
    assert not marker.exists() and not (tmp_path / "again.mybundle").exists()
    # a changed skops file is refused too (not loaded, and no fall back to the joblib file)
    skops_file = store.artifacts.path(skops_sha)
    skops_file.write_bytes(flip_byte(skops_file.read_bytes()))
    with pytest.raises(ModelyardError, match=f"iris@v1 \\(artifact {skops_sha[:12]}"):
        registry.load_model(store, version.ref)
    assert not marker.exists()


def test_without_example_rows_the_model_must_predict_on_the_bundles_training_rows(lab: dict[str, Any], store: Store,
                                                                                 tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    info = bundles.export_bundle(lab["store"], "iris@v1", tmp_path / "rows.mybundle", include_rows=True)

    def unfitted_without_check(items: dict[str, bytes]) -> dict[str, bytes]:
        def drop_check(man: dict[str, Any]) -> None:
            man["check"] = None

        return remanifest({**items, "model/model.skops": sio.dumps(LogisticRegression())}, drop_check)

    path = tampered(lab | {"bundle": info}, tmp_path, "unfitted", unfitted_without_check)
    with pytest.raises(bundles.BundleError) as err:
        bundles.import_bundle(store, path)
    assert err.value.reason == "not_a_model" and "reference rows" in err.value.message
    assert "NotFittedError" in err.value.message
    assert_untouched(store)
