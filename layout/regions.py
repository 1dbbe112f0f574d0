"""Grouping boxes into lines, blocks and table-like groups.

Two uses:

* **Region nodes of the layout graph** (RE², Ramu et al. NAACL 2024: a document is seen
  at several levels of regions). Given the entity blocks of a page, :func:`build_regions`
  returns ``line`` regions (entities that share a text row), ``block`` regions
  (paragraph-like vertical stacks of entities) and ``table`` regions (runs of ≥ 3 rows
  whose cells line up in columns).
* **Entity blocks from OCR** when there are no gold blocks: :func:`segment_words` joins
  words of one row that are close together into segments, and :func:`merge_segments`
  stacks left-aligned segments of consecutive rows into multi-line blocks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphmie.document import Box, Region

from .geometry import box_array, h_overlaps, median_height, same_line, same_lines


def _union(boxes: list[Box]) -> Box:
    out = boxes[0]
    for b in boxes[1:]:
        out = out.union(b)
    return out


class _DSU:
    def __init__(self, n: int):
        self.p = list(range(n))

    def find(self, i: int) -> int:
        while self.p[i] != i:
            self.p[i] = self.p[self.p[i]]
            i = self.p[i]
        return i

    def union(self, a: int, b: int) -> None:
        self.p[self.find(a)] = self.find(b)

    def groups(self) -> list[list[int]]:
        out: dict[int, list[int]] = {}
        for i in range(len(self.p)):
            out.setdefault(self.find(i), []).append(i)
        return list(out.values())


def group_lines(boxes: list[Box], thresh: float = 0.5) -> list[list[int]]:
    """Rows of boxes: connected components of "vertically overlapping by ≥ ``thresh``".
    Each row is sorted left to right; rows are sorted top to bottom."""
    order = sorted(range(len(boxes)), key=lambda i: boxes[i].center[1])
    dsu = _DSU(len(boxes))
    for k, i in enumerate(order):
        for j in order[k + 1:]:
            if boxes[j].y0 > boxes[i].y1:
                break
            if same_line(boxes[i], boxes[j], thresh):
                dsu.union(i, j)
    rows = [sorted(g, key=lambda i: boxes[i].x0) for g in dsu.groups()]
    return sorted(rows, key=lambda g: min(boxes[i].y0 for i in g))


def group_blocks(boxes: list[Box], unit: float, max_gap: float = 1.0) -> list[list[int]]:
    """Paragraph-like stacks: boxes that overlap horizontally and are at most ``max_gap``
    text heights apart vertically are joined (transitively)."""
    arr = box_array(boxes)
    a, b = arr[:, None], arr[None]
    vgap = np.maximum(a[..., 1], b[..., 1]) - np.minimum(a[..., 3], b[..., 3])
    join = (h_overlaps(a, b) > 0.0) & (vgap <= max_gap * unit) & ~same_lines(a, b)
    dsu = _DSU(len(boxes))
    for i, j in zip(*np.nonzero(np.triu(join, 1))):
        dsu.union(int(i), int(j))
    return sorted((sorted(g, key=lambda i: (boxes[i].y0, boxes[i].x0)) for g in dsu.groups()),
                  key=lambda g: (min(boxes[i].y0 for i in g), min(boxes[i].x0 for i in g)))


def group_tables(boxes: list[Box], rows: list[list[int]], tol: float, min_rows: int = 3,
                 min_cols: int = 2) -> list[list[int]]:
    """Table-like groups: maximal runs of consecutive rows, each with ≥ ``min_cols`` boxes,
    where ≥ ``min_cols`` boxes of a row line up (left or right edge within ``tol``) with
    boxes of the previous row. Returns lists of row indices (into ``rows``)."""
    def aligned(r1: list[int], r2: list[int]) -> int:
        n = 0
        for j in r2:
            if any(abs(boxes[i].x0 - boxes[j].x0) <= tol or abs(boxes[i].x1 - boxes[j].x1) <= tol for i in r1):
                n += 1
        return n

    tables, run = [], []
    for k, row in enumerate(rows):
        if len(row) >= min_cols and run and aligned(rows[run[-1]], row) >= min_cols:
            run.append(k)
            continue
        if len(run) >= min_rows:
            tables.append(run)
        run = [k] if len(row) >= min_cols else []
    if len(run) >= min_rows:
        tables.append(run)
    return tables


@dataclass
class Layout:
    """The region levels of one page, as index lists into the entity boxes."""

    lines: list[list[int]]
    blocks: list[list[int]]
    tables: list[list[int]]        # row indices into ``lines``
    unit: float                    # median text height, the distance unit


def analyse(boxes: list[Box], unit: float | None = None) -> Layout:
    unit = unit or median_height(boxes)
    lines = group_lines(boxes)
    blocks = [g for g in group_blocks(boxes, unit) if len(g) > 1]
    tables = group_tables(boxes, lines, tol=unit)
    return Layout(lines=lines, blocks=blocks, tables=tables, unit=unit)


def build_regions(entity_ids: list[str], boxes: list[Box], page: int = 0, unit: float | None = None,
                  prefix: str = "") -> list[Region]:
    """Region objects (line / block / table) whose ``children`` are entity ids (lines) and
    entity ids (blocks) and line region ids (tables)."""
    lay = analyse(boxes, unit)
    regions = []
    line_ids = []
    for k, g in enumerate(lay.lines):
        rid = f"{prefix}line{k}"
        line_ids.append(rid)
        regions.append(Region(id=rid, box=_union([boxes[i] for i in g]), kind="line", page=page,
                              children=[entity_ids[i] for i in g]))
    for k, g in enumerate(lay.blocks):
        regions.append(Region(id=f"{prefix}block{k}", box=_union([boxes[i] for i in g]), kind="block",
                              page=page, children=[entity_ids[i] for i in g]))
    for k, rows in enumerate(lay.tables):
        members = [i for r in rows for i in lay.lines[r]]
        regions.append(Region(id=f"{prefix}table{k}", box=_union([boxes[i] for i in members]), kind="table",
                              page=page, children=[line_ids[r] for r in rows]))
    return regions


# --- OCR words -> entity blocks --------------------------------------------------------------
def segment_words(words: list[tuple[str, Box]], unit: float | None = None,
                  max_gap: float = 1.2, split_after_colon: bool = True) -> list[list[int]]:
    """Join the words of each row into segments, splitting where the horizontal gap between
    neighbours exceeds ``max_gap`` text heights (the gaps that separate a form's fields), and
    after a word ending in ``:`` (a field label followed by its value)."""
    boxes = [b for _, b in words]
    unit = unit or median_height(boxes)
    segs = []
    for row in group_lines(boxes):
        cur = [row[0]]
        for i in row[1:]:
            prev = words[cur[-1]][0]
            if boxes[i].x0 - boxes[cur[-1]].x1 > max_gap * unit or (split_after_colon and prev.endswith(":")):
                segs.append(cur)
                cur = [i]
            else:
                cur.append(i)
        segs.append(cur)
    return segs


def _stack_fits(arr: np.ndarray, unit: float, max_gap: float, tol: float, min_ratio: float) -> np.ndarray:
    """``[n, n]``: whether segment ``j`` (box row ``j`` of ``arr``) may be stacked below segment
    ``i`` by :func:`merge_segments`' geometric test (never ``i`` below itself)."""
    a, b = arr[:, None], arr[None]
    vgap = b[..., 1] - a[..., 3]
    fits = (-0.3 * unit <= vgap) & (vgap <= max_gap * unit) & (np.abs(a[..., 0] - b[..., 0]) <= tol * unit) \
        & ~same_lines(a, b) & (a[..., 2] - a[..., 0] >= min_ratio * (b[..., 2] - b[..., 0]))
    np.fill_diagonal(fits, False)
    return fits


def merge_segments(boxes: list[Box], unit: float | None = None, max_gap: float = 0.6,
                   tol: float = 1.0, min_ratio: float = 0.7, texts: list[str] | None = None) -> list[list[int]]:
    """Stack segments of consecutive rows into one block when they are left-aligned (within
    ``tol`` text heights), at most ``max_gap`` text heights apart, and the upper one is not
    much shorter than the lower one (``min_ratio``: wrapped text fills its upper line, while a
    short field label above a longer value is a separate block); each segment joins at most
    one segment below it. With ``texts`` (each segment's text), a segment ending in ``:``
    (a field label) is never stacked onto the one below it."""
    unit = unit or median_height(boxes)
    order = sorted(range(len(boxes)), key=lambda i: (boxes[i].y0, boxes[i].x0))
    fits = _stack_fits(box_array(boxes)[order], unit, max_gap, tol, min_ratio)
    if texts is not None:
        fits[np.array([texts[i].rstrip().endswith(":") for i in order], dtype=bool)] = False   # a field label
    below: dict[int, int] = {}
    free = np.ones(len(order), dtype=bool)
    for k, i in enumerate(order):
        # the free segment that fits highest up: the first in reading order
        fit = np.flatnonzero(fits[k] & free)
        if len(fit):
            below[i] = order[fit[0]]
            free[fit[0]] = False
    return stack_chains(order, below)


def stack_chains(order: list[int], below: dict[int, int]) -> list[list[int]]:
    """The blocks of :func:`merge_segments`: from each segment (in ``order``) that is nobody's
    ``below``, the chain of segments stacked under it."""
    taken = set(below.values())
    blocks, seen = [], set()
    for i in order:
        if i in seen or i in taken:
            continue
        chain = [i]
        while chain[-1] in below:
            chain.append(below[chain[-1]])
        seen.update(chain)
        blocks.append(chain)
    return blocks
