"""Peak memory of ``modelyard serve`` for one request body near its size limit.

    python tests/benchmarks/serve_memory.py [--max-body 32M] [--formats split,records,csv]

The garden model of the tests (see ``serve.py``) is served by ``modelyard serve --max-body``
in a child process (:class:`ServerProcess`); for each format a body of the garden rows, repeated
until it is just under the limit, is posted once, and the child's peak resident memory
(``VmHWM`` in ``/proc/PID/status``, reset through ``/proc/PID/clear_refs`` just before) is
compared with its resident memory before the request. Linux only. Prints one JSON object:
per format the body's size, the peak growth in MB and as a multiple of the body, and the time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "app"))
sys.path.insert(0, str(ROOT / "tests"))

from procfs import memory  # noqa: E402 - after the path set-up


def bodies(limit: int, formats: list[str]) -> dict[str, tuple[bytes, str]]:
    import pandas as pd
    from factories import FEATURES, garden_frame

    frame = garden_frame()[FEATURES].copy()
    frame["measured"] = frame["measured"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    make = {
        "split": (lambda f: json.dumps({"dataframe_split": json.loads(f.to_json(orient="split", index=False))})
                  .encode(), "application/json"),
        "records": (lambda f: json.dumps({"dataframe_records": json.loads(f.to_json(orient="records"))}).encode(),
                    "application/json"),
        "csv": (lambda f: f.to_csv(index=False).encode(), "text/csv"),
    }
    out = {}
    for name in formats:
        fn, ctype = make[name]
        times = int(0.97 * limit / len(fn(frame)))
        out[name] = (fn(pd.concat([frame] * times, ignore_index=True)), ctype)
    return out


def main() -> None:
    from factories import make_garden_store
    from modelyard.cli.serve import _size
    from modelyard.core.serving import ServerProcess

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-body", type=_size, default=32 * 2**20, help="the server's limit (default 32M)")
    parser.add_argument("--formats", default="split,records,csv")
    args = parser.parse_args()
    results: dict[str, Any] = {"max_body": args.max_body, "python": platform.python_version(), "formats": {}}
    with tempfile.TemporaryDirectory() as tmp:
        store, _ = make_garden_store(Path(tmp) / "store")
        store.close()
        for name, (body, ctype) in bodies(args.max_body, args.formats.split(",")).items():
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "app"), os.environ.get("PYTHONPATH", "")])}
            with ServerProcess("flowers@v1", store=Path(tmp) / "store", port=0, max_body=args.max_body,
                               env=env) as proc:
                host, port = proc.url.removeprefix("http://").rsplit(":", 1)
                conn = http.client.HTTPConnection(host, int(port), timeout=600)
                conn.request("POST", "/invocations", body=b'{"dataframe_records": [{}]}',
                             headers={"Content-Type": "application/json"})
                conn.getresponse().read()  # warm (a 400 is fine)
                assert proc.pid is not None
                Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
                before = memory(proc.pid)
                t0 = time.perf_counter()
                conn.request("POST", "/invocations", body=body, headers={"Content-Type": ctype})
                resp = conn.getresponse()
                resp.read()
                seconds = time.perf_counter() - t0
                after = memory(proc.pid)
                conn.close()
                growth = after["VmHWM"] - before["VmRSS"]
                results["formats"][name] = {"status": resp.status, "body_mb": round(len(body) / 2**20, 1),
                                            "peak_growth_mb": round(growth / 2**20, 1),
                                            "times_body": round(growth / len(body), 1), "seconds": round(seconds, 2)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
