"""Spatial relations between two boxes, as used to type the edges of a layout graph.

Coordinates are page pixels with the origin top-left (y grows downwards); directions
are reported as a reader sees them (``N`` = above).
"""
from __future__ import annotations

import math

import numpy as np

from graphmie.document import Box

#: the eight direction sectors, counter-clockwise from east, 45° each, centred on the axis
SECTORS = ("E", "NE", "N", "NW", "W", "SW", "S", "SE")
#: distance buckets, in units of the page's median text height: [0,1), [1,3), [3,8), [8,inf)
DIST_EDGES = (1.0, 3.0, 8.0)
DIST_BUCKETS = ("touching", "near", "mid", "far")
#: alignment flags
ALIGNMENTS = ("same_line", "left", "right", "center_x", "top")


def sector(a: Box, b: Box) -> int:
    """Direction of ``b``'s centre seen from ``a``'s centre, as an index into :data:`SECTORS`."""
    (ax, ay), (bx, by) = a.center, b.center
    dx, dy = bx - ax, ay - by            # flip y so that "up" is positive
    if dx == 0 and dy == 0:
        return 0
    ang = math.degrees(math.atan2(dy, dx)) % 360.0
    return int(((ang + 22.5) % 360.0) // 45.0)


def gap(a: Box, b: Box) -> tuple[float, float]:
    """Horizontal and vertical empty space between two boxes (0 where they overlap)."""
    gx = max(0.0, max(a.x0, b.x0) - min(a.x1, b.x1))
    gy = max(0.0, max(a.y0, b.y0) - min(a.y1, b.y1))
    return gx, gy


def gap_distance(a: Box, b: Box) -> float:
    gx, gy = gap(a, b)
    return math.hypot(gx, gy)


def distance_bucket(a: Box, b: Box, unit: float) -> int:
    d = gap_distance(a, b) / max(unit, 1e-6)
    for i, edge in enumerate(DIST_EDGES):
        if d < edge:
            return i
    return len(DIST_EDGES)


def v_overlap(a: Box, b: Box) -> float:
    """Vertical overlap as a fraction of the shorter box's height."""
    inter = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(0.0, inter) / max(min(a.height, b.height), 1e-6)


def h_overlap(a: Box, b: Box) -> float:
    inter = min(a.x1, b.x1) - max(a.x0, b.x0)
    return max(0.0, inter) / max(min(a.width, b.width), 1e-6)


def same_line(a: Box, b: Box, thresh: float = 0.5) -> bool:
    return v_overlap(a, b) >= thresh


def alignment(a: Box, b: Box, tol: float) -> tuple[int, ...]:
    """Multi-hot flags, in the order of :data:`ALIGNMENTS`."""
    return (int(same_line(a, b)), int(abs(a.x0 - b.x0) <= tol), int(abs(a.x1 - b.x1) <= tol),
            int(abs(a.center[0] - b.center[0]) <= tol), int(abs(a.y0 - b.y0) <= tol))


def median_height(boxes: list[Box], default: float = 12.0) -> float:
    hs = sorted(b.height for b in boxes if b.height > 0)
    return hs[len(hs) // 2] if hs else default


# --- the same relations for arrays of boxes ---------------------------------------------------
# Each takes ``[..., 4]`` arrays of ``[x0, y0, x1, y1]`` that broadcast together (``a[:, None], b[None]``
# for every pair of two lists, or two ``[P, 4]`` arrays for P pairs) and gives, element by element,
# the same value as the function of one pair of boxes above.
def box_array(boxes: list[Box]) -> np.ndarray:
    """``[n, 4]`` float64 ``[x0, y0, x1, y1]`` rows."""
    return np.array([b.to_list() for b in boxes], dtype=np.float64).reshape(-1, 4)


def centers(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The centre ``(x, y)`` of each box (:attr:`Box.center`)."""
    return (a[..., 0] + a[..., 2]) / 2, (a[..., 1] + a[..., 3]) / 2


def sectors(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`sector` (int64)."""
    (ax, ay), (bx, by) = centers(a), centers(b)
    dx, dy = bx - ax, ay - by
    ang = np.degrees(np.arctan2(dy, dx)) % 360.0
    out = (((ang + 22.5) % 360.0) // 45.0).astype(np.int64)
    out[(dx == 0) & (dy == 0)] = 0
    return out


def gaps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`gap`: the horizontal and the vertical empty space."""
    gx = np.maximum(0.0, np.maximum(a[..., 0], b[..., 0]) - np.minimum(a[..., 2], b[..., 2]))
    gy = np.maximum(0.0, np.maximum(a[..., 1], b[..., 1]) - np.minimum(a[..., 3], b[..., 3]))
    return gx, gy


def v_overlaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`v_overlap`."""
    inter = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    return np.maximum(0.0, inter) / np.maximum(np.minimum(a[..., 3] - a[..., 1], b[..., 3] - b[..., 1]), 1e-6)


def h_overlaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`h_overlap`."""
    inter = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    return np.maximum(0.0, inter) / np.maximum(np.minimum(a[..., 2] - a[..., 0], b[..., 2] - b[..., 0]), 1e-6)


def same_lines(a: np.ndarray, b: np.ndarray, thresh: float = 0.5) -> np.ndarray:
    """:func:`same_line` (bool)."""
    return v_overlaps(a, b) >= thresh
