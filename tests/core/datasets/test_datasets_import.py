"""Datasets: import of every format, versions and dedup, schema edits, profile, preview, splits, delete."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from modelyard.core.common.errors import ModelyardError, NotFoundError
from modelyard.core.datasets import importing, service
from modelyard.core.datasets.schema import SchemaError
from modelyard.core.datasets.snapshot import ROW_GROUP_ROWS, content_hash
from modelyard.core.datasets.splits import SplitError, make_assignment
from modelyard.core.jobs.runner import get_job, run_job
from modelyard.core.store import Store
from modelyard.core.store import models as m
from sqlalchemy import func, select

# --------------------------------------------------------------------------- helpers


def run_import(store: Store, path: Path, **options: Any) -> dict[str, Any]:
    outcome = run_job(store, service.import_spec(path, service.ImportOptions(**options)))
    assert outcome.ok, outcome.error
    assert outcome.result is not None
    return outcome.result


def count(store: Store, model: Any) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def artifact_files(store: Store) -> list[Path]:
    return [p for p in store.artifacts.root.rglob("*") if p.is_file()]


def temp_files(store: Store) -> list[Path]:
    return [p for p in store.artifacts.tmp.rglob("*") if p.is_file()]


def audit(store: Store) -> list[tuple[str, str, str | None]]:
    with store.session() as s:
        return [(e.entity_type, e.action, e.actor) for e in s.scalars(select(m.AuditEvent).order_by(m.AuditEvent.id))]


def sample_frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({
        "age": rng.integers(18, 90, n),
        "income": np.round(rng.normal(50_000, 12_000, n), 2),
        "city": rng.choice(["Lyon", "Oslo", "Porto"], n),
        "member": rng.random(n) < 0.3,
        "joined": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), unit="D"),
        "churned": rng.choice(["yes", "no"], n),
    })


def write_csv(path: Path, df: pd.DataFrame, **kw: Any) -> Path:
    df.to_csv(path, index=False, **kw)
    return path


# --------------------------------------------------------------------------- CSV import, versions, dedup


def test_csv_import_records_version_source_schema_profile_and_audit(store: Store, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "customers.csv", sample_frame())
    result = run_import(store, src, target="churned")
    assert result["dataset"] == "customers" and result["version"] == 1 and result["created"] is True
    assert (result["n_rows"], result["n_cols"]) == (60, 6)
    assert result["ref"] == "customers@v1" and result["task"] == "classification"

    v = service.get_version(store, "customers")
    assert v.id == result["dataset_version_id"] and v.parent_id is None
    assert v.source_path == str(src.resolve()) and v.source_size == src.stat().st_size
    assert v.source_format == "csv" and v.created_by == "tester" and v.job_id is not None
    assert abs((v.source_mtime - dt.datetime.fromtimestamp(src.stat().st_mtime, dt.UTC)).total_seconds()) < 1
    types = {c["name"]: (c["type"], c["role"]) for c in v.columns}
    assert types == {"age": ("numeric", "feature"), "income": ("numeric", "feature"),
                     "city": ("categorical", "feature"), "member": ("boolean", "feature"),
                     "joined": ("datetime", "feature"), "churned": ("categorical", "target")}
    assert v.target == "churned" and v.schema["task"] == "classification"
    prof = {c["name"]: c for c in v.profile["columns"]}
    assert prof["city"]["distinct"] == 3 and sum(t["count"] for t in prof["city"]["top"]) == 60
    assert prof["income"]["histogram"] and sum(prof["income"]["histogram"]["counts"]) == 60
    assert set(prof["income"]["quantiles"]) == {"5%", "25%", "50%", "75%", "95%"}
    assert v.profile["rows"] == 60 and v.profile["duplicates"] == 0 and v.profile["memory_bytes"] > 0

    # the snapshot is an artifact, registered, and holds the data
    with store.session() as s:
        art = s.get(m.Artifact, v.snapshot_sha256)
        assert art is not None and art.media_type == service.SNAPSHOT_MEDIA_TYPE
    assert store.artifacts.exists(v.snapshot_sha256)
    assert service.load_frame(store, v.id)["city"].tolist() == sample_frame()["city"].tolist()
    assert ("dataset", "create", "tester") in audit(store)
    assert ("dataset_version", "import", "tester") in audit(store)
    assert temp_files(store) == []
    record, log = get_job(store, v.job_id)
    assert record.kind == "dataset.import" and "Reading as CSV: delimiter comma" in log


def test_same_file_twice_is_one_version(store: Store, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "data.csv", sample_frame())
    first = run_import(store, src)
    second = run_import(store, src)
    assert second["created"] is False
    assert second["dataset_version_id"] == first["dataset_version_id"] and second["version"] == 1
    assert count(store, m.DatasetVersion) == 1 and count(store, m.Artifact) == 1
    assert len(artifact_files(store)) == 1 and temp_files(store) == []


def test_same_data_from_csv_and_parquet_is_recognised(store: Store, tmp_path: Path) -> None:
    """The content hash ignores the file's name, format and row-group layout."""
    df = sample_frame(200)
    csv = write_csv(tmp_path / "a.csv", df)
    parquet = tmp_path / "b.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), parquet, row_group_size=17)
    first = run_import(store, csv, name="shared")
    second = run_import(store, parquet, name="shared")
    assert second["created"] is False and second["dataset_version_id"] == first["dataset_version_id"]
    assert first["content_hash"] == second["content_hash"]


