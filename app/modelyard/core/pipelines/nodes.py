"""Small helpers over PyYAML's composed nodes for :mod:`.loading`: what a node is, in words a
user reads; where in a scalar a reference starts; every reference under a node; duplicate keys.

Nodes (not constructed values) keep the 0-based line and column each value starts at, which is
what lets every problem name its place in the file.
"""

from __future__ import annotations

from collections.abc import Iterator

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from modelyard.core.pipelines import refs

NULL = "tag:yaml.org,2002:null"
MERGE = "tag:yaml.org,2002:merge"


def is_null(node: Node | None) -> bool:
    return node is None or (isinstance(node, ScalarNode) and node.tag == NULL)


def kind_word(node: Node) -> str:
    """What ``node`` is, in a user's words."""
    if isinstance(node, MappingNode):
        return "mapping"
    if isinstance(node, SequenceNode):
        return "list"
    return {NULL: "empty value", "tag:yaml.org,2002:bool": "true/false value",
            "tag:yaml.org,2002:int": "number", "tag:yaml.org,2002:float": "number"}.get(node.tag, "text")


def a_or_an(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def describe(node: Node) -> str:
    """A value as a message quotes it: its text, or what it is ("a list", "an empty value")."""
    if isinstance(node, ScalarNode) and not is_null(node):
        return f"'{node.value}'"
    return a_or_an(kind_word(node))


def kind_of(step_node: Node) -> str | None:
    """The ``kind:`` text of a step's mapping, before any check (for the outputs other steps reference)."""
    if isinstance(step_node, MappingNode):
        for knode, vnode in step_node.value:
            if isinstance(knode, ScalarNode) and knode.value == "kind" and isinstance(vnode, ScalarNode):
                return vnode.value
    return None


def column_of(node: Node, offset: int) -> int:
    """How far right of ``node``'s start the character at ``offset`` of its text is (0 when unsure)."""
    if not isinstance(node, ScalarNode) or node.start_mark.line != node.end_mark.line:
        return 0
    style = node.style or ""
    if style == "":
        return offset
    if style in ("'", '"') and "\\" not in node.value and "'" not in node.value:
        return offset + 1
    return 0


def refs_in(node: Node, seen: set[int] | None = None) -> Iterator[tuple[refs.Ref, Node]]:
    """Every reference in the values under ``node`` (keys excluded), with the scalar node holding it."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, ScalarNode):
        if node.tag == "tag:yaml.org,2002:str" and "${" in node.value:
            for ref in refs.find(node.value):
                yield ref, node
    elif isinstance(node, SequenceNode):
        for item in node.value:
            yield from refs_in(item, seen)
    elif isinstance(node, MappingNode):
        for _, vnode in node.value:
            yield from refs_in(vnode, seen)


def duplicates(root: Node) -> Iterator[tuple[Node, str, Node]]:
    """Every key written twice in one mapping (YAML would silently keep the last): (the second key's
    node, the mapping's name, the first key's node). Merge keys (``<<``) are not duplicates."""
    seen: set[int] = set()
    stack = [(root, "the file")]
    while stack:
        node, where = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[str, Node] = {}
            for knode, vnode in node.value:
                if isinstance(knode, ScalarNode) and knode.tag != MERGE:
                    if knode.value in first:
                        yield knode, where, first[knode.value]
                    else:
                        first[knode.value] = knode
                    inner = f"'{knode.value}'"
                else:
                    inner = where
                stack.append((vnode, inner))
        elif isinstance(node, SequenceNode):
            stack.extend((item, where) for item in node.value)
