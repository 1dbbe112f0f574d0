"""Resource limits per input: one place, documented defaults, raised through the environment.

Every input is checked against these limits *before* the expensive work starts (the readers
check sizes and counts; a method checks the pairs it would score before scoring them), so one
oversized input is refused in milliseconds with ``[E032]`` naming the limit, the input's value
and the variable that raises it, and the rest of the batch goes on. Within the defaults every
shipped task handles an input in well under 10 s and 1 GiB (``bench/bench_reliability.py``).

Raise a limit with ``GRAPHMIE_MAX_<NAME>`` (e.g. ``GRAPHMIE_MAX_POST_CHARS=50000``); the
environment is read at each check, so a value set in a running process applies to the next
input. :data:`LIMITS` lists every limit with its default and what it bounds (also the table in
``docs/limits.md``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields

from .errors import GraphmieError


@dataclass(frozen=True)
class Limits:
    #: characters of a post's text (``--task post`` / ``entity``), and of its caption
    post_chars: int = 10_000
    #: ordered entity pairs a post's relation model scores (given ``pairs``, else n x (n-1) entities)
    post_pairs: int = 200
    #: boxes in a post's list of detections (only the first ``max_regions`` become regions)
    detections: int = 1_000
    #: steps of a procedure
    steps: int = 100
    #: characters of one procedure step
    step_chars: int = 1_000
    #: characters of a whole procedure (all steps)
    procedure_chars: int = 10_000
    #: candidate flow pairs of a procedure if every word were an entity (same step, or up to 2 steps on)
    flow_pairs: int = 100_000
    #: entity blocks of a form page (FUNSD JSON or OCR)
    form_entities: int = 400
    #: words of a form page (FUNSD JSON, OCR or a PDF's text layer)
    form_words: int = 3_000
    #: largest absolute box coordinate of a form page, in its units (px or pt)
    box_coord: int = 100_000
    #: pages of a PDF form read whole (``--page K`` reads one page of a longer PDF)
    form_pages: int = 100
    #: nodes of a drawn scene graph; a larger graph is drawn summarised (the head/tail neighbourhood)
    draw_nodes: int = 60

    @staticmethod
    def env(name: str) -> str:
        return f"GRAPHMIE_MAX_{name.upper()}"


def describe() -> list[tuple[str, str, int, str]]:
    """``(name, variable, default, what it bounds)`` of every limit, from the field comments."""
    import inspect

    notes, note = {}, ""
    for line in inspect.getsource(Limits).splitlines():
        line = line.strip()
        if line.startswith("#:"):
            note = line[2:].strip()
        elif ":" in line and note:
            notes[line.split(":")[0].strip()] = note
            note = ""
    return [(f.name, Limits.env(f.name), f.default, notes.get(f.name, "")) for f in fields(Limits)]


def get(name: str) -> int:
    """The current value of limit ``name`` (its ``GRAPHMIE_MAX_*`` variable, else the default)."""
    default = getattr(Limits, name)
    raw = os.environ.get(Limits.env(name))
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        raise GraphmieError("E021", None, key=Limits.env(name), section="the environment",
                            expected="an integer", value=raw) from None
    if value < 0:
        raise GraphmieError("E021", None, key=Limits.env(name), section="the environment",
                            expected="an integer >= 0", value=raw)
    return value


def check(name: str, value: int | float, source, what: str) -> None:
    """Refuse ``value`` (the size of ``what`` in ``source``) when it is over limit ``name``: ``E032``."""
    limit = get(name)
    if value > limit:
        raise GraphmieError("E032", source, detail=f"{what} is {value:,}, over the limit of {limit:,} "
                            f"(raise it with {Limits.env(name)}=N)")
