"""Column types a user meets in real files (issue 11, items 6 and 7).

Dates written in the common non-ISO forms, and ISO dates inside JSON and Excel text cells, are
dates in every reader; the order of day and month is decided from the data and can be chosen;
a value that does not fit keeps the column as text with a warning naming it. Free text is text
and running numbers are identifiers, and training leaves both out.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from cli_helpers import cli, cli_json
from modelyard.core.common.errors import ModelyardError
from modelyard.core.datasets import service
from modelyard.core.experiments.training.preprocess import describe_preprocessing
from modelyard.core.jobs.runner import run_job
from modelyard.core.store import Store


def run_import(store: Store, path: Path, **options: Any) -> dict[str, Any]:
    outcome = run_job(store, service.import_spec(path, service.ImportOptions(**options)))
    assert outcome.ok, outcome.error
    assert outcome.result is not None
    return outcome.result


def columns(store: Store, result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    v = service.get_version(store, result["dataset_version_id"])
    return {c["name"]: c for c in v.columns}


def values(store: Store, result: dict[str, Any], name: str) -> list[Any]:
    path = service.snapshot_path(store, result["dataset_version_id"])
    return pq.read_table(path, columns=[name]).column(0).to_pylist()


def warnings(store: Store, result: dict[str, Any]) -> dict[tuple[str, str], str]:
    v = service.get_version(store, result["dataset_version_id"])
    return {(w["code"], w["column"]): w["message"] for w in v.warnings}


DAYS = [dt.datetime(2012, 1, 1) + dt.timedelta(days=3 * i) for i in range(40)]


def write_dates(path: Path, fmt: str, days: list[dt.datetime] = DAYS) -> Path:
    rows = ["day,amount,label"] + [f"{d.strftime(fmt)},{i * 1.5},{'ab'[i % 2]}" for i, d in enumerate(days)]
    path.write_text("\n".join(rows) + "\n")
    return path


# --------------------------------------------------------------------------- item 6: dates


@pytest.mark.parametrize("fmt", ["%Y/%m/%d", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y", "%Y/%m/%d %H:%M"])
def test_non_iso_dates_in_a_csv_are_dates_and_a_feature(store: Store, tmp_path: Path, fmt: str) -> None:
    path = write_dates(tmp_path / "visits.csv", fmt)
    r = run_import(store, path, target="label")
    day = columns(store, r)["day"]
    assert (day["dtype"], day["type"], day["role"]) == ("timestamp[us]", "datetime", "feature")
    assert values(store, r, "day") == DAYS
    assert "identifier" not in {code for code, _ in warnings(store, r)}
    plan = describe_preprocessing(service.get_version(store, r["dataset_version_id"]).schema)
    assert "day" in plan["features"]


def test_iso_dates_in_json_jsonl_and_excel_text_cells_are_dates(store: Store, tmp_path: Path) -> None:
    import openpyxl

    records = [{"when": d.strftime("%Y-%m-%d"), "at": d.strftime("%Y-%m-%dT%H:%M:%S"), "n": i % 3}
               for i, d in enumerate(DAYS)]
    as_json = tmp_path / "visits.json"
    as_json.write_text(json.dumps(records))
    # a JSON Lines file with a mixed-type column goes through the Python reader
    as_jsonl = tmp_path / "mixed.jsonl"
    as_jsonl.write_text("\n".join(json.dumps({**r, "n": "x" if i == 5 else r["n"]}) for i, r in enumerate(records)))
    book = tmp_path / "visits.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["when", "at", "n"])
    for r in records:
        ws.append([r["when"], r["at"], r["n"]])  # text cells, not Excel dates
    wb.save(book)
    for path in (as_json, as_jsonl, book):
        r = run_import(store, path, name=path.stem + path.suffix)
        cols = columns(store, r)
        assert cols["when"]["type"] == cols["at"]["type"] == "datetime", (path, cols)
        assert values(store, r, "when") == DAYS


def test_the_order_of_day_and_month_is_decided_from_the_data(store: Store, tmp_path: Path) -> None:
    day_first = tmp_path / "eu.csv"
    day_first.write_text("d,x\n01/02/2012,1\n05/03/2012,2\n31/01/2012,3\n")
    month_first = tmp_path / "us.csv"
    month_first.write_text("d,x\n01/02/2012,1\n05/03/2012,2\n01/31/2012,3\n")
    ambiguous = tmp_path / "either.csv"
    ambiguous.write_text("d,x\n01/02/2012,1\n05/03/2012,2\n")
    r = run_import(store, day_first)
    assert values(store, r, "d") == [dt.datetime(2012, 2, 1), dt.datetime(2012, 3, 5), dt.datetime(2012, 1, 31)]
    assert not [k for k in warnings(store, r) if k[0] == "ambiguous_dates"]
    r = run_import(store, month_first)
    assert values(store, r, "d") == [dt.datetime(2012, 1, 2), dt.datetime(2012, 5, 3), dt.datetime(2012, 1, 31)]
    # every value fits both orders: month-first (the documented default), and a warning says so
    r = run_import(store, ambiguous)
    assert values(store, r, "d") == [dt.datetime(2012, 1, 2), dt.datetime(2012, 5, 3)]
    message = warnings(store, r)[("ambiguous_dates", "d")]
    assert "MM/DD/YYYY" in message and "DD/MM/YYYY" in message
    # ... and the user's choice wins
    r = run_import(store, ambiguous, name="either-eu", date_formats={"d": "DD/MM/YYYY"})
    assert values(store, r, "d") == [dt.datetime(2012, 2, 1), dt.datetime(2012, 3, 5)]
    assert ("ambiguous_dates", "d") not in warnings(store, r)


def test_a_value_that_is_not_a_date_keeps_the_column_text_and_a_warning_names_it(store: Store,
                                                                                 tmp_path: Path) -> None:
    # The bad value sits far past the first block that decided the format.
    n = 60_000
    days = [dt.date(2000, 1, 1) + dt.timedelta(days=i % 9000) for i in range(n)]
    text = [d.strftime("%d.%m.%Y") for d in days]
    text[45_000] = "31.02.2012"
    path = tmp_path / "big.csv"
    path.write_text("d,pad\n" + "".join(f"{t},{'x' * 20}{i}\n" for i, t in enumerate(text)))
    assert path.stat().st_size > 2 << 20
    r = run_import(store, path)
    assert columns(store, r)["d"]["dtype"] == "string"
    got = values(store, r, "d")
    assert got == text  # nothing became missing, nothing changed
    message = warnings(store, r)[("not_dates", "d")]
    assert "row 45,001" in message and "'31.02.2012'" in message and "DD.MM.YYYY" in message
    assert message in r["warnings"]


def test_date_format_choices_are_checked(store: Store, tmp_path: Path) -> None:
    path = write_dates(tmp_path / "visits.csv", "%Y/%m/%d")
    r = run_import(store, path, date_formats={"day": "text"})
    assert columns(store, r)["day"]["dtype"] == "string"
    r = run_import(store, path, name="given", date_formats={"*": "YYYY/MM/DD"})
    assert columns(store, r)["day"]["type"] == "datetime"
    with pytest.raises(ModelyardError, match="column 'dya'.*no such column") as e:
        service.sniff(path, {"date_formats": {"dya": "YYYY/MM/DD"}})
    assert "'day'" in (e.value.hint or "")
    outcome = run_job(store, service.import_spec(path, {"date_formats": {"day": "YYYY"}}))
    assert not outcome.ok and "'YYYY' for column 'day' is not a date format" in outcome.error
    # a chosen format that the values do not fit keeps the column as text, with the warning
    r = run_import(store, path, name="wrong", date_formats={"day": "DD.MM.YYYY"})
    assert columns(store, r)["day"]["dtype"] == "string"
    assert "row 1 holds '2012/01/01'" in warnings(store, r)[("not_dates", "day")]


def test_sniff_shows_the_detected_format_and_the_preview_as_it_will_be_read(tmp_path: Path) -> None:
    path = tmp_path / "either.csv"
    path.write_text("d,x\n01/02/2012,1\n05/03/2012,2\n")
    found = service.sniff(path)
    assert found.dates["d"]["format"] == "MM/DD/YYYY"
    assert found.dates["d"]["candidates"] == ["DD/MM/YYYY", "MM/DD/YYYY"]
    assert str(found.preview["d"][0].date()) == "2012-01-02"
    chosen = service.sniff(path, {"date_formats": {"d": "DD/MM/YYYY"}})
    assert chosen.dates["d"]["format"] == "DD/MM/YYYY" and chosen.dates["d"]["given"]
    assert str(chosen.preview["d"][0].date()) == "2012-02-01"
    as_text = service.sniff(path, {"date_formats": {"d": "text"}})
    assert as_text.dates["d"]["format"] is None and as_text.preview["d"][0] == "01/02/2012"


def test_cli_date_format_option(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "either.csv"
    path.write_text("d,x\n01/02/2012,1\n05/03/2012,2\n")
    s = str(tmp_path / "store")
    assert cli(capsys, "store", "init", s)[0] == 0
    code, out, err = cli_json(capsys, "--store", s, "dataset", "import", str(path), "--date-format", "d=DD/MM/YYYY")
    assert code == 0, err
    code, prof, err = cli_json(capsys, "--store", s, "dataset", "profile", "either")
    assert code == 0, err
    col = next(c for c in prof["columns"] if c["name"] == "d")
    assert col["kind"] == "datetime" and col["min"].startswith("2012-02-01")
    code, out, err = cli(capsys, "--store", s, "dataset", "show", "either")
    assert code == 0 and "datetime (DD/MM/YYYY)" in out
    code, out, err = cli(capsys, "--store", s, "dataset", "import", str(path), "--name", "x", "--date-format", "d=YYYY")
    assert code == 1 and "'YYYY' for column 'd' is not a date format" in err and "Traceback" not in err
    code, out, err = cli(capsys, "--store", s, "dataset", "import", str(path), "--name", "y", "--date-format", "nonsense")
    assert code == 1 and "--date-format 'nonsense'" in err


# --------------------------------------------------------------------------- item 7: text and numbers


def test_free_text_with_repeated_answers_is_text_and_not_a_feature(store: Store, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    subjects = ["box", "seal", "label", "lid", "driver", "parcel", "invoice", "colour", "size", "strap"]
    verbs = ["was", "looked", "arrived", "seemed", "felt"]
    states = ["damaged", "fine", "late", "wet", "torn", "wrong", "loose", "early"]
    lines = ["size,comment,label"]
    for i in range(300):
        if i % 5 < 3:  # most rows have the same short answer
            comment = "none"
        else:
            comment = (f"the {rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(states)} "
                       f"again on day {i}")
        lines.append(f"{rng.normal(5, 1):.3f},{comment},{'ab'[i % 2]}")
    path = tmp_path / "feedback.csv"
    path.write_text("\n".join(lines) + "\n")
    r = run_import(store, path, target="label")
    comment = columns(store, r)["comment"]
    assert (comment["type"], comment["role"]) == ("text", "ignored")
    assert "free text" in warnings(store, r)[("free_text", "comment")]
    plan = describe_preprocessing(service.get_version(store, r["dataset_version_id"]).schema)
    assert "comment" not in plan["features"] and "size" in plan["features"]


def test_running_numbers_are_identifiers_and_measurements_are_not(store: Store, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    n = 200
    kept = np.sort(rng.choice(np.arange(1000, 1000 + 2 * n), n, replace=False))  # a running number with gaps
    code = rng.integers(1_000_000, 1_400_000, n)
    code[10] = code[11]  # a sample measured twice
    lines = ["run,Sample code number,num_rooms,income,label"]
    for i in range(n):
        lines.append(f"{kept[i]},{code[i]},{rng.integers(1, 6)},{rng.integers(20_000, 90_000)},{'ab'[i % 2]}")
    path = tmp_path / "samples.csv"
    path.write_text("\n".join(lines) + "\n")
    r = run_import(store, path, target="label")
    cols = columns(store, r)
    assert (cols["run"]["type"], cols["run"]["role"]) == ("id", "identifier")
    assert (cols["Sample code number"]["type"], cols["Sample code number"]["role"]) == ("id", "identifier")
    assert cols["num_rooms"]["type"] == cols["income"]["type"] == "numeric"
    found = warnings(store, r)
    assert "running number" in found[("identifier", "run")]
    assert "its name says so" in found[("identifier", "Sample code number")]
    assert not [k for k in found if k[1] in ("income", "num_rooms")]
    plan = describe_preprocessing(service.get_version(store, r["dataset_version_id"]).schema)
    assert set(plan["features"]) == {"num_rooms", "income"}
    # a short table: the name alone, with every value different, says identifier
    short = tmp_path / "short.csv"
    short.write_text("sample_no,weight\n" + "".join(f"{i + 1},{w}\n" for i, w in enumerate([3, 9, 4, 7, 5])))
    r = run_import(store, short)
    assert columns(store, r)["sample_no"]["type"] == "id"
    assert columns(store, r)["weight"]["type"] == "numeric"


def test_a_batch_scored_for_a_model_reads_ambiguous_dates_as_its_training_data_did(store: Store,
                                                                                   tmp_path: Path) -> None:
    from modelyard.core.experiments.training.spec import TrainSpec, train_spec_job
    from modelyard.core.jobs.runner import JobSpec
    from modelyard.core.registry import versions as registry
    from modelyard.core.serving import scoring

    rng = np.random.default_rng(5)
    days = [dt.datetime(2012, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 700, 120)]
    train = tmp_path / "train.csv"
    train.write_text("seen,size,label\n" + "".join(f"{d:%d/%m/%Y},{rng.normal():.3f},{'ab'[i % 2]}\n"
                                                   for i, d in enumerate(days)))
    r = run_import(store, train, name="train", target="label")
    assert service.date_formats_of(store, r["dataset_version_id"]) == {"seen": "DD/MM/YYYY"}
    job = train_spec_job(TrainSpec(dataset="train@v1", model="logistic_regression", curves=False, source="api"))
    outcome = run_job(store, JobSpec(job.func, job.title, job.params, process=False, kind=job.kind))
    assert outcome.ok, outcome.error
    info = registry.register(store, outcome.result["run_id"], "seen-model")
    batch = tmp_path / "batch.csv"
    batch.write_text("seen,size\n01/02/2012,0.5\n03/04/2012,-0.2\n")  # on its own: month-first
    scored = run_job(store, scoring.score_spec(info.ref, path=batch, output_name="batch-scored"))
    assert scored.ok, scored.error
    got = values(store, {"dataset_version_id": scored.result["input"]["dataset_version_id"]}, "seen")
    assert got == [dt.datetime(2012, 2, 1), dt.datetime(2012, 4, 3)]
