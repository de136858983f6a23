"""What a name may hold, and how to print text that came from elsewhere.

Names (of datasets, experiments, runs, registered models, metric/param/tag keys) arrive from
the command line, the GUI, the tracking API and bundles made on other machines, and are
printed on terminals. A name with a control character can rewrite what a terminal shows
(``ESC [ 2 J`` clears it, ``\\r`` overwrites a line, U+202E reverses text), so every new name is
checked here, with one rule: no C0 or C1 control character (line breaks and tabs included), no
line or paragraph separator, no bidirectional override. :func:`display` writes such characters
as visible escapes for text that is printed anyway (names stored before this rule, messages).

Only the standard library is imported: the CLI uses :func:`display` at start-up.
"""

from __future__ import annotations

import re

from modelyard.core.common.errors import ModelyardError

# C0 and C1 controls (Unicode category Cc), the line and paragraph separators (Zl, Zp), and the
# bidirectional embedding, override and isolate controls.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# The same but for free text (descriptions, notes): line breaks (also CR LF) and tabs are allowed.
_UNSAFE_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f"
                             "\u202a-\u202e\u2066-\u2069]")
# What display(keep_newlines=True) escapes: everything but line feeds and tabs (a lone CR rewrites a line).
_UNSAFE_KEEP_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f"
                                "\u202a-\u202e\u2066-\u2069]")

NAME_HINT = ("Use letters, digits, spaces and punctuation: a name cannot hold line breaks, tabs, terminal "
             "escapes or other control characters.")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def unsafe_character(text: str, *, free_text: bool = False) -> str | None:
    """The first character of ``text`` a name (or, with ``free_text``, a description) may not hold."""
    found = (_UNSAFE_IN_TEXT if free_text else _UNSAFE).search(text)
    return found.group(0) if found else None


def display(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with each control character written as a visible escape (``\\x1b``, ``\\u202e``)
    so that printing it cannot move the cursor, recolour or clear a terminal. With
    ``keep_newlines``, line breaks (and tabs) are left as they are."""
    return (_UNSAFE_KEEP_LINES if keep_newlines else _UNSAFE).sub(_escape, text)


def check_name(name: str, what: str, *, hint: str | None = None,
               error: type[ModelyardError] = ModelyardError) -> str:
    """Refuse a name holding a control character: ``what`` says which name, e.g. "Dataset name"."""
    bad = unsafe_character(name)
    if bad is not None:
        raise error(f"{what} '{display(name)}' holds a control character ({_describe(bad)}).",
                             hint=hint or NAME_HINT)
    return name


def check_text(text: str, what: str, *, hint: str | None = None) -> str:
    """Refuse free text (a description, a note) holding a control character other than a line break or tab."""
    bad = unsafe_character(text, free_text=True)
    if bad is not None:
        raise ModelyardError(f"{what} holds a control character ({_describe(bad)}).",
                             hint=hint or "Remove the terminal escapes and other control characters.")
    return text


def _describe(char: str) -> str:
    names = {"\x1b": "escape", "\r": "carriage return", "\n": "line break", "\t": "tab", "\x00": "NUL",
             "\x7f": "delete", "\x9b": "control sequence introducer", "\u202e": "right-to-left override"}
    code = f"U+{ord(char):04X}"
    return f"{code}, {names[char]}" if char in names else code


def plural(n: int, word: str, many: str | None = None) -> str:
    """``"1 run"``, ``"2 runs"``, ``"1,204 batches"``: a count and its noun, agreeing (``many``
    for irregular plurals: ``plural(n, "child", "children")``)."""
    if n == 1:
        return f"1 {word}"
    if many is None:
        many = word + ("es" if word.endswith(("s", "x", "ch", "sh")) else "s")
    return f"{n:,} {many}"


def fmt_bytes(n: int | None) -> str:
    """``812 B``, ``1.4 kB``, ``3.2 MB``... (powers of 1000); empty for None."""
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover


def fmt_duration(seconds: float | None, *, compact: bool = True) -> str:
    """A duration for people: ``0.4s``, ``12s``, ``3m 07s``, ``2h 05m`` (``compact``, for terminals
    and messages), or ``0.4 s``, ``12 s``, ``3 min 07 s``, ``2 h 05 min`` (for the window); empty
    for None."""
    if seconds is None:
        return ""
    sec, mins, hours = ("s", "m", "h") if compact else (" s", " min", " h")
    if seconds < 10:
        return f"{seconds:.1f}{sec}"
    s = int(round(seconds))
    if s < 60:
        return f"{s}{sec}"
    if s < 3600:
        return f"{s // 60}{mins} {s % 60:02d}{sec}"
    return f"{s // 3600}{hours} {s % 3600 // 60:02d}{mins}"