def test_content_hash_ignores_chunking_but_not_values() -> None:
    table = pa.table({"x": [1, 2, None, 4] * 50, "s": ["a", None, "bc", ""] * 50,
                      "t": pa.array([1, None, 3, 4] * 50, pa.timestamp("s"))})
    rechunked = pa.Table.from_batches(table.to_batches(max_chunksize=7))
    assert content_hash(table) == content_hash(rechunked)
    as_int32 = table.set_column(0, "x", table.column("x").cast(pa.int32()))
    assert content_hash(as_int32) == content_hash(table)  # normalised to int64
    changed = table.set_column(1, "s", pa.array(["a", None, "bc", "x"] * 50))
    assert content_hash(changed) != content_hash(table)
    renamed = table.rename_columns(["y", "s", "t"])
    assert content_hash(renamed) != content_hash(table)


def test_changed_content_is_v2_with_parent(store: Store, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "data.csv", sample_frame())
    v1 = run_import(store, src)
    write_csv(src, sample_frame().iloc[:50])
    v2 = run_import(store, src)
    assert v2["created"] is True and v2["version"] == 2 and v2["parent_version"] == 1
    info = service.get_version(store, "data@v2")
    assert info.parent_id == v1["dataset_version_id"] and info.n_rows == 50
    assert [v.version for v in service.list_versions(store, "data")] == [1, 2]
    assert service.get_version(store, "data").version == 2  # NAME alone is the latest
    assert service.get_version(store, "data@v1").n_rows == 60
    assert service.get_version(store, "data@latest").version == 2
    # importing the first content again finds v1, it does not make v3
    write_csv(src, sample_frame())
    again = run_import(store, src)
    assert again["created"] is False and again["version"] == 1
    infos = service.list_datasets(store)
    assert [(d.name, d.n_versions, d.latest_version) for d in infos] == [("data", 2, 2)]


def test_same_content_under_a_new_name_shares_the_snapshot(store: Store, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "data.csv", sample_frame())
    a = run_import(store, src, name="first")
    b = run_import(store, src, name="second")
    assert b["created"] is True and b["dataset"] == "second" and b["version"] == 1
    va, vb = service.get_version(store, "first"), service.get_version(store, "second")
    assert va.snapshot_sha256 == vb.snapshot_sha256 and va.content_hash == vb.content_hash
    assert count(store, m.Artifact) == 1 and len(artifact_files(store)) == 1
    assert a["dataset_version_id"] != b["dataset_version_id"]


def test_same_content_with_another_target_is_a_schema_child(store: Store, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "data.csv", sample_frame())
    run_import(store, src, target="churned")
    again = run_import(store, src, target="income")
    assert again["created"] is True and again["version"] == 2 and again["task"] == "regression"
    v1, v2 = service.get_version(store, "data@v1"), service.get_version(store, "data@v2")
    assert v2.parent_id == v1.id and v2.snapshot_sha256 == v1.snapshot_sha256


