"""Lineage graphs: where a model version (or a dataset version) came from and where it went.

::

    from modelyard.core.registry import lineage

    graph = lineage.version_lineage(store, "churn@v3")
    for column in graph.columns():            # left to right, in the order of the arrows
        print([node.label for node in column])
    graph.to_json()                           # what 'modelyard model lineage --json' prints

A graph is plain data: :class:`LineageNode` (``id`` "type:key", ``type``, ``key``, a human
``label``, a ``role`` and a ``details`` dict of JSON values) and :class:`LineageEdge` (``src``,
``dst``, ``relation``, ``details``, and ``recorded``: True for a row of ``lineage_edges``, False
for an arrow read from a foreign key). Node types are the record types of ``lineage_edges``:
``file`` (a dataset version's source file; its key is the path and modification time),
``dataset_version``, ``run`` (key: the run's uuid), ``model_version``, ``bundle`` (key: its
sha256), ``server`` ("host:port"), ``monitoring_check``; any other type recorded by a later
feature is shown with a generic label.

What :func:`version_lineage` reads (one read session, a few queries per level):

upstream (role ``upstream``)
    every ``lineage_edges`` row into the version (``run -registered_as->``,
    ``dataset_version -trained->``, ``bundle -imported_as->``), then the run's dataset version
    (``runs.dataset_version_id``; the edge ``used_by`` carries the split), each dataset version's
    source file (``imported_as``) and parent versions (``parent_of``, at most
    :data:`MAX_DATASET_ANCESTORS` generations; ``hidden`` counts the older ones), and so on up;
    a run that came from a retraining shows the drift check (``retrained_as``), its batch and the
    model version it checked. Other model versions are shown but not followed further.
downstream (role ``downstream``)
    every ``lineage_edges`` row out of the version (bundles ``exported_as``, servers
    ``served_by``, scored datasets ``scored``, ...), its drift checks
    (``monitoring_checks.model_version_id``, drawn ``monitored_by``), retraining runs
    (``retrained_as``) and the model versions they were registered as, and versions imported
    from its bundles. At most :data:`LIMIT_PER_RELATION` of each relation per record are
    shown, newest first; ``hidden`` counts the rest.
side inputs (role ``input``)
    the dataset version a scoring read (``scored_into``), the batch a drift check read
    (``checked``) and the data a retraining run trained on: shown, not followed.

A ``dataset_version -trained-> model_version`` edge is left out when the same dataset version
reaches the model version through its run (it says the same thing twice).

:meth:`LineageGraph.columns` lays the nodes out left to right so every arrow points right:
upstream nodes as far right as their arrows allow (a source file sits just left of its dataset
version); downstream nodes at least as far right as their type's place after the focus's type in
``file, dataset_version, run, model_version, bundle|server|scored data, monitoring_check`` and
one column right of everything that points at them (so bundles, servers and scored data share a
column, drift checks come next, then retraining runs and their model versions); side inputs
just left of what read them. Empty columns are dropped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from modelyard.core.registry.versions import _resolve
from modelyard.core.store import Store, lookup
from modelyard.core.store import models as m

__all__ = [
    "LIMIT_PER_RELATION",
    "MAX_DATASET_ANCESTORS",
    "TYPE_TITLES",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "dataset_lineage",
    "version_lineage",
]

LIMIT_PER_RELATION = 25
MAX_DATASET_ANCESTORS = 5
MAX_NODES = 500
_MAX_DEPTH = 10
# the leftmost column each type may take (the contract order)
_MIN_COLUMN = {"file": 0, "dataset_version": 1, "run": 2, "model_version": 3, "bundle": 4, "server": 4,
               "monitoring_check": 5}
_TYPE_ORDER = ("file", "dataset_version", "run", "model_version", "bundle", "server", "monitoring_check")
TYPE_TITLES = {"file": "Source file", "dataset_version": "Dataset version", "run": "Run",
               "model_version": "Model version", "bundle": "Bundle", "server": "Server",
               "monitoring_check": "Drift check"}
ROLES = ("upstream", "focus", "input", "downstream")


# =========================================================================== plain records


@dataclass(frozen=True)
class LineageNode:
    id: str  # "type:key"
    type: str
    key: str
    label: str
    role: str  # upstream | focus | input | downstream
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def focus(self) -> bool:
        """True for the record the graph is about."""
        return self.role == "focus"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "key": self.key, "label": self.label, "role": self.role,
                "details": self.details}


@dataclass(frozen=True)
class LineageEdge:
    src: str
    dst: str
    relation: str
    details: dict[str, Any] = field(default_factory=dict)
    recorded: bool = True  # a lineage_edges row (False: read from a foreign key)

    def to_json(self) -> dict[str, Any]:
        return {"src": self.src, "dst": self.dst, "relation": self.relation, "details": self.details,
                "recorded": self.recorded}


@dataclass
class LineageGraph:
    focus: str
    nodes: list[LineageNode]
    edges: list[LineageEdge]
    hidden: dict[str, int] = field(default_factory=dict)  # relation -> records not shown

    def node(self, node_id: str) -> LineageNode:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def find(self, type_: str, key: str | int) -> LineageNode | None:
        wanted = f"{type_}:{key}"
        return next((n for n in self.nodes if n.id == wanted), None)

    def of_type(self, type_: str, role: str | None = None) -> list[LineageNode]:
        return [n for n in self.nodes if n.type == type_ and (role is None or n.role == role)]

    def edges_from(self, node_id: str) -> list[LineageEdge]:
        return [e for e in self.edges if e.src == node_id]

    def edges_to(self, node_id: str) -> list[LineageEdge]:
        return [e for e in self.edges if e.dst == node_id]

    def column_index(self) -> dict[str, int]:
        """Each node's column (0 = leftmost); every edge goes from a lower to a higher column."""
        ids = [n.id for n in self.nodes]
        types = {n.id: n.type for n in self.nodes}
        roles = {n.id: n.role for n in self.nodes}
        preds: dict[str, list[str]] = defaultdict(list)
        succs: dict[str, list[str]] = defaultdict(list)
        for e in self.edges:
            if e.src in types and e.dst in types and e.src != e.dst:
                preds[e.dst].append(e.src)
                succs[e.src].append(e.dst)
        order = _topological(ids, preds, succs)
        # upstream: as far right as the arrows allow (the longest path to the focus)
        dist: dict[str, int] = {self.focus: 0} if self.focus in types else {}
        for nid in reversed(order):
            if roles[nid] == "upstream":
                dist[nid] = max([dist[t] + 1 for t in succs[nid] if t in dist], default=1)
        focus_col = max(dist.values(), default=0)
        col = {nid: focus_col - d for nid, d in dist.items()}
        # downstream: at least the type's place after the focus's type, and right of all that points at it
        base = _MIN_COLUMN.get(types.get(self.focus, ""), 3)
        for nid in order:
            if nid not in col and roles[nid] != "input":
                floor = focus_col + max(1, _MIN_COLUMN.get(types[nid], base + 1) - base)
                col[nid] = max([floor] + [col[p] + 1 for p in preds[nid] if p in col])
        # side inputs: just left of what read them
        for nid in order:
            if nid not in col:
                col[nid] = max(0, min([col[t] for t in succs[nid] if t in col], default=focus_col + 1) - 1)
        used = sorted(set(col.values()))
        squeeze = {c: i for i, c in enumerate(used)}
        return {nid: squeeze[c] for nid, c in col.items()}

    def columns(self) -> list[list[LineageNode]]:
        """The nodes in columns, left to right in the order of the arrows (see the module doc)."""
        index = self.column_index()
        out: list[list[LineageNode]] = [[] for _ in range(max(index.values(), default=-1) + 1)]
        rank = {t: i for i, t in enumerate(_TYPE_ORDER)}
        position = {n.id: i for i, n in enumerate(self.nodes)}
        for n in sorted(self.nodes, key=lambda n: (rank.get(n.type, len(rank)), position[n.id])):
            out[index[n.id]].append(n)
        return out

    def to_json(self) -> dict[str, Any]:
        index = self.column_index()
        return {"focus": self.focus,
                "nodes": [n.to_json() | {"column": index[n.id]} for n in self.nodes],
                "edges": [e.to_json() for e in self.edges],
                "columns": [[n.id for n in col] for col in self.columns()],
                "hidden": dict(self.hidden)}


