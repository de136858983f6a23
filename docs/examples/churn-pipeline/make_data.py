"""Write the example's data: ``churn.csv`` (training rows) and ``batch.csv`` (a later batch to check).

    python make_data.py          # rewrites both files beside this script, byte for byte the same

Both come from one made-up customer population (the standard library's ``random`` with fixed
seeds, so the files never change): tenure, monthly charges, contract, support calls, region and
whether the customer churned. The batch is drawn from the same population with another seed, so
the example's drift check finds no drift and the pipeline succeeds (exit code 0). To see the check
block the pipeline (exit code 3), run it with ``--param batch=<a file whose columns moved>``, e.g.
one written by ``python make_data.py --drifted drifted.csv``.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = ["tenure_months", "monthly_charges", "contract", "support_calls", "region", "churned"]
CONTRACTS = ["month-to-month", "one-year", "two-year"]
REGIONS = ["north", "south", "east", "west"]


def rows(n: int, seed: int, *, drifted: bool = False) -> list[list[object]]:
    rng = random.Random(seed)
    out: list[list[object]] = []
    for _ in range(n):
        contract = rng.choices(CONTRACTS, weights=[0.2, 0.3, 0.5] if drifted else [0.5, 0.3, 0.2])[0]
        tenure = max(1, int(rng.expovariate(1 / (12 if drifted else 24))))
        charges = round(rng.gauss(95 if drifted else 65, 18), 2)
        calls = min(9, int(rng.expovariate(1 / 1.5)))
        region = rng.choice(REGIONS)
        score = (-1.2 + 2.5 * (contract == "month-to-month") - 0.08 * tenure + 0.04 * (charges - 65)
                 + 0.8 * calls)
        churned = "yes" if rng.random() < 1 / (1 + math.exp(-score)) else "no"
        out.append([min(tenure, 72), charges, contract, calls, region, churned])
    return out


def write(path: Path, data: list[list[object]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drifted", metavar="FILE", help="also write a batch whose columns moved (for exit code 3)")
    args = parser.parse_args()
    write(HERE / "churn.csv", rows(400, seed=14))
    write(HERE / "batch.csv", rows(150, seed=15))
    if args.drifted:
        write(Path(args.drifted), rows(150, seed=16, drifted=True))


if __name__ == "__main__":
    main()