def test_unknown_target_is_refused_and_nothing_is_written(store: Store, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "data.csv", sample_frame())
    outcome = run_job(store, service.import_spec(src, service.ImportOptions(target="nope")))
    assert outcome.status == "failed"
    assert "no column 'nope'" in outcome.error and "'churned'" in outcome.error
    assert count(store, m.DatasetVersion) == 0 and artifact_files(store) == [] and temp_files(store) == []


# --------------------------------------------------------------------------- formats and dialects


def test_tsv_semicolon_decimal_comma_and_cp1252_are_sniffed(store: Store, tmp_path: Path) -> None:
    tsv = tmp_path / "t.tsv"
    tsv.write_text("a\tb\n1\tx\n2\ty\n", encoding="utf-8")
    semi = tmp_path / "europe.csv"
    semi.write_bytes("ville;prix;note\nMünster;1,5;é\nLyon;2,25;à\n".encode("cp1252"))
    r = service.sniff(semi)
    assert (r.delimiter, r.encoding, r.header) == (";", "cp1252", True)
    assert any("Windows-1252" in n for n in r.notes)
    assert r.preview["ville"].tolist() == ["Münster", "Lyon"]
    assert r.preview["prix"].tolist() == [1.5, 2.25]
    assert run_import(store, tsv)["n_cols"] == 2
    res = run_import(store, semi)
    frame = service.load_frame(store, res["dataset_version_id"])
    assert frame["prix"].tolist() == [1.5, 2.25] and frame["note"].tolist() == ["é", "à"]
    _, log = get_job(store, service.get_version(store, "europe").job_id)
    assert "Windows-1252" in log


def test_headerless_csv_is_detected_and_overridable(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "raw.csv"
    src.write_text("1,2.5,a\n2,3.5,b\n3,4.5,c\n")
    r = service.sniff(src)
    assert r.header is False and r.columns == ["column_1", "column_2", "column_3"]
    res = run_import(store, src)
    assert res["n_rows"] == 3
    forced = service.sniff(src, service.ImportOptions(header=True))
    assert forced.columns == ["1", "2.5", "a"] and len(forced.preview) == 2


def test_quoted_fields_with_delimiters_quotes_and_newlines(store: Store, tmp_path: Path) -> None:
    df = pd.DataFrame({"id": [1, 2, 3], "note": ['He said "hi", then left', "line one\nline two", "a;b|c\td"]})
    src = write_csv(tmp_path / "notes.csv", df)
    res = run_import(store, src)
    assert service.load_frame(store, res["dataset_version_id"])["note"].tolist() == df["note"].tolist()


def test_parquet_json_jsonl_and_excel_imports(store: Store, tmp_path: Path) -> None:
    pytest.importorskip("openpyxl")  # a dependency of Excel import
    df = sample_frame(30)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "p.parquet")
    (tmp_path / "records.json").write_text(df.to_json(orient="records", date_format="iso"))
    (tmp_path / "cols.json").write_text(json.dumps({"a": [1, 2, 3], "b": ["x", "y", None]}))
    (tmp_path / "lines.jsonl").write_text(df.to_json(orient="records", lines=True, date_format="iso"))
    (tmp_path / "mixed.jsonl").write_text('{"a": 1, "b": {"c": 2}}\n{"a": "x", "d": [1, 2]}\n')
    with pd.ExcelWriter(tmp_path / "book.xlsx") as xw:
        pd.DataFrame({"q": [1, 2]}).to_excel(xw, sheet_name="first", index=False)
        df.to_excel(xw, sheet_name="Data 2", index=False)

    assert run_import(store, tmp_path / "p.parquet")["n_rows"] == 30
    assert run_import(store, tmp_path / "records.json")["n_rows"] == 30
    cols = run_import(store, tmp_path / "cols.json")
    assert cols["n_rows"] == 3 and cols["n_cols"] == 2
    assert run_import(store, tmp_path / "lines.jsonl")["n_cols"] == 6
    mixed = service.load_frame(store, run_import(store, tmp_path / "mixed.jsonl")["dataset_version_id"])
    assert mixed["a"].tolist() == ["1", "x"] and json.loads(mixed["b"][0]) == {"c": 2}

    sniffed = service.sniff(tmp_path / "book.xlsx")
    assert sniffed.format == "excel" and sniffed.sheets == ["first", "Data 2"] and sniffed.sheet == "first"
    assert service.sniff(tmp_path / "book.xlsx", {"sheet": "2"}).columns == list(df.columns)
    res = run_import(store, tmp_path / "book.xlsx", sheet="Data 2", name="book", target="churned")
    assert (res["n_rows"], res["n_cols"], res["task"]) == (30, 6, "classification")
    v = service.get_version(store, "book")
    assert {c["name"]: c["type"] for c in v.columns}["joined"] == "datetime"