def _topological(ids: list[str], preds: dict[str, list[str]], succs: dict[str, list[str]]) -> list[str]:
    """Kahn's order; nodes on a cycle (which recorded lineage should never have) come last."""
    indeg = {nid: len(preds[nid]) for nid in ids}
    ready = [nid for nid in ids if indeg[nid] == 0]
    out: list[str] = []
    while ready:
        nid = ready.pop(0)
        out.append(nid)
        for t in succs[nid]:
            indeg[t] -= 1
            if indeg[t] == 0:
                ready.append(t)
    seen = set(out)
    return out + [nid for nid in ids if nid not in seen]


# =========================================================================== building


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _basename(path: str) -> str:
    return re.split(r"[\\/]", path.rstrip("\\/"))[-1] or path


class _Builder:
    """Collects nodes and edges inside one read session, then describes the nodes in bulk."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.roles: dict[str, str] = {}  # node id -> role, in discovery order
        self.keys: dict[str, tuple[str, str]] = {}
        self.edges: dict[tuple[str, str, str], LineageEdge] = {}
        self.hidden: dict[str, int] = defaultdict(int)
        self.edge_details: dict[str, dict[str, Any]] = defaultdict(dict)  # node id -> facts from its edges
        self.generation: dict[int, int] = {}  # dataset version id -> generations above the first one
        self.dvs: dict[int, Any] = {}
        self.runs: dict[str, Any] = {}
        self.checks: dict[int, Any] = {}

    # ------------------------------------------------------------------ nodes and edges

    def add_node(self, type_: str, key: Any, role: str) -> tuple[str | None, bool]:
        nid = f"{type_}:{key}"
        if nid in self.roles:
            return nid, False
        if len(self.roles) >= MAX_NODES:
            self.hidden["nodes"] += 1
            return None, False
        self.roles[nid] = role
        self.keys[nid] = (type_, str(key))
        return nid, True

    def add_edge(self, src: str | None, dst: str | None, relation: str, details: dict[str, Any] | None = None,
                 *, recorded: bool = True) -> None:
        if src is None or dst is None:
            return
        key = (src, dst, relation)
        if key in self.edges:
            if recorded and not self.edges[key].recorded:
                self.edges[key] = LineageEdge(src, dst, relation, dict(details or {}), True)
            return
        self.edges[key] = LineageEdge(src, dst, relation, dict(details or {}), recorded)

    def _recorded(self, keys: Iterable[tuple[str, str]], direction: str) -> list[m.LineageEdge]:
        by_type: dict[str, set[str]] = defaultdict(set)
        for t, k in keys:
            by_type[t].add(k)
        if not by_type:
            return []
        t_col, id_col = ((m.LineageEdge.dst_type, m.LineageEdge.dst_id) if direction == "in"
                         else (m.LineageEdge.src_type, m.LineageEdge.src_id))
        cond = or_(*[and_(t_col == t, id_col.in_(sorted(ids))) for t, ids in by_type.items()])
        return list(self.s.scalars(select(m.LineageEdge).where(cond)
                                   .order_by(m.LineageEdge.created_at.desc(), m.LineageEdge.id.desc())))

    def _take(self, rows: list[m.LineageEdge], direction: str) -> list[m.LineageEdge]:
        """At most LIMIT_PER_RELATION edges per record and relation (newest first); counts the rest."""
        count: dict[tuple[str, str, str], int] = defaultdict(int)
        out = []
        for e in rows:
            anchor = (e.src_type, e.src_id) if direction == "out" else (e.dst_type, e.dst_id)
            k = (*anchor, e.relation)
            count[k] += 1
            if count[k] <= LIMIT_PER_RELATION:
                out.append(e)
            else:
                self.hidden[e.relation] += 1
        return out

    def _note_edge(self, e: m.LineageEdge) -> None:
        """Bundles and servers have no table of their own: what is known of them is on their edges.

        The edge that made the record (the one pointing at it: ``exported_as``, ``served_by``)
        has the last word; edges leaving it (``imported_as``) only fill gaps."""
        for typ, key, made in ((e.src_type, e.src_id, False), (e.dst_type, e.dst_id, True)):
            if typ not in ("dataset_version", "run", "model_version", "monitoring_check"):
                facts = self.edge_details[f"{typ}:{key}"]
                for k, v in ((e.details or {}) | {"recorded_at": _iso(e.created_at)}).items():
                    if made:
                        facts[k] = v
                    else:
                        facts.setdefault(k, v)

    # ------------------------------------------------------------------ loading rows

    def load_dvs(self, ids: Iterable[int]) -> None:
        want = sorted({int(i) for i in ids} - set(self.dvs))
        if not want:
            return
        v = m.DatasetVersion
        rows = self.s.execute(
            select(v.id, v.dataset_id, m.Dataset.name, v.version, v.parent_id, v.n_rows, v.n_cols, v.target, v.task,
                   v.source_path, v.source_size, v.source_mtime, v.source_format, v.content_hash, v.created_at,
                   v.created_by, v.note, m.Dataset.deleted_at)
            .join(m.Dataset, m.Dataset.id == v.dataset_id).where(v.id.in_(want))).all()
        for r in rows:
            self.dvs[r.id] = r

    def load_runs(self, uuids: Iterable[str]) -> None:
        want = sorted(set(uuids) - set(self.runs))
        if not want:
            return
        r = m.Run
        rows = self.s.execute(
            select(r.id, r.uuid, r.name, r.status, r.start_time, r.end_time, r.user, r.source_type,
                   r.dataset_version_id, r.split_id, r.spec, r.deleted_at, m.Experiment.name.label("experiment"))
            .join(m.Experiment, m.Experiment.id == r.experiment_id).where(r.uuid.in_(want))).all()
        for row in rows:
            self.runs[row.uuid] = row

    def load_checks(self, ids: Iterable[int]) -> None:
        want = sorted({int(i) for i in ids} - set(self.checks))
        if not want:
            return
        c = m.MonitoringCheck
        for row in self.s.execute(select(c.id, c.model_version_id, c.batch_dataset_version_id,
                                         c.reference_dataset_version_id, c.created_at, c.created_by, c.verdict,
                                         c.drift_share).where(c.id.in_(want))).all():
            self.checks[row.id] = row

    def ids_of(self, type_: str, node_ids: Iterable[str]) -> list[str]:
        return [self.keys[n][1] for n in node_ids if self.keys[n][0] == type_]

    # ------------------------------------------------------------------ upstream

    def file_node(self, dv: Any, role: str) -> str | None:
        if not dv.source_path:
            return None
        key = dv.source_path + (f"@{dv.source_mtime.isoformat()}" if dv.source_mtime else "")
        nid, new = self.add_node("file", key, role)
        if new and nid is not None:
            self.edge_details[nid].update({"path": dv.source_path, "size": dv.source_size,
                                           "mtime": _iso(dv.source_mtime), "format": dv.source_format})
        return nid

    def expand_up(self, frontier: list[str], focus: str) -> list[str]:
        """One level up from ``frontier``; returns the new nodes worth following further."""
        new: list[str] = []

        def add(type_: str, key: Any) -> str | None:
            nid, fresh = self.add_node(type_, key, "upstream")
            if fresh and nid is not None:
                new.append(nid)
            return nid

        keys = [self.keys[n] for n in frontier]
        for e in self._take(self._recorded(keys, "in"), "in"):
            self._note_edge(e)
            src = add(e.src_type, e.src_id)
            self.add_edge(src, f"{e.dst_type}:{e.dst_id}", e.relation, e.details)
        # runs: the dataset version they trained on (and its split)
        run_ids = self.ids_of("run", frontier)
        self.load_runs(run_ids)
        for uuid in run_ids:
            run = self.runs.get(uuid)
            if run is not None and run.dataset_version_id is not None:
                self.generation.setdefault(run.dataset_version_id, 0)
                dv = add("dataset_version", run.dataset_version_id)
                self.add_edge(dv, f"run:{uuid}", "used_by", {"split_id": run.split_id}, recorded=False)
        # dataset versions: their source file and their parent
        dv_ids = [int(k) for k in self.ids_of("dataset_version", frontier)]
        self.load_dvs(dv_ids)
        for dv_id in dv_ids:
            dv = self.dvs.get(dv_id)
            if dv is None:
                continue
            self.add_edge(self.file_node(dv, "upstream"), f"dataset_version:{dv_id}", "imported_as", recorded=False)
            if dv.parent_id is not None:
                gen = self.generation.get(dv_id, 0) + 1
                if gen > MAX_DATASET_ANCESTORS:
                    self.hidden["parent_of"] += self.s.scalar(
                        select(func.count()).select_from(m.DatasetVersion)
                        .where(m.DatasetVersion.dataset_id == dv.dataset_id,
                               m.DatasetVersion.version < dv.version)) or 1
                    continue
                self.generation.setdefault(dv.parent_id, gen)
                parent = add("dataset_version", dv.parent_id)
                self.add_edge(parent, f"dataset_version:{dv_id}", "parent_of", recorded=False)
        # drift checks (upstream of a retraining run): the version checked and the batch
        check_ids = [int(k) for k in self.ids_of("monitoring_check", frontier)]
        self.load_checks(check_ids)
        for cid in check_ids:
            c = self.checks.get(cid)
            if c is None:
                continue
            self.add_edge(add("model_version", c.model_version_id), f"monitoring_check:{cid}", "monitored_by",
                          recorded=False)
            if c.batch_dataset_version_id is not None:
                self.add_edge(add("dataset_version", c.batch_dataset_version_id), f"monitoring_check:{cid}",
                              "checked", recorded=False)
        # other model versions are shown, not followed
        return [n for n in new if self.keys[n][0] != "model_version" or n == focus]

    # ------------------------------------------------------------------ downstream

    def checks_of(self, mv_id: int) -> list[int]:
        c = m.MonitoringCheck
        ids = list(self.s.scalars(select(c.id).where(c.model_version_id == mv_id)
                                  .order_by(c.created_at.desc(), c.id.desc()).limit(LIMIT_PER_RELATION + 1)))
        if len(ids) > LIMIT_PER_RELATION:
            total = self.s.scalar(select(func.count()).select_from(c).where(c.model_version_id == mv_id)) or 0
            self.hidden["monitored_by"] += total - LIMIT_PER_RELATION
            ids = ids[:LIMIT_PER_RELATION]
        return ids

    def expand_down(self, frontier: list[str], focus: str, follow: set[str]) -> list[str]:
        new: list[str] = []

        def add(type_: str, key: Any) -> str | None:
            nid, fresh = self.add_node(type_, key, "downstream")
            if fresh and nid is not None:
                new.append(nid)
            return nid

        keys = [self.keys[n] for n in frontier]
        for e in self._take(self._recorded(keys, "out"), "out"):
            self._note_edge(e)
            self.add_edge(f"{e.src_type}:{e.src_id}", add(e.dst_type, e.dst_id), e.relation, e.details)
        for mv_key in self.ids_of("model_version", frontier):
            for cid in self.checks_of(int(mv_key)):
                self.add_edge(f"model_version:{mv_key}", add("monitoring_check", cid), "monitored_by",
                              recorded=False)
        run_uuids = self.ids_of("run", frontier)
        if run_uuids:
            rows = self.s.execute(select(m.Run.uuid, m.ModelVersion.id).join(m.Run, m.Run.id == m.ModelVersion.run_id)
                                  .where(m.Run.uuid.in_(run_uuids))).all()
            for uuid, mv_id in rows:
                self.add_edge(f"run:{uuid}", add("model_version", mv_id), "registered_as", recorded=False)
        return [n for n in new if self.keys[n][0] in follow]

    def side_inputs(self, ids: list[str]) -> None:
        """The data a scoring, a drift check or a retraining run read: shown, not followed."""
        targets = [n for n in ids if self.keys[n][0] in ("dataset_version", "monitoring_check", "run")]
        for e in self._recorded([self.keys[n] for n in targets], "in"):
            if e.src_type == "dataset_version":
                self._note_edge(e)
                src, _ = self.add_node("dataset_version", e.src_id, "input")
                self.add_edge(src, f"{e.dst_type}:{e.dst_id}", e.relation, e.details)
        check_ids = [int(k) for k in self.ids_of("monitoring_check", targets)]
        self.load_checks(check_ids)
        for cid in check_ids:
            c = self.checks.get(cid)
            if c is not None and c.batch_dataset_version_id is not None:
                src, _ = self.add_node("dataset_version", c.batch_dataset_version_id, "input")
                self.add_edge(src, f"monitoring_check:{cid}", "checked", recorded=False)
        run_ids = self.ids_of("run", targets)
        self.load_runs(run_ids)
        for uuid in run_ids:
            run = self.runs.get(uuid)
            if run is not None and run.dataset_version_id is not None:
                src, _ = self.add_node("dataset_version", run.dataset_version_id, "input")
                self.add_edge(src, f"run:{uuid}", "used_by", {"split_id": run.split_id}, recorded=False)

    # ------------------------------------------------------------------ describing

    def build(self, focus: str) -> LineageGraph:
        # a dataset version that reaches a model version through its run: drop the shortcut
        out: dict[str, set[str]] = defaultdict(set)
        for src, dst, _ in self.edges:
            out[src].add(dst)
        edges = [e for (src, dst, rel), e in self.edges.items()
                 if not (rel == "trained" and any(dst in out[mid] for mid in out[src] if mid.startswith("run:")))]
        ids = list(self.roles)
        self.load_dvs(int(k) for k in self.ids_of("dataset_version", ids))
        self.load_runs(self.ids_of("run", ids))
        self.load_checks(int(k) for k in self.ids_of("monitoring_check", ids))
        mvs = self._model_versions([int(k) for k in self.ids_of("model_version", ids)])
        splits = self._splits({r.split_id for r in self.runs.values() if r.split_id is not None})
        predictions = {e.dst for e in edges if e.relation == "scored"}
        nodes = []
        for nid in ids:
            type_, key = self.keys[nid]
            label, details = self._describe(nid, type_, key, mvs, splits)
            if nid in predictions:
                details["kind"] = "predictions"
            nodes.append(LineageNode(nid, type_, key, label, self.roles[nid], details))
        return LineageGraph(focus=focus, nodes=nodes, edges=edges, hidden=dict(self.hidden))

    def _model_versions(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        if not ids:
            return {}
        v = m.ModelVersion
        rows = self.s.execute(select(v.id, m.RegisteredModel.name, v.version, v.stage, v.source, v.created_at,
                                     v.created_by, v.model_sha256)
                              .join(m.RegisteredModel, m.RegisteredModel.id == v.model_id).where(v.id.in_(ids))).all()
        aliases: dict[int, list[str]] = defaultdict(list)
        for alias, vid in self.s.execute(select(m.ModelAlias.alias, m.ModelAlias.version_id)
                                         .where(m.ModelAlias.version_id.in_(ids)).order_by(m.ModelAlias.alias)):
            aliases[vid].append(alias)
        return {r.id: {"name": r.name, "version": r.version, "ref": f"{r.name}@v{r.version}", "stage": r.stage,
                       "aliases": aliases[r.id], "source": r.source, "created_at": _iso(r.created_at),
                       "created_by": r.created_by, "model_sha256": r.model_sha256} for r in rows}

    def _splits(self, ids: set[int]) -> dict[int, dict[str, Any]]:
        if not ids:
            return {}
        sp = m.DatasetSplit
        rows = self.s.execute(select(sp.id, sp.name, sp.method, sp.seed, sp.spec).where(sp.id.in_(sorted(ids)))).all()
        return {r.id: {"id": r.id, "name": r.name, "method": r.method, "seed": r.seed,
                       "counts": dict((r.spec or {}).get("counts") or {})} for r in rows}

    def _describe(self, nid: str, type_: str, key: str, mvs: dict[int, dict[str, Any]],
                  splits: dict[int, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        facts = dict(self.edge_details.get(nid, {}))
        if type_ == "file":
            return _basename(facts.get("path") or key), facts
        if type_ == "dataset_version":
            dv = self.dvs.get(int(key)) if key.isdigit() else None
            if dv is None:
                return f"dataset version {key}", {"missing": True}
            return f"{dv.name}@v{dv.version}", {
                "dataset": dv.name, "version": dv.version, "dataset_version_id": dv.id, "n_rows": dv.n_rows,
                "n_cols": dv.n_cols, "target": dv.target, "task": dv.task, "parent_id": dv.parent_id,
                "source_path": dv.source_path, "content_hash": dv.content_hash, "created_at": _iso(dv.created_at),
                "created_by": dv.created_by, "note": dv.note, "dataset_deleted": dv.deleted_at is not None}
        if type_ == "run":
            run = self.runs.get(key)
            if run is None:
                return f"run {key[:8]}", {"run_id": key, "missing": True}
            spec = run.spec if isinstance(run.spec, dict) else {}
            what = spec.get("model") or run.name
            return f"run {key[:8]}" + (f" ({what})" if what else ""), {
                "run_id": run.uuid, "name": run.name, "experiment": run.experiment, "status": run.status,
                "model": spec.get("model"), "start_time": _iso(run.start_time), "end_time": _iso(run.end_time),
                "user": run.user, "source_type": run.source_type, "dataset_version_id": run.dataset_version_id,
                "split": splits.get(run.split_id) if run.split_id is not None else None,
                "deleted": run.deleted_at is not None}
        if type_ == "model_version":
            info = mvs.get(int(key)) if key.isdigit() else None
            if info is None:
                return f"model version {key}", {"missing": True}
            return info["ref"], info
        if type_ == "monitoring_check":
            c = self.checks.get(int(key)) if key.isdigit() else None
            if c is None:
                return f"check #{key}", {"missing": True}
            batch = self.dvs.get(c.batch_dataset_version_id) if c.batch_dataset_version_id else None
            return f"check #{c.id} {c.verdict}", {
                "check_id": c.id, "verdict": c.verdict, "drift_share": c.drift_share,
                "created_at": _iso(c.created_at), "created_by": c.created_by, "model_version_id": c.model_version_id,
                "batch_dataset_version_id": c.batch_dataset_version_id,
                "batch": f"{batch.name}@v{batch.version}" if batch is not None else None}
        if type_ == "bundle":
            path = facts.get("path")
            return (_basename(path) if isinstance(path, str) and path else f"bundle {key[:12]}"), facts | {
                "sha256": key}
        if type_ == "server":
            return f"server {key}", facts
        if type_ == "pipeline_run":  # its "produced" edges name the pipeline (and the step)
            name = facts.get("pipeline")
            return (f"pipeline {name}, run {key}" if isinstance(name, str) and name else f"pipeline run {key}"), \
                {k: v for k, v in facts.items() if k != "step"} | {"pipeline_run_id": key}
        return f"{type_.replace('_', ' ')} {key}", facts


# =========================================================================== the graphs


def _resolve_version(s: Session, ref: str | int) -> m.ModelVersion:
    if isinstance(ref, int):
        return lookup.model_version_by_id(s, ref)
    return _resolve(s, ref)[1]


def version_lineage(store: Store, ref: str | int) -> LineageGraph:
    """The lineage of one model version (``NAME@vN``, ``NAME@ALIAS``, ``NAME`` or its integer id)."""
    with store.session() as s:
        mv = _resolve_version(s, ref)
        b = _Builder(s)
        focus, _ = b.add_node("model_version", mv.id, "focus")
        assert focus is not None
        # foreign keys first (a version whose edges were never written still shows its run and data)
        if mv.run_id is not None:
            uuid = s.scalar(select(m.Run.uuid).where(m.Run.id == mv.run_id))
            if uuid is not None:
                run, _ = b.add_node("run", uuid, "upstream")
                b.add_edge(run, focus, "registered_as", recorded=False)
        if mv.dataset_version_id is not None:
            b.generation.setdefault(mv.dataset_version_id, 0)
            dv, _ = b.add_node("dataset_version", mv.dataset_version_id, "upstream")
            b.add_edge(dv, focus, "trained", recorded=False)
        frontier = [focus] + [n for n in b.roles if n != focus]
        for _ in range(_MAX_DEPTH):
            if not frontier:
                break
            frontier = b.expand_up(frontier, focus)
        frontier = [focus]
        for _ in range(4):
            if not frontier:
                break
            frontier = b.expand_down(frontier, focus, follow={"bundle", "monitoring_check", "run"})
        b.side_inputs([n for n, role in b.roles.items() if role == "downstream"])
        return b.build(focus)


def dataset_lineage(store: Store, dataset_version_id: int) -> LineageGraph:
    """The lineage of one dataset version: its file and parents; the runs that trained on it
    (not search trials) and the versions registered from them, child versions, scorings into
    it and out of it, and drift checks that read it as their batch."""
    with store.session() as s:
        dv = lookup.dataset_version_by_id(s, dataset_version_id)
        b = _Builder(s)
        focus, _ = b.add_node("dataset_version", dv.id, "focus")
        assert focus is not None
        b.generation[dv.id] = 0
        frontier = [focus]
        for _ in range(_MAX_DEPTH):
            if not frontier:
                break
            frontier = [n for n in b.expand_up(frontier, focus) if b.keys[n][0] != "model_version"]
        new: list[str] = []

        def add(type_: str, key: Any) -> str | None:
            nid, fresh = b.add_node(type_, key, "downstream")
            if fresh and nid is not None:
                new.append(nid)
            return nid

        for e in b._take(b._recorded([("dataset_version", str(dv.id))], "out"), "out"):
            b._note_edge(e)
            b.add_edge(focus, add(e.dst_type, e.dst_id), e.relation, e.details)
        r = m.Run
        runs = s.execute(select(r.uuid).where(r.dataset_version_id == dv.id, r.parent_run_id.is_(None),
                                              r.deleted_at.is_(None))
                         .order_by(r.start_time.desc(), r.id.desc()).limit(LIMIT_PER_RELATION + 1)).scalars().all()
        if len(runs) > LIMIT_PER_RELATION:
            total = s.scalar(select(func.count()).select_from(r).where(
                r.dataset_version_id == dv.id, r.parent_run_id.is_(None), r.deleted_at.is_(None))) or 0
            b.hidden["used_by"] += total - LIMIT_PER_RELATION
            runs = runs[:LIMIT_PER_RELATION]
        for uuid in runs:
            b.add_edge(focus, add("run", uuid), "used_by", recorded=False)
        children = s.scalars(select(m.DatasetVersion.id).where(m.DatasetVersion.parent_id == dv.id)
                             .order_by(m.DatasetVersion.version)).all()
        for child in children:
            b.add_edge(focus, add("dataset_version", child), "parent_of", recorded=False)
        c = m.MonitoringCheck
        for cid in s.scalars(select(c.id).where(c.batch_dataset_version_id == dv.id)
                             .order_by(c.created_at.desc()).limit(LIMIT_PER_RELATION)):
            b.add_edge(focus, add("monitoring_check", cid), "checked", recorded=False)
        # one more step: the runs' model versions, what the checks and scorings point to
        b.expand_down([n for n in new if b.keys[n][0] in ("run", "monitoring_check")], focus, follow=set())
        return b.build(focus)
