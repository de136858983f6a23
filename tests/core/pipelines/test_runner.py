"""The pipeline runner: steps on the job system, outputs flowing into later steps, caching,
retries, failures and what they skip, records and lineage."""

from __future__ import annotations

import textwrap
import time

import pytest
from modelyard.core.common.errors import ModelyardError
from modelyard.core.pipelines.runner import (
    create_run,
    execute_run,
    resume_run,
    run_pipeline,
)
from modelyard.core.store import models as m
from pipeline_helpers import TRAIN, pipeline, project, run_row, step, step_rows
from sqlalchemy import select


def test_import_train_python_shell_run_and_record_their_outputs(store, tmp_path):
    folder = project(tmp_path)
    p = pipeline(folder,
                 step("load", "import", {"path": "${params.data}", "name": "churn", "options": {"target": "churned"}}),
                 step("split", "split", {"dataset": "${steps.load.outputs.ref}", "test": 0.3, "method": "stratified",
                                         "seed": 1}),
                 step("train", "train", {**TRAIN, "dataset": "${steps.load.outputs.dataset_version_id}",
                                         "split": "${steps.split.outputs.split_id}"}),
                 step("report", "python", {"function": "stepfns:write_report",
                                           "args": {"rows": "${steps.load.outputs.rows}"}}),
                 step("echo", "shell", {"command": "echo trained ${steps.train.outputs.run_id}"}),
                 params={"data": "churn.csv"})
    outcome = run_pipeline(store, p)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.exit_code == 0
    assert outcome.steps == {"load": "succeeded", "split": "succeeded", "train": "succeeded", "report": "succeeded",
                             "echo": "succeeded"}
    rows = step_rows(store, outcome.run_id)
    split = rows["split"].outputs
    assert split["name"] == "stratified-test0.3-by-churned-seed1"
    load, train, report, echo = rows["load"], rows["train"], rows["report"], rows["echo"]
    assert load.outputs["ref"] == "churn@v1" and load.outputs["rows"] == 200
    assert load.records == [{"type": "dataset_version", "id": str(load.outputs["dataset_version_id"])}]
    assert "Read 200 rows" in load.log  # the import job's log lines are the step's log
    run_id = train.outputs["run_id"]
    assert train.params["dataset"] == load.outputs["dataset_version_id"]  # the reference, resolved (an id)
    assert {"type": "run", "id": run_id} in train.records
    assert "accuracy" in train.outputs["metrics"]
    assert report.outputs["return"] == {"rows": 200}
    assert [f["name"] for f in report.outputs["files"]] == ["report.json"]
    stored = store.artifacts.read_json(report.outputs["files"][0]["sha256"])
    assert stored == {"rows": 200}
    assert f"trained {run_id}" in echo.log
    assert echo.outputs == {"exit_code": 0}
    for r in rows.values():
        assert r.started_at is not None and r.ended_at is not None and r.attempts == 1
        assert (r.job_id is not None) == (r.kind != "split")  # a split is made in the step itself
    run = run_row(store, outcome.run_id)
    assert run.status == "succeeded" and run.exit_code == 0 and run.pid is not None and run.heartbeat_at is not None
    with store.session() as s:
        produced = set(s.execute(select(m.LineageEdge.dst_type, m.LineageEdge.dst_id).where(
            m.LineageEdge.src_type == "pipeline_run", m.LineageEdge.src_id == str(outcome.run_id),
            m.LineageEdge.relation == "produced")).all())
        actions = list(s.scalars(select(m.AuditEvent.action).where(
            m.AuditEvent.entity_type == "pipeline_run", m.AuditEvent.entity_id == str(outcome.run_id))
            .order_by(m.AuditEvent.id)))
    assert ("dataset_version", str(load.outputs["dataset_version_id"])) in produced
    assert ("run", run_id) in produced
    assert ("dataset_split", str(split["split_id"])) in produced
    with store.session() as s:
        assert s.scalar(select(m.Run.split_id).where(m.Run.uuid == run_id)) == split["split_id"]
    assert actions == ["start", "end"]


