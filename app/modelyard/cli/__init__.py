"""The ``modelyard`` command line.

:mod:`modelyard.cli.main` builds the parser and runs a command; each noun (``store``,
``jobs``, ...) is a module here exposing ``register(subparsers, common_parent)``; shared
helpers (opening the store, JSON and table output, the foreground job runner) live in
:mod:`modelyard.cli._common`.

Like :mod:`modelyard.core`, this package never imports Qt, pyqtgraph or :mod:`modelyard.ui`
(an import-linter contract checks it). It is also kept cheap to import: nothing heavier than
the standard library is imported until a command actually needs the store.
"""