def test_a_later_value_that_does_not_fit_widens_the_column(store: Store, tmp_path: Path) -> None:
    """Types come from the first 1 MB block; a later misfit re-reads the file with the column widened."""
    n = 200_000
    lines = ["a,b,c"] + [f"{i},,{i % 7}" for i in range(n)] + ["1.5,7,x"]
    src = tmp_path / "wide.csv"
    src.write_text("\n".join(lines) + "\n")
    res = run_import(store, src)
    assert res["n_rows"] == n + 1
    v = service.get_version(store, res["dataset_version_id"])
    assert [c["dtype"] for c in v.columns] == ["double", "int64", "string"]
    tail = service.read_rows(store, v.id, n - 1, 5)
    assert tail["a"].tolist() == [n - 1, 1.5] and tail["c"].tolist() == [str((n - 1) % 7), "x"]
    _, log = get_job(store, v.job_id)
    assert "reading the file again" in log


# --------------------------------------------------------------------------- frames, samples


def test_sample_datasets_import_without_download(store: Store) -> None:
    expected = {"iris": ("species", "classification", 150), "wine": ("cultivar", "classification", 178),
                "breast_cancer": ("diagnosis", "classification", 569),
                "diabetes": ("progression", "regression", 442)}
    for name, (target, task, rows) in expected.items():
        outcome = run_job(store, service.sample_spec(name))
        assert outcome.ok, outcome.error
        r = outcome.result
        assert (r["dataset"], r["target"], r["task"], r["n_rows"]) == (name, target, task, rows)
    iris = service.get_version(store, "iris")
    assert iris.source_format == "sklearn" and iris.source_path == "sklearn.datasets.load_iris"
    assert sorted(service.load_frame(store, "iris")["species"].unique()) == ["setosa", "versicolor", "virginica"]
    with pytest.raises(NotFoundError, match="no sample dataset 'mnist'"):
        service.sample_spec("mnist")


def test_import_frame_direct(store: Store) -> None:
    df = pd.DataFrame({"k": pd.Categorical(["a", "b", "a"]), "v": [1.0, np.nan, 3.0], "i": pd.array([1, None, 3], "Int64")})
    r = service.import_frame(store, df, "frame", source={"path": "memory"})
    assert r["created"] and r["n_rows"] == 3
    v = service.get_version(store, "frame")
    assert [c["dtype"] for c in v.columns] == ["string", "double", "int64"]
    assert v.profile["columns"][1]["missing"] == 1 and v.profile["columns"][2]["missing"] == 1
    assert service.import_frame(store, df, "frame")["created"] is False
    with pytest.raises(ModelyardError, match="cannot contain '@'"):
        service.import_frame(store, df, "bad@name")


# --------------------------------------------------------------------------- profile and warnings