def test_a_second_identical_run_is_all_cached_and_quick_and_new_data_reruns_exactly_what_follows(store, tmp_path):
    folder = project(tmp_path)
    p = pipeline(folder,
                 step("load", "import", {"path": "churn.csv", "name": "churn"}),
                 step("use", "shell", {"command": "echo using ${steps.load.outputs.ref}"}),
                 step("hello", "shell", {"command": "echo hello"}),  # independent of the data
                 step("add", "python", {"function": "stepfns:add", "args": {"a": 1, "b": 2}}))
    first = run_pipeline(store, p)
    assert first.status == "succeeded", first.error
    t0 = time.perf_counter()
    second = run_pipeline(store, p)
    elapsed = time.perf_counter() - t0
    assert second.steps == {n: "cached" for n in ("load", "use", "hello", "add")}
    assert elapsed < 1.0, f"an all-cached run took {elapsed:.2f} s"
    rows1, rows2 = step_rows(store, first.run_id), step_rows(store, second.run_id)
    for name in rows2:
        assert rows2[name].cached_from == rows1[name].id
        assert rows2[name].outputs == rows1[name].outputs
    # new content in the data file: the import and the step using it run again, nothing else
    project(tmp_path, rows=220, seed=5)
    third = run_pipeline(store, p)
    assert third.steps == {"load": "succeeded", "use": "succeeded", "hello": "cached", "add": "cached"}
    rows3 = step_rows(store, third.run_id)
    assert rows3["load"].outputs["ref"] == "churn@v2" and "using churn@v2" in rows3["use"].log
    # the python step's module changed: it runs again
    with open(folder / "stepfns.py", "a") as fh:
        fh.write("\n# changed\n")
    fourth = run_pipeline(store, p)
    assert fourth.steps == {"load": "cached", "use": "cached", "hello": "cached", "add": "succeeded"}
    # force reruns everything
    forced = run_pipeline(store, pipeline(folder, *[s for s in p.steps if s.kind != "python"]), force=True)
    assert set(forced.steps.values()) == {"succeeded"}


def test_a_python_step_that_fails_twice_then_succeeds_is_retried(store, tmp_path):
    folder = project(tmp_path)
    counter = tmp_path / "count.txt"
    p = pipeline(folder, step("flaky", "python", {"function": "stepfns:flaky",
                                                  "args": {"counter": str(counter), "fail_times": 2}},
                              retries=2, retry_delay=0.05))
    outcome = run_pipeline(store, p)
    assert outcome.status == "succeeded", outcome.error
    row = step_rows(store, outcome.run_id)["flaky"]
    assert row.attempts == 3 and row.outputs["return"] == 3
    assert "Attempt 1 of 3 failed" in row.log and "flaky failure 2" in row.log and "Retrying in 0.1 s" in row.log


def test_a_failed_step_skips_what_follows_it_while_other_branches_go_on_and_resume_runs_only_the_rest(store, tmp_path):
    folder = project(tmp_path)
    flaky = "n=$(cat count.txt 2>/dev/null || echo 0); echo $((n+1)) > count.txt; echo attempt $((n+1)); [ $n -ge 1 ]"
    p = pipeline(folder,
                 step("first", "shell", {"command": "echo first"}),
                 step("flaky", "shell", {"command": flaky}, needs=("first",)),
                 step("after", "shell", {"command": "echo after ${steps.flaky.outputs.exit_code}"}),
                 step("other", "shell", {"command": "echo other branch"}))
    failed = run_pipeline(store, p, jobs=1)
    assert failed.status == "failed" and failed.exit_code == 1
    assert failed.steps == {"first": "succeeded", "flaky": "failed", "after": "skipped", "other": "succeeded"}
    assert failed.error == "Step 'flaky' failed: The command exited with code 1. The step's log has the command and its output."
    assert f"$ {flaky}" in step_rows(store, failed.run_id)["flaky"].log
    rows = step_rows(store, failed.run_id)
    assert rows["after"].error == "Not run: step 'flaky' failed."
    resumed = resume_run(store, failed.run_id)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.steps == {"first": "cached", "flaky": "succeeded", "after": "succeeded", "other": "cached"}
    again = step_rows(store, resumed.run_id)
    assert again["first"].cached_from == rows["first"].id
    assert "attempt 2" in again["flaky"].log and "after 0" in again["after"].log
    run = run_row(store, resumed.run_id)
    assert run.resumed_from == failed.run_id and run.trigger == {"type": "resume", "run": failed.run_id}
    with pytest.raises(ModelyardError, match="nothing to resume"):
        resume_run(store, resumed.run_id)


