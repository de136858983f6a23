"""A pipeline YAML file -> :class:`~.spec.Pipeline`, or every problem it has with file, line and column.

The file is composed with PyYAML (libyaml when it is there) into nodes, which keep where each
value starts; the checks walk those nodes, so a problem points at the offending key or value
(1-based line and column) and says what to do. Nothing here writes anything: the catalog lists a
pipeline only once it loads without a problem (:func:`~.catalog.add_pipeline_file`).

* :func:`load_pipeline` / :func:`load_text` return the pipeline or raise
  :class:`~.spec.PipelineInvalid` with every problem found.
* :func:`validate_file` / :func:`validate_text` return the problems (an empty list: valid) and
  never raise for a bad file.

A step's ``needs`` holds its explicit ``needs`` followed by every step its params reference
(``${steps.<name>.outputs.<key>}``). Paths in params stay as written (the runner resolves them
against :attr:`Pipeline.folder`); a ``new_file`` trigger's folder is made absolute here.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from croniter import croniter
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from modelyard.core.pipelines import refs
from modelyard.core.pipelines.graph import cycle_path, strongly_connected
from modelyard.core.pipelines.nodes import (
    MERGE,
    a_or_an,
    column_of,
    describe,
    duplicates,
    is_null,
    kind_of,
    kind_word,
    refs_in,
)
from modelyard.core.pipelines.spec import (
    MISSED_POLICIES,
    NOTIFY_ON,
    STEP_KINDS,
    Pipeline,
    PipelineInvalid,
    Problem,
    Step,
    Trigger,
)


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML's safe types, libyaml's speed when it is there; a date stays the text it was written as
    (a pipeline is stored and handed to jobs as JSON, which has no dates)."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))

TOP_KEYS = ("name", "description", "params", "triggers", "notify", "steps")
STEP_KEYS = ("kind", "params", "needs", "retries", "retry_delay", "timeout", "cache")
NOTIFY_KEYS = ("on", "email", "webhook")
TRIGGER_KEYS = {"schedule": ("schedule", "missed"), "new_file": ("on", "folder", "pattern", "param"),
                "drift": ("on", "model", "param"), "live_drift": ("on", "model", "param")}
_PIPELINE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]{0,199}$")
_FORMAT = "see docs/pipelines.md for the file format"


def _closest(word: str, choices: Iterable[str]) -> str | None:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return match[0] if match else None


def _suggest(word: str, choices: Iterable[str], what: str) -> str:
    """'Did you mean 'x'? <what>: a, b, c.' — a hint for a word that is not one of ``choices``."""
    choices = list(choices)
    near = _closest(word, choices)
    known = f"{what}: {', '.join(choices)}." if choices else f"There are no {what.lower()}."
    return f"Did you mean '{near}'? {known}" if near else known


def _and(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


class _Check:
    """One pass over a composed file: collects problems and builds the pipeline's parts."""

    def __init__(self, file: str, folder: str, loader: Any) -> None:
        self.file = file
        self.folder = folder
        self.loader = loader
        self.problems: list[Problem] = []

    # ----------------------------------------------------------------- helpers

    def add(self, node: Node | None, message: str, hint: str | None = None, *, column_offset: int = 0) -> None:
        if node is None:
            line, column = 1, 1
        else:
            line, column = node.start_mark.line + 1, node.start_mark.column + 1 + column_offset
        self.problems.append(Problem(self.file, line, column, message, hint))

    def value(self, node: Node, where: str = "This value") -> Any:
        """The Python value of ``node`` (YAML's safe types); a value YAML cannot build, or that JSON
        cannot hold, is a problem (``where`` names it) and None."""
        try:
            value = self.loader.construct_object(node, deep=True)
            if not isinstance(value, str | int | float | bool | type(None)):
                json.dumps(value)
            return value
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            why = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            self.add(node, f"{where} cannot be read or stored: {why}.",
                     "Write text, numbers, true/false, lists or mappings (quote anything else to make it text).")
            return None

    def pairs(self, node: MappingNode, where: str) -> list[tuple[str, Node, Node]]:
        """A mapping's (key text, key node, value node), merge keys (``<<``) applied, later keys winning."""
        self.flatten(node)
        out: dict[str, tuple[str, Node, Node]] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, ScalarNode):
                self.add(knode, f"A key in {where} is {a_or_an(kind_word(knode))}; keys must be plain names.",
                         "Write 'name: value' pairs.")
                continue
            out[knode.value] = (knode.value, knode, vnode)
        return list(out.values())

    def flatten(self, node: Node) -> None:
        """Apply merge keys (``<<: *defaults``) in place; a merge YAML cannot do is a problem."""
        if isinstance(node, MappingNode):
            try:
                self.loader.flatten_mapping(node)
            except yaml.YAMLError as exc:
                node.value = [(k, v) for k, v in node.value if k.tag != MERGE]
                self.add(node, f"A merge key ('<<') here cannot be applied: {getattr(exc, 'problem', None) or exc}.",
                         "Merge a mapping (an anchor such as '<<: *defaults') or remove the '<<' line.")

    def mapping(self, node: Node | None, where: str, example: str) -> MappingNode | None:
        """``node`` if it is a mapping; null is an empty mapping (None returned); else a problem."""
        if node is None or is_null(node):
            return None
        if isinstance(node, MappingNode):
            return node
        self.add(node, f"{where} must be a mapping, not {a_or_an(kind_word(node))}.", f"Write it as {example}.")
        return None

    def check_keys(self, pairs: list[tuple[str, Node, Node]], allowed: tuple[str, ...], where: str) -> None:
        for key, knode, _ in pairs:
            if key not in allowed:
                self.add(knode, f"{where} has an unknown key '{key}'.", _suggest(key, allowed, "Its keys"))

    def string(self, node: Node, where: str, hint: str) -> str | None:
        value = self.value(node) if isinstance(node, ScalarNode) else node
        if isinstance(value, str) and value.strip():
            return value
        self.add(node, f"{where} must be text, not {describe(node)}.", hint)
        return None

    def string_list(self, node: Node, where: str, hint: str) -> list[tuple[str, Node]]:
        """A list of texts (a single text is a list of one), each with its node."""
        if isinstance(node, ScalarNode) and not is_null(node):
            one = self.string(node, where, hint)
            return [(one, node)] if one is not None else []
        if is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.add(node, f"{where} must be a list, not {a_or_an(kind_word(node))}.", hint)
            return []
        out = []
        for item in node.value:
            text = self.string(item, f"An item of {where}", hint)
            if text is not None:
                out.append((text, item))
        return out

    # ----------------------------------------------------------------- the file

    def pipeline(self, root: Node, text: str) -> Pipeline | None:
        for knode, where, first in duplicates(root):
            self.add(knode, f"The key '{knode.value}' appears twice in {where} (first at line "
                            f"{first.start_mark.line + 1}).",
                     "Remove or rename one of them; YAML would silently keep only the last.")
        if not isinstance(root, MappingNode):
            self.add(root, f"The file holds {a_or_an(kind_word(root))}, not a mapping of pipeline fields.",
                     f"Start with 'name: <pipeline>' and 'steps:' at the left margin; {_FORMAT}.")
            return None
        top = {key: (knode, vnode) for key, knode, vnode in self.pairs(root, "the file")}
        self.check_keys([(k, kn, vn) for k, (kn, vn) in top.items()], TOP_KEYS, "The pipeline")
        for required in ("name", "steps"):
            if required not in top:
                self.add(root, f"The pipeline has no '{required}'.",
                         "Add 'name: <letters, digits, _ or ->' at the top." if required == "name"
                         else "Add 'steps:' with at least one step (a name, then 'kind:' and 'params:').")

        name = self.name(top["name"][1]) if "name" in top else None
        description = None
        if "description" in top and not is_null(top["description"][1]):
            description = self.string(top["description"][1], "The pipeline's 'description'",
                                      "Write one line of text (quote it if it holds ': ').")
        params, param_nodes = self.params(top.get("params", (None, None))[1])
        triggers = self.triggers(top.get("triggers", (None, None))[1], params)
        notify = self.notify(top.get("notify", (None, None))[1])
        steps = self.steps(top["steps"][1], params) if "steps" in top else []
        for pname, pnode in param_nodes:  # defaults are values, not templates
            for ref in refs.find(params[pname]):
                self.add(pnode, f"Parameter '{pname}' holds a reference '${{{ref.text}}}'; parameter defaults "
                                "are plain values.", "Write the value itself (or $${ for a literal ${).")
        if self.problems or name is None:
            return None
        return Pipeline(name=name, path=self.file, folder=self.folder, steps=tuple(steps), params=params,
                        triggers=tuple(triggers), notify=notify, description=description,
                        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())

    def name(self, node: Node) -> str | None:
        value = self.string(node, "The pipeline's 'name'", "Write a name of letters, digits, _ or -.")
        if value is not None and not _PIPELINE_NAME.match(value):
            self.add(node, f"The pipeline's name '{value}' may hold only letters, digits, _ and -.",
                     f"For example '{re.sub(r'[^A-Za-z0-9_-]+', '-', value).strip('-')[:200] or 'nightly'}'.")
            return None
        return value

    def params(self, node: Node | None) -> tuple[dict[str, Any], list[tuple[str, Node]]]:
        mnode = self.mapping(node, "'params'", "'params:' followed by indented 'name: default' lines")
        params: dict[str, Any] = {}
        nodes: list[tuple[str, Node]] = []
        for key, knode, vnode in self.pairs(mnode, "'params'") if mnode else []:
            if not refs.is_name(key):
                self.add(knode, f"Parameter name '{key}' may hold only letters, digits, _ and - "
                                "(not starting with a digit).", "Rename it; steps use it as ${params.<name>}.")
                continue
            params[key] = self.value(vnode, f"Parameter '{key}'")
            nodes.append((key, vnode))
        return params, nodes

    # ----------------------------------------------------------------- triggers

    def triggers(self, node: Node | None, params: dict[str, Any]) -> list[Trigger]:
        if node is None or is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.add(node, f"'triggers' must be a list, not {a_or_an(kind_word(node))}.",
                     "Write each trigger on a line starting with '- ' (e.g. '- schedule: \"0 2 * * *\"').")
            return []
        out = []
        for index, item in enumerate(node.value):
            trigger = self.trigger(index, item, params)
            if trigger is not None:
                out.append(trigger)
        return out

    def trigger(self, index: int, node: Node, params: dict[str, Any]) -> Trigger | None:
        example = "'schedule: \"0 2 * * *\"', 'on: new_file' (with 'folder:') or 'on: drift' (with 'model:')"
        if not isinstance(node, MappingNode):
            self.add(node, f"Trigger {index + 1} must be a mapping, not {a_or_an(kind_word(node))}.",
                     f"Start it with {example}.")
            return None
        fields = {key: (knode, vnode) for key, knode, vnode in self.pairs(node, "a trigger")}
        if "schedule" in fields and "on" in fields:
            self.add(fields["on"][0], f"Trigger {index + 1} has both 'schedule' and 'on'.",
                     "Write the schedule and the 'on:' trigger as two items of 'triggers'.")
            return None
        if "schedule" in fields:
            kind = "schedule"
        elif "on" in fields:
            kind = self.string(fields["on"][1], f"Trigger {index + 1}'s 'on'", "Write 'on: new_file' or 'on: drift'.")
            if kind is None:
                return None
            if kind not in ("new_file", "drift", "live_drift"):
                self.add(fields["on"][1], f"Trigger {index + 1} has an unknown type 'on: {kind}'.",
                         _suggest(kind, ("new_file", "drift", "live_drift"), "Known 'on:' types") +
                         " (A cron schedule is written 'schedule: \"<cron>\"'.)")
                return None
        else:
            self.add(node, f"Trigger {index + 1} has no type.", f"Start it with {example}.")
            return None
        where = "The schedule trigger" if kind == "schedule" else f"The {kind} trigger"
        self.check_keys([(k, kn, vn) for k, (kn, vn) in fields.items()], TRIGGER_KEYS[kind], where)
        key = f"{kind}:{index}"
        param = None
        if "param" in fields:
            param = self.string(fields["param"][1], f"{where}'s 'param'", "Name one of the pipeline's parameters.")
            if param is not None and param not in params:
                self.add(fields["param"][1], f"{where}'s param '{param}' is not a parameter of the pipeline.",
                         f"Declare it under 'params:' (e.g. '{param}: null') so a run started by hand has a "
                         "default." + (f" Did you mean '{_closest(param, params)}'?" if _closest(param, params) else ""))
                param = None
        if kind == "schedule":
            return self.schedule(key, node, fields)
        if kind == "new_file":
            if "folder" not in fields:
                self.add(node, "The new_file trigger has no 'folder'.",
                         "Add 'folder: <path>' (relative to the pipeline file's folder), e.g. 'folder: incoming'.")
                return None
            folder = self.string(fields["folder"][1], "The new_file trigger's 'folder'",
                                 "Write a path relative to the pipeline file's folder.")
            pattern = "*"
            if "pattern" in fields:
                pattern = self.string(fields["pattern"][1], "The new_file trigger's 'pattern'",
                                      "Write a file name pattern such as \"*.csv\" (quoted).") or "*"
            if folder is None:
                return None
            absolute = os.path.normpath(os.path.join(self.folder, os.path.expanduser(folder)))
            return Trigger(key=key, type="new_file", folder=absolute, pattern=pattern, param=param)
        if "model" not in fields:
            self.add(node, f"The {kind} trigger has no 'model'.",
                     "Add 'model: <registered model name>' (its drift " + ("checks" if kind == "drift" else
                                                                          "alerts of the live view") +
                     " start the pipeline).")
            return None
        model = self.string(fields["model"][1], f"The {kind} trigger's 'model'", "Name a registered model.")
        return Trigger(key=key, type=kind, model=model, param=param) if model else None

    def schedule(self, key: str, node: Node, fields: dict[str, tuple[Node, Node]]) -> Trigger | None:
        cron_hint = ("Write five fields, minute hour day-of-month month day-of-week, in quotes: "
                     "\"0 2 * * *\" is every day at 02:00.")
        snode = fields["schedule"][1]
        expr = self.string(snode, "The schedule", cron_hint)
        missed = "run_once"
        if "missed" in fields:
            missed = self.string(fields["missed"][1], "The schedule's 'missed'", "Write run_once or skip.") or ""
            if missed and missed not in MISSED_POLICIES:
                self.add(fields["missed"][1], f"The schedule's missed policy '{missed}' is not known.",
                         _suggest(missed, MISSED_POLICIES, "Known policies") +
                         " (run_once: one run on start after the machine was off; skip: wait for the next time.)")
                missed = ""
        if expr is None:
            return None
        if not croniter.is_valid(expr):
            try:
                croniter(expr)
                why = ""
            except Exception as exc:  # croniter's own message says which field is wrong
                why = f": {str(exc).strip().rstrip('.')}"
            self.add(snode, f"The schedule '{expr}' is not a valid cron expression{why}.", cron_hint)
            return None
        return Trigger(key=key, type="schedule", cron=expr, missed=missed) if missed else None

    # ----------------------------------------------------------------- notify

    def notify(self, node: Node | None) -> dict[str, Any]:
        out: dict[str, Any] = {"on": ["failed", "blocked"]}
        mnode = self.mapping(node, "'notify'", "'notify:' with 'on: [failed, blocked]' indented below it")
        if mnode is None:
            return out
        fields = self.pairs(mnode, "'notify'")
        self.check_keys(fields, NOTIFY_KEYS, "'notify'")
        for key, _knode, vnode in fields:
            if key == "on":
                hint = f"Write a list of: {', '.join(NOTIFY_ON)} (e.g. 'on: [failed, blocked]')."
                chosen = []
                for text, item in self.string_list(vnode, "'notify.on'", hint):
                    if text in NOTIFY_ON:
                        chosen.append(text)
                    else:
                        self.add(item, f"'notify.on' has an unknown ending '{text}'.",
                                 _suggest(text, NOTIFY_ON, "Endings that notify"))
                out["on"] = list(dict.fromkeys(chosen))
            elif key == "email":
                value = self.value(vnode) if isinstance(vnode, ScalarNode) else None
                if isinstance(value, bool):
                    out["email"] = value
                else:
                    hint = "Write true, false, or a list of addresses (e.g. [ops@example.com])."
                    out["email"] = [t for t, _ in self.string_list(vnode, "'notify.email'", hint)]
            elif key == "webhook":
                value = self.value(vnode)
                if isinstance(value, bool):
                    out["webhook"] = value
                else:
                    self.add(vnode, f"'notify.webhook' must be true or false, not {describe(vnode)}.",
                             "The webhook's URL is a store setting ('modelyard notify'); here say whether to use it.")
        return out

    # ----------------------------------------------------------------- steps

    def steps(self, node: Node, params: dict[str, Any]) -> list[Step]:
        if is_null(node) or (isinstance(node, MappingNode) and not node.value):
            self.add(node, "'steps' is empty.", "Add at least one step: a name, then 'kind:' and 'params:' indented.")
            return []
        if not isinstance(node, MappingNode):
            self.add(node, f"'steps' must be a mapping of step names to steps, not {a_or_an(kind_word(node))}.",
                     "Write each step as 'name:' followed by indented 'kind:' and 'params:'.")
            return []
        entries = self.pairs(node, "'steps'")
        names = [key for key, _, _ in entries]
        for _, _, vnode in entries:
            self.flatten(vnode)
        kinds = {key: kind_of(vnode) for key, _, vnode in entries}
        built: list[dict[str, Any]] = []
        for position, (name, knode, vnode) in enumerate(entries):
            if not refs.is_name(name):
                self.add(knode, f"Step name '{name}' may hold only letters, digits, _ and - (not starting with "
                                "a digit).", "Rename it; other steps refer to it as ${steps.<name>.outputs.<key>}.")
            data = self.step(name, knode, vnode, position, names, params, kinds)
            if data is not None:
                built.append(data)
        self.cycles(built, {key: knode for key, knode, _ in entries})
        return [Step(**d) for d in built]

    def step(self, name: str, knode: Node, node: Node, position: int, names: list[str], params: dict[str, Any],
             kinds: dict[str, str | None]) -> dict[str, Any] | None:
        where = f"Step '{name}'"
        if not isinstance(node, MappingNode):
            self.add(node if not is_null(node) else knode, f"{where} must be a mapping, not {describe(node)}.",
                     "Indent 'kind:' and 'params:' under the step's name.")
            return None
        fields = {key: (kn, vn) for key, kn, vn in self.pairs(node, f"step '{name}'")}
        self.check_keys([(k, kn, vn) for k, (kn, vn) in fields.items()], STEP_KEYS, where)
        kind = None
        if "kind" not in fields:
            self.add(knode, f"{where} has no 'kind'.", f"Add 'kind:' with one of: {', '.join(STEP_KINDS)}.")
        else:
            kind = self.string(fields["kind"][1], f"{where}: 'kind'", f"Write one of: {', '.join(STEP_KINDS)}.")
            if kind is not None and kind not in STEP_KINDS:
                self.add(fields["kind"][1], f"{where} has an unknown kind '{kind}'.",
                         _suggest(kind, STEP_KINDS, "Known kinds"))
                kind = None
        step_params: dict[str, Any] = {}
        pnode = None
        if "params" in fields:
            pnode = self.mapping(fields["params"][1], f"{where}: 'params'", "'params:' with indented 'name: value' lines")
            for key, pk, pv in self.pairs(pnode, f"step '{name}' params") if pnode else []:
                step_params[key] = self.value(pv, f"{where}: param '{key}'")
                if kind is not None and key not in STEP_KINDS[kind]["required"] + STEP_KINDS[kind]["optional"]:
                    allowed = STEP_KINDS[kind]["required"] + STEP_KINDS[kind]["optional"]
                    self.add(pk, f"{where} ({kind}) has an unknown param '{key}'.",
                             _suggest(key, allowed, f"{a_or_an(kind).capitalize()} step takes"))
                elif (kind, key) in _SHAPES:
                    self.shape(where, kind, key, pv, step_params[key])
        if kind is not None:
            missing = [p for p in STEP_KINDS[kind]["required"] if p not in step_params]
            if missing:
                at = fields["params"][0] if "params" in fields else knode
                self.add(at, f"{where} ({kind}) is missing required param{'s' if len(missing) > 1 else ''} "
                             f"{_and(missing)}.",
                         f"Add {', '.join(f'{p}: ...' for p in missing)} under its 'params:'.")

        needs: list[str] = []
        if "needs" in fields:
            hint = "Write a list of step names, e.g. 'needs: [load]'."
            for text, item in self.string_list(fields["needs"][1], f"{where}: 'needs'", hint):
                if text in names:
                    needs.append(text)
                else:
                    self.add(item, f"{where} needs '{text}', which is not a step of this pipeline.",
                             _suggest(text, names, "Its steps"))
        if pnode is not None:
            for ref, rnode in refs_in(pnode):
                target = self.reference(name, ref, rnode, names, params, kinds)
                if target is not None:
                    needs.append(target)

        data: dict[str, Any] = {"name": name, "kind": kind, "params": step_params, "needs": tuple(dict.fromkeys(needs)),
                                "position": position, "line": knode.start_mark.line + 1}
        for key, check, default in (("retries", _int_at_least_0, 0), ("retry_delay", _seconds_at_least_0, 1.0),
                                    ("timeout", _seconds_or_none, None), ("cache", _boolean, True)):
            if key in fields:
                value = self.value(fields[key][1])
                problem = check(value)
                if problem:
                    self.add(fields[key][1], f"{where}: '{key}' must be {problem}, not {describe(fields[key][1])}.",
                             _FIELD_HINTS[key])
                    continue
                data[key] = float(value) if key in ("retry_delay", "timeout") and value is not None else value
            else:
                data[key] = default
        return data if kind is not None else None

    def shape(self, where: str, kind: str, key: str, node: Node, value: Any) -> None:
        """The few params whose shape the runner relies on, when written literally (a reference is
        checked when the run resolves it)."""
        if (isinstance(value, str) and next(refs.find(value), None) and key != "function") or (
                value is None and not is_null(node)):  # a reference; or a value already reported
            return
        want, hint = _SHAPES[(kind, key)]
        if want == "mapping" and not isinstance(value, dict):
            self.add(node, f"{where} ({kind}): '{key}' must be a mapping, not {describe(node)}.", hint)
        elif want == "function" and not (isinstance(value, str) and re.fullmatch(r"\s*[\w.]+\s*:\s*\w+\s*", value)):
            self.add(node, f"{where} (python): '{key}' must be module:function, not {describe(node)}.", hint)

    def reference(self, step: str, ref: refs.Ref, node: Node, names: list[str], params: dict[str, Any],
                  kinds: dict[str, str | None]) -> str | None:
        """Check one ``${...}`` in a step's params; the step it names when it is a valid step reference."""
        where = f"Step '{step}'"
        col = column_of(node, ref.offset)
        if ref.problem:
            self.add(node, f"{where}: {ref.problem}", "See 'References' in docs/pipelines.md.", column_offset=col)
            return None
        text = f"${{{ref.text}}}"
        if ref.scope == "params":
            if ref.name not in params:
                self.add(node, f"{where} references {text}, but the pipeline has no parameter '{ref.name}'.",
                         _suggest(ref.name, params, "Its parameters") + " Declare it under 'params:'.",
                         column_offset=col)
            return None
        if ref.name not in names:
            self.add(node, f"{where} references {text}, but there is no step '{ref.name}'.",
                     _suggest(ref.name, names, "Its steps"), column_offset=col)
            return None
        if ref.name == step:
            self.add(node, f"{where} references its own outputs ({text}).",
                     "A step can use only the outputs of steps that run before it.", column_offset=col)
            return None
        target_kind = kinds.get(ref.name)
        if target_kind in STEP_KINDS:
            outputs = STEP_KINDS[target_kind]["outputs"]
            if ref.key not in outputs:
                self.add(node, f"{where} references {text}, but {a_or_an(target_kind)} step has no output "
                               f"'{ref.key}'.", _suggest(ref.key or "", outputs, f"{a_or_an(target_kind).capitalize()} step's outputs"),
                         column_offset=col)
        return ref.name

    def cycles(self, steps: list[dict[str, Any]], key_nodes: dict[str, Node]) -> None:
        """Every cycle of ``needs`` (a strongly connected set of steps), named, at its first step's line."""
        graph = {d["name"]: [n for n in d["needs"]] for d in steps}
        order = {d["name"]: d["position"] for d in steps}
        for group in strongly_connected(graph):
            if len(group) == 1 and group[0] not in graph.get(group[0], ()):
                continue
            first = min(group, key=order.__getitem__)
            path = cycle_path(first, set(group), graph)
            if len(path) == 1:
                self.add(key_nodes[first], f"Step '{first}' needs itself.", "Remove it from its own 'needs'.")
                continue
            chain = ", ".join(f"{a} needs {b}" for a, b in zip(path, path[1:] + path[:1], strict=True))
            self.add(key_nodes[first], f"Steps {_and(sorted(group, key=order.__getitem__))} form a cycle: {chain}.",
                     "Remove one of these needs or ${steps...} references so the steps can run in order.")


