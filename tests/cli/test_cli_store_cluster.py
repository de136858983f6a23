"""``modelyard store cluster [WHERE | --unset]``: show and set where the store's searches run (issue 17), with
``--json`` and the exit codes 0 done, 2 a value that is not a cluster. On SQLite and PostgreSQL
(tests/backends.py); a member's refusal (exit 1) is in test_cli_store_cluster_team.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import cli, cli_json
from modelyard.core.experiments.training import engine
from modelyard.core.store import Store
from modelyard.core.store import models as m
from sqlalchemy import select


def test_show_set_and_unset_the_preference_which_jobs_then_use(store_dir: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv(engine.ENV_VAR, raising=False)
    where = ["--store", str(store_dir)]
    code, data, _ = cli_json(capsys, "store", "cluster", *where)
    assert code == 0
    assert data == {"preference": None, "cluster": "auto", "source": "default", "environment": None}
    code, out, _ = cli(capsys, "store", "cluster", *where)
    assert code == 0 and out == ("This store has no cluster preference: searches run on auto (a local cluster "
                                 "from 10,000 training rows).\n")

    code, out, _ = cli(capsys, "store", "cluster", "10.0.0.5:8786", *where)
    assert code == 0 and out == "This store's searches now run on tcp://10.0.0.5:8786.\n"
    with Store.open(store_dir) as store:  # what a training job started without --cluster then uses
        assert engine.choose_cluster(store).address == "tcp://10.0.0.5:8786"
    code, data, _ = cli_json(capsys, "store", "cluster", "local:2", *where)
    assert code == 0
    assert data == {"preference": "local:2", "cluster": "local:2", "source": "store", "environment": None}

    monkeypatch.setenv(engine.ENV_VAR, "serial")  # this shell's choice comes first, and the command says so
    code, out, _ = cli(capsys, "store", "cluster", *where)
    assert code == 0 and out.splitlines() == [
        "This store's searches run on local:2.",
        "In this shell MODELYARD_CLUSTER=serial comes first: searches started here run on serial."]
    code, data, _ = cli_json(capsys, "store", "cluster", *where)
    assert data == {"preference": "local:2", "cluster": "serial", "source": "environment", "environment": "serial"}
    monkeypatch.delenv(engine.ENV_VAR)

    code, out, _ = cli(capsys, "store", "cluster", "--unset", *where)
    assert code == 0 and out.startswith("This store now has no cluster preference: searches run on auto")
    with Store.open(store_dir) as store:
        assert engine.get_cluster_preference(store) is None
        with store.session() as s:
            changes = [(a.from_value, a.to_value) for a in s.scalars(
                select(m.AuditEvent).where(m.AuditEvent.entity_id == engine.META_KEY).order_by(m.AuditEvent.id))]
    assert changes == [(None, "tcp://10.0.0.5:8786"), ("tcp://10.0.0.5:8786", "local:2"), ("local:2", None)]


@pytest.mark.parametrize(("args", "first_line"), [
    (["nowhere"], "error: WHERE: 'nowhere' is not a cluster."),
    (["local:0"], "error: WHERE: 'local:0' is not a cluster."),
    (["ftp://host:21"], "error: WHERE: 'ftp://host:21' is not a cluster."),
    (["local", "--unset"], "error: Give WHERE (local) or --unset, not both."),
])
def test_a_value_that_is_not_a_cluster_is_a_usage_error_and_changes_nothing(
        store_dir: Path, capsys, args: list[str], first_line: str) -> None:
    where = ["--store", str(store_dir)]
    assert cli(capsys, "store", "cluster", "serial", *where)[0] == 0
    code, out, err = cli(capsys, "store", "cluster", *args, *where)
    assert code == 2 and out == ""
    assert err.splitlines()[0] == first_line
    if "--unset" not in args:
        assert err.splitlines()[1] == ("hint: Use serial, local, local:N, auto, or a Dask scheduler's address such as "
                                       "tcp://host:8786.")
    code, data, err = cli_json(capsys, "store", "cluster", *args, *where)
    assert code == 2 and data["error"]["message"] == first_line.removeprefix("error: ")
    with Store.open(store_dir) as store:
        assert engine.get_cluster_preference(store) == "serial"
