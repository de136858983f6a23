"""Store.artifacts.read_json: the one way the core reads a JSON artifact, and its one error."""

from __future__ import annotations

import pytest
from modelyard.core.common.errors import NotFoundError
from modelyard.core.store import Store


def test_read_json_gives_the_stored_value(store: Store) -> None:
    ref = store.artifacts.put_bytes(b'{"a": [1, 2.5, null], "b": "x"}')
    assert store.artifacts.read_json(ref.sha256) == {"a": [1, 2.5, None], "b": "x"}


def test_missing_or_damaged_artifact_is_one_not_found_error_or_none(store: Store) -> None:
    missing = "0" * 64
    with pytest.raises(NotFoundError, match=r"The plan is missing from the store") as err:
        store.artifacts.read_json(missing, what="The plan")
    assert "modelyard store verify" in str(err.value)
    damaged = store.artifacts.put_bytes(b"{not json").sha256
    with pytest.raises(NotFoundError, match=rf"Artifact {damaged[:12]} is damaged or unreadable in the store"):
        store.artifacts.read_json(damaged)
    assert store.artifacts.read_json(missing, missing_ok=True) is None
    assert store.artifacts.read_json(damaged, missing_ok=True) is None
    assert store.artifacts.read_json("not-a-digest", missing_ok=True) is None
