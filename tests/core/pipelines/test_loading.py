"""Pipeline files: a good file loads into plain data; every problem is named with line, column and a hint."""

from __future__ import annotations

import hashlib
import os
import textwrap
import time
from pathlib import Path

import pytest
from modelyard.core.pipelines import loading
from modelyard.core.pipelines.spec import PipelineInvalid, Problem

GOOD = """\
name: churn-nightly
description: Nightly retrain
params:
  data: churn.csv
  check: null
  threshold: 0.8
triggers:
  - schedule: "0 2 * * *"
    missed: skip
  - on: new_file
    folder: incoming
    pattern: "*.csv"
    param: data
  - on: drift
    model: churn
    param: check
notify:
  on: [failed, blocked, succeeded]
  email: [ops@example.com]
  webhook: true
steps:
  load:
    kind: import
    params: {path: "${params.data}", name: churn}
  search:
    kind: train
    params:
      dataset: "${steps.load.outputs.ref}"
      model: random_forest
      target: churned
      cv: {folds: 3}
    retries: 2
    retry_delay: 5
    timeout: 600
  gate:
    kind: gate
    params: {model: churn, run: "${steps.search.outputs.run_id}"}
    needs: [load]
    cache: false
  register:
    kind: register
    params:
      run: "${steps.search.outputs.run_id}"
      model: churn
      alias: champion
      comment: "f1 ${steps.search.outputs.metrics.f1} from ${params.data}"
    needs: gate
  export:
    kind: bundle
    params: {ref: "${steps.register.outputs.ref}", folder: out/bundles}
"""


