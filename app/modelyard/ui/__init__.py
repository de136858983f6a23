"""The thin Qt layer: panels, table-model adapters, plots and the job runner.

Everything here may import :mod:`modelyard.core`; nothing in the core may import this package.
"""
