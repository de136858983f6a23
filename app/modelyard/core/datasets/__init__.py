"""Datasets: import files into immutable, versioned Parquet snapshots; schema, profile, splits.

The public API is :mod:`modelyard.core.datasets.service` (the GUI and the CLI use only that);
the other modules are its parts:

* :mod:`.readers`  - format detection, CSV sniffing, and streaming readers of every format;
* :mod:`.snapshot` - type normalisation, the content hash and the Parquet snapshot writer;
* :mod:`.profile`  - per-column statistics, histograms and warnings;
* :mod:`.schema`   - semantic column types, roles and the task kind;
* :mod:`.splits`   - train / validation / test assignments.

Nothing here imports Qt.
"""
