"""Reading Parquet files by row group."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from modelyard.core.datasets.read_common import (
    BATCH_ROWS,
    DatasetInputError,
    Tick,
    check_column_names,
    empty_batch,
    open_binary,
)

# --------------------------------------------------------------------------- Parquet


def parquet_batches(path: Path, tick: Tick, *, limit: int | None = None) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    fh = open_binary(path)
    try:
        try:
            pf = pq.ParquetFile(fh)
        except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
            raise DatasetInputError(f"{path} is not a valid Parquet file: {exc}",
                                    hint="The file may be damaged or incomplete; export it again.") from None
        names = pf.schema_arrow.names
        if not names:
            raise DatasetInputError(f"{path} has no columns.", hint="Choose the file that holds the data.")
        check_column_names(path, names)
        total = max(pf.metadata.num_rows, 1)
        done = 0
        try:
            for batch in pf.iter_batches(batch_size=min(limit or BATCH_ROWS, BATCH_ROWS)):
                done += batch.num_rows
                tick(done / total)
                yield batch
                if limit is not None and done >= limit:
                    return
        except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
            raise DatasetInputError(f"Cannot read {path}: {exc}",
                                    hint="The Parquet file may be damaged or incomplete; export it again.") from None
        yield empty_batch(pf.schema_arrow)
    finally:
        fh.close()
