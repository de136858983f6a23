"""Entry point: ``modelyard`` with no arguments opens the GUI, with a subcommand it is the CLI."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    from modelyard.cli.main import GUI_OPTIONS, wants_gui

    if wants_gui(args):
        from modelyard.ui.app import run_gui

        return run_gui(args, gui_options=GUI_OPTIONS)
    from modelyard.cli.main import run_cli

    return run_cli(args)


if __name__ == "__main__":
    sys.exit(main())