def _int_at_least_0(value: Any) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else "a whole number, 0 or more"


def _seconds_at_least_0(value: Any) -> str | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return None if ok else "a number of seconds, 0 or more"


def _seconds_or_none(value: Any) -> str | None:
    ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool) and value > 0)
    return None if ok else "a number of seconds above 0"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false"


#: (kind, param) -> (the shape it needs, a hint)
_SHAPES = {
    ("python", "function"): ("function", "Write the module and the function, e.g. 'function: steps.features:build' "
                                         "(the module is looked for in the pipeline's folder)."),
    ("python", "args"): ("mapping", "Write the keyword arguments as 'args: {name: value, ...}'."),
    ("shell", "env"): ("mapping", "Write the variables as 'env: {NAME: value, ...}'."),
    ("check", "config"): ("mapping", "Write drift settings as a mapping, e.g. 'config: {rule: {drift_share: 0.3}}'."),
    ("import", "options"): ("mapping", "Write import options as a mapping, e.g. 'options: {target: churned}'."),
}

_FIELD_HINTS = {
    "retries": "Write how many extra attempts to make after a failure, e.g. 'retries: 2'.",
    "retry_delay": "Write the seconds to wait before the first retry (it doubles after each), e.g. 'retry_delay: 5'.",
    "timeout": "Write the seconds one attempt may take, e.g. 'timeout: 600', or leave it out for no limit.",
    "cache": "Write 'cache: false' to run the step every time, or leave it out.",
}