def test_a_step_that_takes_too_long_times_out(store, tmp_path):
    folder = project(tmp_path)
    once = "if [ -f slept ]; then echo quick; else touch slept; sleep 30; fi"
    p = pipeline(folder, step("slow", "shell", {"command": "sleep 30"}, timeout=0.5),
                 step("second-try", "shell", {"command": once}, timeout=0.5, retries=1, retry_delay=0.01))
    t0 = time.monotonic()
    outcome = run_pipeline(store, p)
    assert time.monotonic() - t0 < 10
    assert outcome.status == "failed" and outcome.steps == {"slow": "failed", "second-try": "succeeded"}
    rows = step_rows(store, outcome.run_id)
    assert rows["slow"].error == "Timed out after 0.5 s."
    with store.session() as s:
        assert s.get(m.Job, rows["slow"].job_id).status == "cancelled"
    assert rows["second-try"].attempts == 2 and "Attempt 1 of 2 failed: Timed out after 0.5 s." in rows["second-try"].log


def test_unknown_params_and_bad_references_are_named(store, tmp_path):
    folder = project(tmp_path)
    p = pipeline(folder, step("a", "shell", {"command": "echo ${params.who}"}), params={"who": "me"})
    with pytest.raises(ModelyardError, match="no parameter wrong"):
        create_run(store, p, params={"wrong": 1})
    run_id = create_run(store, p, params={"who": "you"})
    assert execute_run(store, run_id).status == "succeeded"
    assert "you" in step_rows(store, run_id)["a"].log
    with pytest.raises(ModelyardError, match="not queued"):
        execute_run(store, run_id)
    bad = pipeline(folder, step("a", "shell", {"command": "echo a"}),
                   step("b", "shell", {"command": "echo ${steps.a.outputs.nothing}"}), name="bad-ref")
    outcome = run_pipeline(store, bad)
    assert outcome.status == "failed" and "cannot be resolved" in outcome.error
    assert "has no output 'nothing'" in outcome.error


def test_an_import_of_a_glob_or_a_folder_makes_one_version_of_all_their_rows(store, tmp_path):
    from factories import churn_frame

    folder = project(tmp_path)
    (folder / "incoming").mkdir()
    churn_frame(50, 1).to_csv(folder / "incoming" / "a.csv", index=False)
    churn_frame(70, 2).to_csv(folder / "incoming" / "b.csv", index=False)
    (folder / "incoming" / "notes.md").write_text("not data")
    p = pipeline(folder, step("glob", "import", {"path": "incoming/*.csv", "name": "by-glob"}),
                 step("dir", "import", {"path": "incoming", "name": "by-folder"}),
                 step("none", "import", {"path": "incoming/*.parquet", "name": "nothing"}))
    outcome = run_pipeline(store, p)
    rows = step_rows(store, outcome.run_id)
    assert rows["glob"].outputs["rows"] == 120 and rows["dir"].outputs["rows"] == 120
    assert rows["glob"].outputs["content_hash"] == rows["dir"].outputs["content_hash"]
    assert "Importing 2 files as one version of by-glob: a.csv, b.csv" in rows["glob"].log
    assert outcome.steps["none"] == "failed"
    assert rows["none"].error.startswith("No file matches incoming/*.parquet")
    (folder / "incoming" / "c.csv").write_text("other,columns\n1,2\n")
    again = run_pipeline(store, pipeline(folder, step("glob", "import", {"path": "incoming/*.csv", "name": "by-glob"})))
    assert again.status == "failed" and "c.csv has other columns than a.csv" in again.error