def test_profile_counts_duplicates_and_warnings(store: Store) -> None:
    n = 400
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "row_id": np.arange(n),
        "const": ["same"] * n,
        "sparse": [1.0] * 5 + [np.nan] * (n - 5),
        "many": [f"v{i % 150}" for i in range(n)],
        "x": np.r_[np.zeros(10), rng.normal(size=n - 10)],
        "label": ["a"] * (n - 3) + ["b"] * 3,
    })
    df.loc[n - 1] = df.loc[n - 2]  # one duplicate row (row_id too)
    r = service.import_frame(store, df, "warn", target="label")
    v = service.get_version(store, r["dataset_version_id"])
    prof = {c["name"]: c for c in v.profile["columns"]}
    assert v.profile["duplicates"] == 1
    assert prof["sparse"]["missing"] == n - 5 and prof["sparse"]["missing_share"] == pytest.approx((n - 5) / n)
    assert prof["many"]["distinct"] == 150 and len(prof["many"]["top"]) == 20
    assert prof["label"]["rarest"] == {"value": "b", "count": 3}
    assert prof["x"]["integral"] is False and prof["x"]["distinct"] == n - 10
    codes = {(w["code"], w["column"]) for w in v.warnings}
    assert {("constant", "const"), ("mostly_missing", "sparse"), ("high_cardinality", "many"),
            ("rare_class", "label")} <= codes
    types = {c["name"]: c["type"] for c in v.columns}
    assert types["many"] == "categorical" and types["const"] == "categorical"
    # a row counter named like one stays an identifier when a row is duplicated (issue 11, item 7)
    assert types["row_id"] == "id"
    ids = service.import_frame(store, pd.DataFrame({"customer_id": [f"C{i:05d}" for i in range(50)],
                                                    "y": np.arange(50) % 2}), "ids")
    v2 = service.get_version(store, ids["dataset_version_id"])
    assert {c["name"]: (c["type"], c["role"]) for c in v2.columns}["customer_id"] == ("id", "identifier")
    assert ("identifier", "customer_id") in {(w["code"], w["column"]) for w in v2.warnings}


# --------------------------------------------------------------------------- schema edits


def test_update_schema_makes_a_child_sharing_the_snapshot(store: Store, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "data.csv", sample_frame())
    run_import(store, src, target="churned")
    v1 = service.get_version(store, "data")
    v2 = service.update_schema(store, "data@v1", {"columns": {"age": {"type": "categorical", "role": "ignored"}},
                                                  "target": "income"}, comment="predict income")
    assert (v2.version, v2.parent_id, v2.note) == (2, v1.id, "predict income")
    assert v2.snapshot_sha256 == v1.snapshot_sha256 and v2.content_hash == v1.content_hash
    cols = {c["name"]: (c["type"], c["role"]) for c in v2.columns}
    assert cols["age"] == ("categorical", "ignored") and cols["income"] == ("numeric", "target")
    assert cols["churned"] == ("categorical", "feature")
    assert (v2.target, v2.task) == ("income", "regression")
    assert service.get_version(store, "data@v1").target == "churned"  # versions are never modified
    assert count(store, m.Artifact) == 1
    assert ("dataset_version", "update_schema", "tester") in audit(store)
    # nothing changes: no new version
    assert service.update_schema(store, "data@v2", {"target": "income"}).version == 2
    v3 = service.update_schema(store, "data", {"task": "classification", "target": "age"})
    assert (v3.target, v3.task) == ("age", "classification")
    with pytest.raises(SchemaError, match="holds float data"):
        service.update_schema(store, "data", {"columns": {"income": {"type": "text"}}})
    with pytest.raises(SchemaError, match="no column 'nope'"):
        service.update_schema(store, "data", {"columns": {"nope": {"role": "ignored"}}})
    with pytest.raises(SchemaError, match="Regression needs a numeric target"):
        service.update_schema(store, "data", {"target": "city", "task": "regression"})
    with pytest.raises(SchemaError, match="cannot be the target"):
        service.update_schema(store, "data", {"target": "joined"})
    assert [v.version for v in service.list_versions(store, "data")] == [1, 2, 3]


# --------------------------------------------------------------------------- preview


def test_sniff_preview_reads_only_the_start(tmp_path: Path) -> None:
    src = tmp_path / "big.csv"
    with src.open("w") as fh:
        fh.write("a,b\n")
        for i in range(200_000):
            fh.write(f"{i},{i * 0.5}\n")
    r = service.sniff(src)
    assert r.format == "csv" and len(r.preview) == 50 and r.preview["a"].tolist()[:3] == [0, 1, 2]
    assert r.size == src.stat().st_size and r.suggested_name == "big"
    assert r.options().delimiter == ","