# --------------------------------------------------------------------------- entry points


def _malformed(file: str, text: str, exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = (getattr(exc, "problem", None) or str(exc).splitlines()[0]).strip()
    context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and cmark is not None and (cmark.line + 1, cmark.column + 1) != (line, column):
        problem += f" ({context} at line {cmark.line + 1}, column {cmark.column + 1})"
    elif context:
        problem += f" ({context})"
    lines = text.splitlines()
    at_line = lines[line - 1] if 0 < line <= len(lines) else ""
    at = at_line[column - 1:column]
    if at == "\t" or "'\\t'" in problem:
        hint = "Indent with spaces; YAML does not allow tabs."
    elif "${" in at_line and "flow" in problem:
        hint = "Quote values that hold a reference inside { } or [ ]: write \"${...}\"."
    elif "single document" in problem:
        hint = "Keep one pipeline per file: remove the '---' that starts a second document."
    else:
        hint = ("Check the indentation and quoting here: quote values that hold ': ', ' #' or start with "
                "'@', '*', '&', '{' or '['.")
    return Problem(file, line, column, f"The file is not valid YAML: {problem}.", hint)


def _check_text(text: str, file: str, folder: str) -> tuple[Pipeline | None, list[Problem]]:
    loader = _Loader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as exc:
            return None, [_malformed(file, text, exc)]
        if root is None:
            return None, [Problem(file, 1, 1, "The file is empty.",
                                  f"A pipeline needs at least 'name:' and 'steps:'; {_FORMAT}.")]
        check = _Check(file, folder, loader)
        pipeline = check.pipeline(root, text)
        problems = sorted(check.problems, key=lambda p: (p.line, p.column))
        return (pipeline if not problems else None), problems
    finally:
        loader.dispose()


def load_text(text: str, *, file: str = "<text>", folder: str = ".") -> Pipeline:
    """The pipeline written in ``text``; ``file`` names it in messages and ``folder`` is what its
    relative paths are relative to. Raises :class:`PipelineInvalid` with every problem."""
    pipeline, problems = _check_text(text, file, os.path.abspath(folder))
    if problems or pipeline is None:
        raise PipelineInvalid(problems)
    return pipeline


def validate_text(text: str, *, file: str = "<text>", folder: str = ".") -> list[Problem]:
    """Every problem in the pipeline written in ``text`` (an empty list: it is valid)."""
    return _check_text(text, file, os.path.abspath(folder))[1]


def _read(path: str | os.PathLike[str]) -> tuple[str | None, bytes, list[Problem]]:
    file = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None, b"", [Problem(file, 1, 1, f"There is no pipeline file {file}.",
                                   "Check the path (relative paths start from the current folder).")]
    except IsADirectoryError:
        return None, b"", [Problem(file, 1, 1, f"{file} is a folder, not a pipeline file.",
                                   "Give the pipeline's YAML file inside it.")]
    except OSError as exc:
        return None, b"", [Problem(file, 1, 1, f"Cannot read {file}: {exc.strerror or exc}.",
                                   "Check that the file exists and that you may read it.")]
    try:
        return data.decode("utf-8-sig"), data, []
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, data, [Problem(file, line, column, f"{file} is not UTF-8 text (byte {exc.start}).",
                                    "Save the pipeline file as UTF-8.")]


def _load_file(path: str | os.PathLike[str]) -> tuple[Pipeline | None, list[Problem]]:
    text, data, problems = _read(path)
    if text is None:
        return None, problems
    absolute = os.path.abspath(path)
    pipeline, problems = _check_text(text, str(path), os.path.dirname(absolute))
    if pipeline is not None:
        pipeline = replace(pipeline, path=absolute, sha256=hashlib.sha256(data).hexdigest())
    return pipeline, problems


def load_pipeline(path: str | os.PathLike[str]) -> Pipeline:
    """The pipeline in the YAML file at ``path`` (read once; ``sha256`` of its bytes; ``path``
    absolute, ``folder`` its parent). Raises :class:`PipelineInvalid` with every problem."""
    pipeline, problems = _load_file(path)
    if problems or pipeline is None:
        raise PipelineInvalid(problems)
    return pipeline


def validate_file(path: str | os.PathLike[str]) -> list[Problem]:
    """Every problem in the pipeline file at ``path`` (an empty list: it is valid); a missing or
    unreadable file is one problem at 1:1. Never raises for a bad file."""
    return _load_file(path)[1]


__all__ = ["load_pipeline", "load_text", "validate_file", "validate_text", "TOP_KEYS", "STEP_KEYS", "NOTIFY_KEYS",
           "TRIGGER_KEYS"]
