"""Counts in messages agree with their nouns ("1 run", never "1 runs")."""

from modelyard.core.common.names import plural


def test_plural_agrees_with_its_count():
    assert plural(1, "run") == "1 run"
    assert plural(0, "error") == "0 errors"
    assert plural(1204, "batch") == "1,204 batches"
    assert plural(2, "child", "children") == "2 children"
