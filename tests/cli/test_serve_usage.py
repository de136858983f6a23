"""``modelyard serve``: options that cannot go together, or a malformed one, are usage errors
(exit 2, one line naming the option), found before the store opens."""

from __future__ import annotations

import pytest
from cli_helpers import cli


@pytest.mark.parametrize(("extra", "named"), [
    (["--canary", "challenger=10%", "--shadow", "challenger"], "--canary or --shadow"),
    (["--canary", "challenger"], "--canary"),
    (["--canary", "challenger=ten"], "share"),
    (["--cert", "c.pem"], "--cert FILE and --key FILE"),
])
def test_serve_option_mistakes_exit_2_naming_the_option(capsys: pytest.CaptureFixture[str], tmp_path,
                                                         extra: list[str], named: str) -> None:
    code, out, err = cli(capsys, "--store", str(tmp_path / "never-opened"), "serve", "churn@champion", *extra)
    assert code == 2, err
    assert named in err and len(err.strip().splitlines()) <= 2, err
    assert not (tmp_path / "never-opened").exists()  # refused before the store opens