def at(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """The 1-based line and column where the ``nth`` occurrence of ``needle`` starts in ``text``."""
    pos = -1
    for _ in range(nth + 1):
        pos = text.index(needle, pos + 1)
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def only_problem(text: str) -> Problem:
    problems = loading.validate_text(text, file="p.yaml")
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def steps_yaml(body: str, head: str = "name: p\n") -> str:
    return head + "steps:\n" + textwrap.indent(textwrap.dedent(body), "  ")


# --------------------------------------------------------------------------- a good file


def test_a_good_file_loads_with_steps_needs_triggers_params_and_notify(tmp_path: Path) -> None:
    path = tmp_path / "pipes" / "churn.yaml"
    path.parent.mkdir()
    path.write_text(GOOD, encoding="utf-8")

    p = loading.load_pipeline(path)

    assert p.name == "churn-nightly" and p.description == "Nightly retrain"
    assert p.path == str(path.resolve()) and os.path.isabs(p.path)
    assert p.folder == str(path.parent.resolve())
    assert p.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert p.params == {"data": "churn.csv", "check": None, "threshold": 0.8}
    assert p.names == ["load", "search", "gate", "register", "export"]
    load, search, gate, register, export = p.steps
    assert (load.kind, load.params, load.needs) == ("import", {"path": "${params.data}", "name": "churn"}, ())
    assert search.needs == ("load",)  # from the reference alone
    assert search.params["cv"] == {"folds": 3}
    assert (search.retries, search.retry_delay, search.timeout, search.cache) == (2, 5.0, 600.0, True)
    assert gate.needs == ("load", "search") and gate.cache is False  # explicit first, then referenced
    assert register.needs == ("gate", "search")  # 'needs: gate' (one name) and the references
    assert export.params["folder"] == "out/bundles"  # paths stay as written; the runner resolves them
    assert [s.position for s in p.steps] == [0, 1, 2, 3, 4]
    assert load.line == at(GOOD, "  load:")[0] and gate.line == at(GOOD, "  gate:")[0]
    assert [s.name for s in p.order()] == ["load", "search", "gate", "register", "export"]

    schedule, new_file, drift = p.triggers
    assert (schedule.key, schedule.type, schedule.cron, schedule.missed) == ("schedule:0", "schedule", "0 2 * * *",
                                                                             "skip")
    assert (new_file.key, new_file.type, new_file.pattern, new_file.param) == ("new_file:1", "new_file", "*.csv",
                                                                               "data")
    assert new_file.folder == str(path.parent.resolve() / "incoming")  # absolute
    assert (drift.key, drift.model, drift.param) == ("drift:2", "churn", "check")
    assert p.notify == {"on": ["failed", "blocked", "succeeded"], "email": ["ops@example.com"], "webhook": True}
    assert loading.validate_file(path) == []


def test_text_defaults_and_the_plain_data_round_trip(tmp_path: Path) -> None:
    text = steps_yaml("""\
        only:
          kind: shell
          params: {command: echo hi}
        """)
    p = loading.load_text(text, file="inline.yaml", folder=str(tmp_path))
    assert p.path == "inline.yaml" and p.folder == str(tmp_path)
    assert p.notify == {"on": ["failed", "blocked"]} and p.triggers == () and p.params == {}
    step = p.steps[0]
    assert (step.retries, step.retry_delay, step.timeout, step.cache, step.needs) == (0, 1.0, None, True, ())
    assert p.sha256 == hashlib.sha256(text.encode()).hexdigest()
    from modelyard.core.pipelines.spec import Pipeline

    assert Pipeline.from_json(p.to_json()) == p


def test_yaml_conveniences_keep_working() -> None:
    """'on' stays a key (YAML 1.1 would read it as true), merge keys apply, python returns go deep."""
    text = steps_yaml("""\
        base: &defaults
          kind: python
          params: {function: "tasks:make"}
          retries: 1
        again:
          <<: *defaults
          params: {function: "tasks:use", args: {model: "${steps.base.outputs.return.model.path}"}}
        """, head="name: p\nnotify:\n  on: succeeded\n")
    p = loading.load_text(text)
    assert p.notify == {"on": ["succeeded"]}
    again = p.step("again")
    assert (again.kind, again.retries, again.needs) == ("python", 1, ("base",))
    assert again.params["function"] == "tasks:use"


def test_dates_stay_the_text_they_were_written_as() -> None:
    """A pipeline is stored and handed to jobs as JSON: a YAML date is kept as its text."""
    text = steps_yaml("""\
        s:
          kind: shell
          params: {command: "echo ${params.since}", env: {SINCE: 2026-02-01}}
        """, head="name: p\nparams: {since: 2026-01-05, bad: 2026-02-30}\n")
    p = loading.load_text(text)
    assert p.params == {"since": "2026-01-05", "bad": "2026-02-30"}
    assert p.steps[0].params["env"] == {"SINCE": "2026-02-01"}
    import datetime

    import yaml

    assert isinstance(yaml.safe_load("d: 2026-01-05")["d"], datetime.date)  # everyone else's YAML is unchanged


def test_a_literal_dollar_brace_is_not_a_reference() -> None:
    text = steps_yaml("""\
        s:
          kind: shell
          params: {command: "echo $${HOME}"}
        """)
    assert loading.load_text(text).steps[0].needs == ()


# --------------------------------------------------------------------------- every problem, where it is


CASES = {
    "unknown kind": (steps_yaml("""\
        s:
          kind: trian
          params: {dataset: d, model: m}
        """), "trian", "unknown kind 'trian'", "Did you mean 'train'?"),
    "missing kind": (steps_yaml("""\
        job:
          params: {command: ls}
        """), "job:", "Step 'job' has no 'kind'", "import, split, train"),
    "missing required param": (steps_yaml("""\
        s:
          kind: import
          params: {path: a.csv}
        """), "params:", "missing required param 'name'", "name: ..."),
    "unknown param": (steps_yaml("""\
        s:
          kind: import
          params: {path: a.csv, name: d, mesage: hi}
        """), "mesage", "unknown param 'mesage'", "Did you mean 'message'?"),
    "needs naming no step": (steps_yaml("""\
        load:
          kind: shell
          params: {command: ls}
        s:
          kind: shell
          params: {command: ls}
          needs: [laod]
        """), "laod", "needs 'laod', which is not a step", "Did you mean 'load'?"),
    "reference to a missing step": (steps_yaml("""\
        load:
          kind: import
          params: {path: a.csv, name: d}
        s:
          kind: split
          params: {dataset: "${steps.lod.outputs.ref}"}
        """), "${steps.lod", "there is no step 'lod'", "Did you mean 'load'?"),
    "reference to a missing param": (steps_yaml("""\
        s:
          kind: import
          params: {path: "data/${params.dta}", name: d}
        """, head="name: p\nparams: {data: x}\n"), "${params.dta}", "no parameter 'dta'", "Did you mean 'data'?"),
    "reference to a missing output": (steps_yaml("""\
        load:
          kind: import
          params: {path: a.csv, name: d}
        s:
          kind: split
          params:
            dataset: ${steps.load.outputs.version_id}
        """), "${steps.load.outputs.version_id}", "an import step has no output 'version_id'",
        "dataset_version_id"),
    "malformed reference": (steps_yaml("""\
        s:
          kind: shell
          params: {command: "echo ${steps.x}"}
        """), "${steps.x}", "must be ${steps.<step>.outputs.<key>}", "References"),
    "own outputs": (steps_yaml("""\
        s:
          kind: shell
          params: {command: "echo ${steps.s.outputs.exit_code}"}
        """), "${steps.s.", "references its own outputs", "before it"),
    "cycle": (steps_yaml("""\
        a:
          kind: shell
          params: {command: ls}
          needs: [c]
        b:
          kind: shell
          params: {command: "echo ${steps.a.outputs.exit_code}"}
        c:
          kind: shell
          params: {command: ls}
          needs: [b]
        """), "a:", "Steps 'a', 'b' and 'c' form a cycle: a needs c, c needs b, b needs a", "Remove one"),
    "needs itself": (steps_yaml("""\
        a:
          kind: shell
          params: {command: ls}
          needs: [a]
        """), "a:", "Step 'a' needs itself", "Remove it"),
    "bad cron": (steps_yaml("""\
        s: {kind: shell, params: {command: ls}}
        """, head='name: p\ntriggers:\n  - schedule: "61 2 * * *"\n'), '"61 2', "The schedule '61 2 * * *' is not a "
        "valid cron expression", "minute hour day-of-month month day-of-week"),
    "cron with too few fields": (steps_yaml("""\
        s: {kind: shell, params: {command: ls}}
        """, head="name: p\ntriggers:\n  - schedule: 0 2 *\n"), "0 2 *", "'0 2 *' is not a valid cron", "\"0 2 * * *\""),
    "missed policy": (steps_yaml("""\
        s: {kind: shell, params: {command: ls}}
        """, head='name: p\ntriggers:\n  - schedule: "0 2 * * *"\n    missed: run_one\n'), "run_one",
        "missed policy 'run_one'", "Did you mean 'run_once'?"),
    "unknown trigger type": (steps_yaml("""\
        s: {kind: shell, params: {command: ls}}
        """, head="name: p\ntriggers:\n  - on: new_flie\n"), "new_flie", "unknown type 'on: new_flie'",
        "Did you mean 'new_file'?"),
    "trigger with no type": (steps_yaml("""\
        s: {kind: shell, params: {command: ls}}
        """, head="name: p\ntriggers:\n  - folder: x\n"), "folder: x", "Trigger 1 has no type", "on: new_file"),
    "new_file with no folder": (steps_yaml("""\
        s: {kind: shell, params: {command: ls}}
        """, head="name: p\ntriggers:\n  - on: new_file\n    pattern: '*.csv'\n"), "on: new_file",
        "The new_file trigger has no 'folder'", "folder: incoming"),
    "drift with no model": (steps_yaml("""\
        s: {kind: shell, params: {command: ls}}
        """, head="name: p\ntriggers:\n  - on: drift\n"), "on: drift", "The drift trigger has no 'model'",
        "model: <registered model name>"),
    "unknown trigger field": (steps_yaml("""\
        s: {kind: shell, params: {command: ls}}
        """, head="name: p\ntriggers:\n  - on: drift\n    model: m\n    modle: n\n"), "modle",
        "The drift trigger has an unknown key 'modle'", "Did you mean 'model'?"),
    "trigger param not declared": (steps_yaml("""\
        s: {kind: shell, params: {command: ls}}
        """, head="name: p\ntriggers:\n  - on: new_file\n    folder: in\n    param: data\n"), "data",
        "param 'data' is not a parameter of the pipeline", "Declare it under 'params:'"),
    "retries": (steps_yaml("""\
        s:
          kind: shell
          params: {command: ls}
          retries: -1
        """), "-1", "Step 's': 'retries' must be a whole number, 0 or more, not '-1'", "retries: 2"),
    "retries as text": (steps_yaml("""\
        s:
          kind: shell
          params: {command: ls}
          retries: twice
        """), "twice", "'retries' must be a whole number", "retries: 2"),
    "timeout": (steps_yaml("""\
        s:
          kind: shell
          params: {command: ls}
          timeout: 0
        """), "0\n", "'timeout' must be a number of seconds above 0", "timeout: 600"),
    "cache": (steps_yaml("""\
        s:
          kind: shell
          params: {command: ls}
          cache: sometimes
        """), "sometimes", "'cache' must be true or false", "cache: false"),
    "unknown step key": (steps_yaml("""\
        s:
          kind: shell
          params: {command: ls}
          retry: 2
        """), "retry:", "Step 's' has an unknown key 'retry'", "Did you mean 'retries'?"),
    "notify.on": (steps_yaml("""\
        s: {kind: shell, params: {command: ls}}
        """, head="name: p\nnotify:\n  on: [failed, succeded]\n"), "succeded", "unknown ending 'succeded'",
        "Did you mean 'succeeded'?"),
    "notify.webhook": (steps_yaml("""\
        s: {kind: shell, params: {command: ls}}
        """, head="name: p\nnotify:\n  webhook: http://x\n"), "http://x", "'notify.webhook' must be true or false",
        "store setting"),
    "python function": (steps_yaml("""\
        s:
          kind: python
          params: {function: tasks.build}
        """), "tasks.build", "Step 's' (python): 'function' must be module:function, not 'tasks.build'",
        "steps.features:build"),
    "python args": (steps_yaml("""\
        s:
          kind: python
          params:
            function: tasks:build
            args: [1, 2]
        """), "[1, 2]", "'args' must be a mapping, not a list", "args: {name: value"),
    "a value JSON cannot hold": (steps_yaml("""\
        s:
          kind: shell
          params: {command: ls, env: !!binary aGVsbG8=}
        """), "!!binary", "Step 's': param 'env' cannot be read or stored", "quote anything else"),
    "an unsafe tag": (steps_yaml("""\
        s:
          kind: shell
          params: {command: !!python/name:os.system }
        """), "!!python", "Step 's': param 'command' cannot be read or stored", "quote anything else"),
    "duplicate step": (steps_yaml("""\
        dup:
          kind: shell
          params: {command: ls}
        dup:
          kind: shell
          params: {command: pwd}
        """), ("dup:", 1), "The key 'dup' appears twice in 'steps' (first at line 3)", "silently keep only the last"),
    "duplicate param of a step": (steps_yaml("""\
        s:
          kind: shell
          params:
            command: ls
            command: pwd
        """), ("command", 1), "The key 'command' appears twice in 'params'", "Remove or rename"),
    "unknown top-level key": (steps_yaml("""\
        s: {kind: shell, params: {command: ls}}
        """, head="name: p\ntrigger: []\n"), "trigger:", "unknown key 'trigger'", "Did you mean 'triggers'?"),
    "bad name": ("name: churn nightly\nsteps:\n  s: {kind: shell, params: {command: ls}}\n", "churn nightly",
                 "name 'churn nightly' may hold only letters, digits, _ and -", "churn-nightly"),
    "missing name": ("steps:\n  s: {kind: shell, params: {command: ls}}\n", "steps", "The pipeline has no 'name'",
                     "name:"),
    "missing steps": ("name: p\n", "name", "The pipeline has no 'steps'", "Add 'steps:'"),
    "empty steps": ("name: p\nsteps: {}\n", "{}", "'steps' is empty", "at least one step"),
    "param default with a reference": ("name: p\nparams:\n  a: ${params.b}\n  b: 1\nsteps:\n"
                                       "  s: {kind: shell, params: {command: ls}}\n", "${params.b}",
                                       "Parameter 'a' holds a reference", "value itself"),
    "malformed yaml": (steps_yaml("""\
        s:
          kind: shell
          params: {command: ls
        x: 1
        """), ": 1", "The file is not valid YAML", "quoting"),
    "unquoted reference in a flow mapping": (steps_yaml("""\
        s:
          kind: shell
          params: {command: ${params.cmd}}
        """, head="name: p\nparams: {cmd: ls}\n"), "{params.cmd}", "not valid YAML", 'write "${...}"'),
    "tab indentation": ("name: p\nsteps:\n\ts: 1\n", "\ts", "The file is not valid YAML", "tabs"),
    "two documents": ("name: p\n---\nname: q\n", "---", "not valid YAML", "one pipeline per file"),
    "not a mapping": ("- name: p\n- steps: {}\n", "- name", "The file holds a list, not a mapping", "name:"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_problem_names_its_line_column_and_a_hint(case: str) -> None:
    text, where, message, hint = CASES[case]
    needle, nth = where if isinstance(where, tuple) else (where, 0)
    problem = only_problem(text)
    assert problem.file == "p.yaml"
    assert (problem.line, problem.column) == at(text, needle, nth), str(problem)
    assert message in problem.message, str(problem)
    assert problem.hint and hint in problem.hint, str(problem)
    assert "\n" not in problem.message and "\n" not in problem.hint
    assert str(problem).startswith(f"p.yaml:{problem.line}:{problem.column}: ")
    with pytest.raises(PipelineInvalid) as err:
        loading.load_text(text, file="p.yaml")
    assert err.value.problems == [problem]
    assert str(err.value).startswith(f"p.yaml:{problem.line}:{problem.column}: {problem.message}")


def test_every_problem_of_a_file_is_reported_in_order(tmp_path: Path) -> None:
    text = GOOD.replace("kind: gate", "kind: gait").replace('"0 2 * * *"', '"0 25 * * *"').replace(
        "outputs.run_id}\", model", "outputs.run}\", model").replace("model: churn\n      alias", "model: c\n      als")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    problems = loading.validate_file(path)
    assert [p.file for p in problems] == [str(path)] * len(problems)
    messages = [p.message for p in problems]
    assert len(problems) == 3, "\n".join(map(str, problems))
    assert "'0 25 * * *' is not a valid cron expression" in messages[0]
    assert "unknown kind 'gait'" in messages[1]
    assert "unknown param 'als'" in messages[2]
    assert [(p.line, p.column) for p in problems] == sorted((p.line, p.column) for p in problems)
    with pytest.raises(PipelineInvalid, match=r"\(and 2 more problems\)"):
        loading.load_pipeline(path)


def test_an_empty_file_and_a_missing_one_are_one_problem_at_the_start(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    [problem] = loading.validate_file(empty)
    assert (problem.line, problem.column, problem.message) == (1, 1, "The file is empty.")
    assert "name:" in problem.hint

    missing = tmp_path / "nope.yaml"
    [problem] = loading.validate_file(missing)
    assert (problem.file, problem.line, problem.column) == (str(missing), 1, 1)
    assert "There is no pipeline file" in problem.message and problem.hint
    with pytest.raises(PipelineInvalid):
        loading.load_pipeline(missing)
    [problem] = loading.validate_file(tmp_path)
    assert "is a folder" in problem.message


def test_a_file_that_is_not_utf8_is_named_where_it_goes_wrong(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: p\ndescription: caf\xe9\n")
    [problem] = loading.validate_file(path)
    assert (problem.line, problem.column) == (2, 17) and "not UTF-8" in problem.message


def test_a_reference_column_points_inside_the_text() -> None:
    text = steps_yaml("""\
        s:
          kind: shell
          params:
            command: echo ${params.x} and ${params.y}
        """, head="name: p\nparams: {x: 1}\n")
    problem = only_problem(text)
    assert (problem.line, problem.column) == at(text, "${params.y}")


# --------------------------------------------------------------------------- speed


def chain(n: int) -> str:
    lines = ["name: long-chain", "params:", "  data: a.csv", "steps:",
             "  s0:", "    kind: import", "    params: {path: \"${params.data}\", name: d}"]
    for i in range(1, n):
        lines += [f"  s{i}:", "    kind: split", f"    params: {{dataset: \"${{steps.s{i - 1}.outputs.dataset_version_id}}\", seed: {i}}}",
                  "    retries: 1"]
    return "\n".join(lines) + "\n"


def test_a_200_step_pipeline_validates_quickly(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(chain(200))
    loading.validate_file(path)  # warm up imports
    started = time.perf_counter()
    problems = loading.validate_file(path)
    elapsed = time.perf_counter() - started
    assert problems == []
    p = loading.load_pipeline(path)
    assert len(p.steps) == 200 and p.steps[-1].needs == ("s198",)
    assert p.levels()["s199"] == 199
    assert elapsed < 1.0, f"validating 200 steps took {elapsed * 1000:.0f} ms (target under 100 ms)"


def test_a_cycle_through_200_steps_is_found_without_recursion_trouble() -> None:
    text = chain(200).replace("params: {path: \"${params.data}\", name: d}",
                              "params: {path: \"${params.data}\", name: d}\n    needs: [s199]")
    problems = loading.validate_text(text)
    assert len(problems) == 1 and "form a cycle: s0 needs s199, s199 needs s198" in problems[0].message
    assert problems[0].line == at(text, "  s0:")[0]


# --------------------------------------------------------------------------- nothing recorded


def test_an_invalid_file_writes_nothing_to_the_store(store, tmp_path: Path) -> None:
    from modelyard.core.pipelines import catalog
    from modelyard.core.store import models as m
    from sqlalchemy import func, select

    def counts() -> tuple[int, int]:
        with store.session() as s:
            return (s.scalar(select(func.count()).select_from(m.Pipeline)),
                    s.scalar(select(func.count()).select_from(m.AuditEvent)))

    before = counts()
    path = tmp_path / "bad.yaml"
    for text in (GOOD.replace("kind: gate", "kind: gait"), "name: p\nsteps: [\n", ""):
        path.write_text(text)
        with pytest.raises(PipelineInvalid) as err:
            catalog.add_pipeline_file(store, path)
        assert err.value.problems == loading.validate_file(path)
        assert counts() == before
    with pytest.raises(PipelineInvalid):
        catalog.add_pipeline_file(store, tmp_path / "missing.yaml")
    assert counts() == before


# --------------------------------------------------------------------------- the reference stays true


def test_the_file_format_reference_lists_every_kind_key_and_trigger_as_the_code_has_them() -> None:
    import re

    from modelyard.core.pipelines.spec import MISSED_POLICIES, NOTIFY_ON, STEP_KINDS

    doc = (Path(__file__).resolve().parents[3] / "docs" / "pipelines.md").read_text(encoding="utf-8")
    table = doc.split("<!-- step kinds:")[1].split("<!-- end of step kinds -->")[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = tuple(tuple(re.findall(r"`([^`]+)`", c)) for c in cells[1:])
    assert rows == {k: (v["required"], v["optional"], v["outputs"]) for k, v in STEP_KINDS.items()}
    for kind in STEP_KINDS:
        assert f"- **`{kind}`**" in doc, f"docs/pipelines.md does not describe the {kind} step"
    for key in (*loading.TOP_KEYS, *loading.STEP_KEYS, *loading.NOTIFY_KEYS, *MISSED_POLICIES, *NOTIFY_ON,
                *{k for keys in loading.TRIGGER_KEYS.values() for k in keys}):
        assert f"`{key}" in doc, f"docs/pipelines.md does not mention {key!r}"