def test_read_rows_pages_across_row_groups(store: Store) -> None:
    n = ROW_GROUP_ROWS * 2 + 1234
    df = pd.DataFrame({"i": np.arange(n), "s": np.array(["x", "y", None], dtype=object)[np.arange(n) % 3],
                       "f": np.where(np.arange(n) % 5 == 0, np.nan, np.arange(n) / 2)})
    r = service.import_frame(store, df, "paged")
    vid = r["dataset_version_id"]
    pf = pq.ParquetFile(service.snapshot_path(store, vid))
    assert [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)] == [ROW_GROUP_ROWS] * 2 + [1234]
    for start, cnt in [(0, 10), (ROW_GROUP_ROWS - 3, 7), (2 * ROW_GROUP_ROWS - 1, 2000), (n - 5, 100), (n + 10, 5)]:
        page = service.read_rows(store, vid, start, cnt)
        stop = min(n, start + cnt)
        assert page["i"].tolist() == list(range(start, stop)) if start < n else page.empty
        if start < n:
            got = [None if pd.isna(x) else x for x in page["s"].tolist()[:3]]
            assert got == [None if k % 3 == 2 else "xy"[k % 3] for k in range(start, min(stop, start + 3))]
    assert str(service.read_rows(store, vid, 0, 3)["i"].dtype) == "Int64"
    assert service.read_rows(store, vid, 5, 3, columns=["f"]).columns.tolist() == ["f"]


def test_read_rows_is_safe_from_several_threads(store: Store) -> None:
    df = pd.DataFrame({"i": np.arange(ROW_GROUP_ROWS + 100)})
    vid = service.import_frame(store, df, "threads")["dataset_version_id"]
    errors: list[BaseException] = []

    def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for start in rng.integers(0, len(df), 40):
                assert service.read_rows(store, vid, int(start), 50)["i"].iloc[0] == start
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# --------------------------------------------------------------------------- splits


def test_splits_random_stratified_and_time(store: Store, tmp_path: Path) -> None:
    df = sample_frame(300)
    src = write_csv(tmp_path / "data.csv", df)
    run_import(store, src, target="churned")
    rnd = service.create_split(store, "data", test=0.2, validation=0.1, seed=3)
    assert rnd.counts == {"train": 210, "validation": 30, "test": 60} and rnd.method == "random"
    parts = service.load_split(store, rnd.id)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(300))
    assert service.create_split(store, "data@v1", test=0.2, validation=0.1, seed=3).id == rnd.id  # stored, reused
    again = service.load_split(store, rnd.id)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    other_seed = service.load_split(store, service.create_split(store, "data", test=0.2, validation=0.1, seed=4).id)
    assert not np.array_equal(parts["test"], other_seed["test"])

    strat = service.create_split(store, "data", test=0.2, method="stratified")
    assert strat.spec["column"] == "churned"
    idx = service.load_split(store, strat.id)
    y = df["churned"].to_numpy()
    assert abs((y[idx["test"]] == "yes").mean() - (y == "yes").mean()) < 0.02

    tsplit = service.create_split(store, "data", test=0.25, method="time")  # the only datetime column
    assert tsplit.spec["column"] == "joined"
    idx = service.load_split(store, tsplit.id)
    joined = df["joined"].to_numpy()
    assert joined[idx["train"]].max() <= joined[idx["test"]].min()

    assert [s.id for s in service.list_splits(store, "data")] == [rnd.id, rnd.id + 1, strat.id, tsplit.id]
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(m.AuditEvent)
                        .where(m.AuditEvent.entity_type == "dataset_split")) == 4
    with pytest.raises(SplitError, match="leave no rows for training"):
        service.create_split(store, "data", test=0.6, validation=0.4)
    with pytest.raises(SplitError, match="between 0 and 1"):
        service.create_split(store, "data", test=1.5)
    with pytest.raises(SplitError, match="no column 'nope'"):
        service.create_split(store, "data", test=0.2, method="stratified", column="nope")
    binned = service.create_split(store, "data", test=0.2, method="stratified", column="income")  # by decile
    assert binned.counts["test"] == 60
    with pytest.raises(SplitError, match="single row"):
        make_assignment(5, test=0.4, method="stratified", column="k", values=pa.array(["a", "a", "b", "b", "c"]))