def test_a_pipeline_file_runs_and_resumes_through_the_python_api(store, tmp_path):
    import modelyard

    folder = project(tmp_path)
    path = folder / "nightly.yaml"
    path.write_text(textwrap.dedent("""\
        name: nightly
        params:
          data: churn.csv
        steps:
          load:
            kind: import
            params: {path: "${params.data}", name: churn}
          check:
            kind: shell
            params: {command: "test ! -f stop.flag && echo rows ${steps.load.outputs.rows}"}
          add:
            kind: python
            params: {function: "stepfns:add", args: {a: "${steps.load.outputs.rows}", b: 1}}
            needs: [check]
        """))
    assert modelyard.validate_pipeline(path) == []
    (folder / "stop.flag").write_text("")
    failed = modelyard.run_pipeline(path, store=store)
    assert failed.status == "failed" and failed.steps == {"load": "succeeded", "check": "failed", "add": "skipped"}
    assert run_row(store, failed.run_id).trigger == {"type": "manual", "via": "python"}
    (folder / "stop.flag").unlink()
    resumed = modelyard.resume_pipeline(failed.run_id, store=store)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.steps == {"load": "cached", "check": "succeeded", "add": "succeeded"}
    add = step_rows(store, resumed.run_id)["add"]
    assert add.outputs["return"] == {"sum": 201} and "adding 200 and 1" in add.log  # what it printed
    (folder / "broken.yaml").write_text("name: broken\nsteps:\n  a: {kind: shel, params: {command: x}}\n")
    problems = modelyard.validate_pipeline(folder / "broken.yaml")
    assert problems and problems[0].line == 3


def test_params_given_as_text_take_their_defaults_type(store, tmp_path):
    folder = project(tmp_path)
    p = pipeline(folder, step("a", "python", {"function": "stepfns:add", "args": {"a": "${params.n}", "b": 0.5}}),
                 params={"n": 1, "fast": False, "label": "x"})
    run_id = create_run(store, p, params={"n": "41", "fast": "yes", "label": "7"})
    assert run_row(store, run_id).params == {"n": 41, "fast": True, "label": "7"}
    with pytest.raises(ModelyardError, match="'n' of 'test-pipe' must be a number like its default 1, not 'many'"):
        create_run(store, p, params={"n": "many"})


def test_a_cache_key_follows_params_file_content_and_code_not_file_times(tmp_path):
    import os

    from modelyard.core.pipelines.cache import cache_key

    folder = project(tmp_path)
    load = step("load", "import", {"path": "churn.csv", "name": "churn"})
    key = cache_key(load, load.params, folder)
    assert cache_key(load, {**load.params, "name": "other"}, folder) != key
    st = (folder / "churn.csv").stat()
    os.utime(folder / "churn.csv", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert cache_key(load, load.params, folder) == key  # touched, same bytes
    (folder / "churn.csv").write_text((folder / "churn.csv").read_text().replace("basic", "basik"))
    assert cache_key(load, load.params, folder) != key
    py = step("add", "python", {"function": "stepfns:add", "args": {"a": 1, "b": 2}})
    before = cache_key(py, py.params, folder)
    (folder / "stepfns.py").write_text((folder / "stepfns.py").read_text() + "\n\ndef other():\n    return 1\n")
    assert cache_key(py, py.params, folder) != before
    sh = step("sh", "shell", {"command": "echo a"})
    assert cache_key(sh, sh.params, folder) != cache_key(sh, {"command": "echo b"}, folder)


def test_a_python_step_runs_in_the_pipeline_folder_and_its_exception_reads_as_the_functions(store, tmp_path,
                                                                                           monkeypatch):
    folder = project(tmp_path)
    (folder / "mine.py").write_text(
        "from pathlib import Path\n"
        "def size(path):\n    return Path(path).stat().st_size\n"
        "def broken():\n    raise RuntimeError('the model file is empty')\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the caller's folder is not the pipeline's
    p = pipeline(folder, step("size", "python", {"function": "mine:size", "args": {"path": "churn.csv"}}),
                 step("broken", "python", {"function": "mine:broken"}))
    outcome = run_pipeline(store, p)
    rows = step_rows(store, outcome.run_id)
    assert rows["size"].status == "succeeded", rows["size"].error
    assert rows["size"].outputs["return"] == (folder / "churn.csv").stat().st_size
    assert rows["broken"].error == ("mine:broken raised RuntimeError: the model file is empty. "
                                    "The step's log has the traceback.")
    assert "Traceback" in rows["broken"].log and "Unexpected error" not in rows["broken"].log
