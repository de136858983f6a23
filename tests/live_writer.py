"""Another process writing a store, for the live-update tests (tests/core/store/test_live.py,
tests/ui/test_ui_live.py): ``python tests/live_writer.py STORE`` reads one command a line on stdin,
does it through the public services (the tracking API, the registry) and answers one line on
stdout once it is committed: ``ok <what>`` or ``error <message>``.

Commands: ``run EXPERIMENT NAME`` (a run with a param and three metric points, left running;
answers its id), ``metrics RUN_ID`` (ten more points on that run), ``end RUN_ID``, ``register RUN_ID MODEL`` (a version of MODEL
from that run, after logging a model file on it; answers the ref), ``alias REF ALIAS``,
``check REF`` (a monitoring check row), ``quit``. The store's database follows
``MODELYARD_DB_URL`` as every process's does.
"""

from __future__ import annotations

import sys
import traceback


def main(location: str) -> None:
    from modelyard.core.experiments import tracking
    from modelyard.core.registry import versions as registry
    from modelyard.core.store import Store

    store = Store.open(location)
    runs: dict[str, tracking.ActiveRun] = {}
    print("ok ready", flush=True)
    for line in sys.stdin:
        cmd, *args = line.split()
        try:
            if cmd == "quit":
                break
            if cmd == "run":  # a script's run: started, a param and three points, left running
                run = tracking.start_run(args[0], name=args[1], store=store, params={"lr": 0.1})
                for step in range(3):
                    run.log_metric("loss", 1.0 / (step + 1), step=step)
                run.flush()
                runs[run.id] = run
                answer = run.id
            elif cmd == "metrics":
                run = runs[args[0]]
                for _ in range(10):
                    run.log_metric("loss", 0.01)
                run.flush()
                answer = run.id
            elif cmd == "end":
                runs.pop(args[0]).end()
                answer = args[0]
            elif cmd == "register":
                with tracking.start_run("live-models", store=store) as run:
                    run.log_bytes(b"not really a model", "model/model.joblib")
                answer = registry.register(store, run.id, args[1]).ref
            elif cmd == "alias":
                answer = registry.set_alias(store, args[0], args[1], comment="moved by another process").ref
            elif cmd == "check":
                from modelyard.core.store import models as m

                info = registry.get_version(store, args[0])
                with store.write() as s:
                    s.add(m.MonitoringCheck(model_version_id=info.id, verdict="ok", config={}, created_by="live"))
                answer = args[0]
            else:
                raise ValueError(f"unknown command {cmd!r}")
        except Exception as exc:  # noqa: BLE001 - reported to the test
            print(f"error {type(exc).__name__}: {exc} {traceback.format_exc()!r}", flush=True)
            continue
        print(f"ok {answer}", flush=True)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1])