# --------------------------------------------------------------------------- delete


def _model_version_on(store: Store, dataset_version_id: int) -> None:
    with store.write() as s:
        rm = m.RegisteredModel(name="churn-model")
        s.add(rm)
        s.flush()
        s.add(m.ModelVersion(model_id=rm.id, version=3, dataset_version_id=dataset_version_id))
        exp = m.Experiment(name="exp")
        s.add(exp)
        s.flush()
        s.add(m.Run(experiment_id=exp.id, name="baseline-run", dataset_version_id=dataset_version_id))


def test_delete_is_refused_while_a_model_uses_it_unless_forced(store: Store, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "data.csv", sample_frame())
    r = run_import(store, src)
    _model_version_on(store, r["dataset_version_id"])
    with pytest.raises(ModelyardError, match=r"churn-model v3.*baseline-run") as err:
        service.delete_dataset(store, "data")
    assert "--force" in (err.value.hint or "")
    assert [d.name for d in service.list_datasets(store)] == ["data"]
    out = service.delete_dataset(store, "data", force=True)
    assert out["forced"] is True and out["model_versions"][0]["model"] == "churn-model"
    assert service.list_datasets(store) == []
    assert [d.name for d in service.list_datasets(store, include_deleted=True)] == ["data"]
    with pytest.raises(NotFoundError):
        service.get_version(store, "data")
    # the model's data is still there, by id
    assert service.get_version(store, r["dataset_version_id"]).dataset_deleted is True
    assert len(service.read_rows(store, r["dataset_version_id"], 0, 5)) == 5
    assert ("dataset", "delete", "tester") in audit(store)
    # importing into the name again restores the dataset
    again = run_import(store, src)
    assert again["created"] is False and [d.name for d in service.list_datasets(store)] == ["data"]
    assert ("dataset", "restore", "tester") in audit(store)


def test_delete_unreferenced_and_unknown(store: Store, tmp_path: Path) -> None:
    run_import(store, write_csv(tmp_path / "x.csv", sample_frame()))
    assert service.delete_dataset(store, "x")["forced"] is False
    with pytest.raises(NotFoundError, match="no dataset 'x'"):
        service.delete_dataset(store, "x")


# --------------------------------------------------------------------------- cancel and failure leave nothing


def assert_nothing_stored(store: Store) -> None:
    assert count(store, m.Dataset) == 0 and count(store, m.DatasetVersion) == 0 and count(store, m.Artifact) == 0
    assert artifact_files(store) == [] and temp_files(store) == []


def test_cancel_during_import_leaves_nothing(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "big.csv"
    with src.open("w") as fh:
        fh.write("a,b,c\n")
        for i in range(300_000):
            fh.write(f"{i},{i * 0.25},k{i % 13}\n")
    cancel = threading.Event()

    class CancelMidway:
        def progress(self, fraction: float | None, message: str) -> None:
            if fraction is not None and fraction > 0.2:
                cancel.set()

        def log(self, line: str) -> None:
            pass

    outcome = run_job(store, service.import_spec(src), reporter=CancelMidway(), cancel_event=cancel)
    assert outcome.status == "cancelled"
    assert_nothing_stored(store)


def test_failure_inside_the_transaction_removes_the_snapshot(store: Store, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_csv(tmp_path / "data.csv", sample_frame())
    real = importing.audit

    def failing(s: Any, entity_type: str, entity_id: Any, action: str, **kw: Any) -> None:
        if action == "import":
            raise RuntimeError("disk went away")
        real(s, entity_type, entity_id, action, **kw)

    monkeypatch.setattr(importing, "audit", failing)
    outcome = run_job(store, service.import_spec(src))
    assert outcome.status == "failed" and "disk went away" in outcome.error
    assert_nothing_stored(store)
