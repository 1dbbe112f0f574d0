"""Text normalisation at every entry point: what a reader hands on is valid Unicode.

Two kinds of text are not: a lone surrogate (``"\\ud800"`` in a JSON file) and the
``surrogateescape`` stand-ins Python puts for non-UTF-8 bytes (``--text $'caf\\xe9'`` on the
command line, a file name). :func:`repair` decodes the stand-ins with replacement (as the bytes
would have been decoded with ``errors="replace"``) and replaces any other lone surrogate with
U+FFFD; :class:`Repairs` counts what was replaced so the reader can say so in
``doc.meta["text_repairs"]``. Nothing else is altered.
"""
from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED = re.compile("[\udc80-\udcff]+")


def _decode_escaped(m: re.Match) -> str:
    return m.group(0).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def repair(s: str) -> tuple[str, int]:
    """``(s as valid Unicode, how many characters were replaced by U+FFFD)``."""
    if not _SURROGATE.search(s):
        return s, 0
    fixed = _SURROGATE.sub("\ufffd", _ESCAPED.sub(_decode_escaped, s))
    return fixed, fixed.count("\ufffd") - s.count("\ufffd")


class Repairs:
    """Repairs the strings of one input and keeps count, per field."""

    NOTE = "lone surrogates / non-UTF-8 bytes replaced by U+FFFD"

    def __init__(self):
        self.counts: dict[str, int] = {}

    def __call__(self, s, field: str):
        if not isinstance(s, str):
            return s
        fixed, n = repair(s)
        if n:
            self.counts[field] = self.counts.get(field, 0) + n
        return fixed

    def json(self, value, field: str):
        """A parsed JSON value with every string in it (keys too) repaired."""
        if isinstance(value, str):
            return self(value, field)
        if isinstance(value, list):
            return [self.json(v, field) for v in value]
        if isinstance(value, dict):
            return {self(k, field): self.json(v, field) for k, v in value.items()}
        return value

    def report(self, meta: dict) -> None:
        """Add ``meta["text_repairs"]`` when anything was replaced."""
        if self.counts:
            meta["text_repairs"] = {"replaced": dict(self.counts), "note": self.NOTE}
