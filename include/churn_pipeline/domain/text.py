"""Text that came from data or params, made safe to show: nothing in it is interpreted by whoever reads it.

Column names, target values, ``input_uri`` and the reasons quoting them reach the run's summary, the
task log, the team's message and the report. A newline in such a value could add a line that poses
as one of the summary's own (``registered ... version 7``); ``ESC[2K\\r`` rewrites a line in a
terminal; a bidi control (U+202E) shows a name reversed in a browser. Every such character is shown
as its escape (``\\n``, ``\\x1b``, ``\\u202e``) instead, so the reader sees exactly what the value
holds and nothing can pretend to be something else.
"""

from __future__ import annotations

import unicodedata

# Unicode's bidirectional formatting characters (UAX #9) and the invisible marks that steer them.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(character: str) -> str:
    if character in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[character]
    code = ord(character)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _is_hostile(character: str) -> bool:
    """Control characters (C0, DEL, C1), bidi controls, and the other invisible format characters
    (Unicode category Cf: zero-width joiners, the BOM, ...) and line or paragraph separators."""
    return character in BIDI_CONTROLS or unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp")


def shown(text: object) -> str:
    """``text`` on one line with every control, bidi or invisible formatting character escaped."""
    value = str(text)
    if all(character.isprintable() and character not in BIDI_CONTROLS for character in value):
        return value  # the common case: nothing to escape
    return "".join(_escape(character) if _is_hostile(character) else character for character in value)


def shown_lines(text: object) -> str:
    """Like ``shown``, but keeps the line breaks (``\\n`` only) of a text that is meant to have lines,
    such as a reason listing its problems one per line."""
    return "\n".join(shown(line) for line in str(text).split("\n"))
