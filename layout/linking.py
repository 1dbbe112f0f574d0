"""Question→answer link candidates, pair features, and the geometric baseline rule.

The baseline (from the issue): *each answer takes the nearest question on its line to the
left, else the nearest question just above it* (overlapping it horizontally).

Candidates for the learned scorer: for every answer, its ``k`` nearest questions by box gap
(plus the rule's choice), so that the scorer sees all plausible pairs; the fraction of
gold links that survive this step is the *candidate recall*.
"""
from __future__ import annotations

import math

import numpy as np

from graphmie.document import Box

from .geometry import (SECTORS, box_array, centers, gaps, h_overlap, h_overlaps, median_height, same_line,
                       same_lines, sectors, v_overlaps)
from .graph import gap_matrix

PAIR_DIM = 11 + len(SECTORS)


def rule_question(a: int, boxes: list[Box], questions: list[int], unit: float) -> int | None:
    """The baseline's question for answer ``a`` (an index into ``boxes``), or None."""
    ab = boxes[a]
    best, best_d = None, math.inf
    for q in questions:
        qb = boxes[q]
        if same_line(qb, ab) and qb.center[0] < ab.center[0] and qb.x0 < ab.x0:
            d = max(0.0, ab.x0 - qb.x1)
            if d < best_d:
                best, best_d = q, d
    if best is not None:
        return best
    for q in questions:
        qb = boxes[q]
        if qb.center[1] < ab.center[1] and qb.y1 <= ab.y0 + 0.5 * unit and h_overlap(qb, ab) > 0:
            d = max(0.0, ab.y0 - qb.y1)
            if d < best_d:
                best, best_d = q, d
    return best


def rule_questions(answers: list[int], boxes: list[Box], questions: list[int], unit: float) -> list[int | None]:
    """:func:`rule_question` of each of ``answers``, for all of them at once."""
    if not answers or not questions:
        return [None] * len(answers)
    arr = box_array(boxes)
    q, a = arr[questions][None], arr[answers][:, None]          # [1, Q, 4], [A, 1, 4]
    (qx, qy), (ax, ay) = centers(q), centers(a)
    left = same_lines(q, a) & (qx < ax) & (q[..., 0] < a[..., 0])
    above = (qy < ay) & (q[..., 3] <= a[..., 1] + 0.5 * unit) & (h_overlaps(q, a) > 0)
    # the first question of the least distance (np.argmin), as the loop's strict "<" keeps
    on_line = np.argmin(np.where(left, np.maximum(0.0, a[..., 0] - q[..., 2]), np.inf), 1)
    up = np.argmin(np.where(above, np.maximum(0.0, a[..., 1] - q[..., 3]), np.inf), 1)
    return [questions[on_line[r]] if left[r].any() else questions[up[r]] if above[r].any() else None
            for r in range(len(answers))]


def rule_links(boxes: list[Box], labels: list[str]) -> set[tuple[int, int]]:
    """The baseline's (question, answer) index pairs for one page."""
    unit = median_height(boxes)
    qs = [i for i, l in enumerate(labels) if l == "question"]
    ans = [i for i, l in enumerate(labels) if l == "answer"]
    return {(q, a) for a, q in zip(ans, rule_questions(ans, boxes, qs, unit)) if q is not None}


def candidates(boxes: list[Box], labels: list[str], k: int = 8) -> list[tuple[int, int]]:
    """(question, answer) index pairs: each answer with its ``k`` nearest questions + the rule's."""
    qs = [i for i, l in enumerate(labels) if l == "question"]
    ans = [i for i, l in enumerate(labels) if l == "answer"]
    if not qs or not ans:
        return []
    unit = median_height(boxes)
    arr = box_array(boxes)
    nearest = np.argsort(gap_matrix(arr[ans], arr[qs]), axis=1, kind="stable")[:, :k].tolist()
    out = []
    for a, row, rq in zip(ans, nearest, rule_questions(ans, boxes, qs, unit)):
        near = [qs[j] for j in row]
        if rq is not None and rq not in near:
            near.append(rq)
        out.extend((q, a) for q in near)
    return out


def candidate_ranks(pairs: list[tuple[int, int]], dist: list[float]) -> list[int]:
    """Each pair's rank among the pairs of its answer, by ``dist`` and then by question index
    (a pair listed twice takes the rank of its later copy)."""
    rank: dict[tuple[int, int], int] = {}
    by_answer: dict[int, list[tuple[float, int]]] = {}
    for (q, a), d in zip(pairs, dist):
        by_answer.setdefault(a, []).append((d, q))
    for a, lst in by_answer.items():
        for r, (_, q) in enumerate(sorted(lst)):
            rank[(q, a)] = r
    return [rank[p] for p in pairs]


def pair_features(boxes: list[Box], pairs: list[tuple[int, int]], labels: list[str]) -> np.ndarray:
    """Geometry of each (question, answer) pair: offsets, gaps, overlaps, direction sector,
    the pair's distance rank among the answer's candidates, and whether the rule picks it."""
    out = np.zeros((len(pairs), PAIR_DIM), dtype=np.float32)
    if not pairs:
        return out
    unit = median_height(boxes)
    arr = box_array(boxes)
    qi, ai = np.array(pairs, dtype=np.int64).T
    qb, ab = arr[qi], arr[ai]
    gx, gy = gaps(qb, ab)
    rank = candidate_ranks(pairs, [math.hypot(x, y) for x, y in zip(gx.tolist(), gy.tolist())])
    qs = [i for i, l in enumerate(labels) if l == "question"]
    answers = list(dict.fromkeys(a for _, a in pairs))
    rule = dict(zip(answers, rule_questions(answers, boxes, qs, unit)))
    (qx, qy), (ax, ay) = centers(qb), centers(ab)
    out[:, 0] = np.clip((ax - qx) / (30 * unit), -1, 1)
    out[:, 1] = np.clip((ay - qy) / (30 * unit), -1, 1)
    out[:, 2] = np.log1p(gx / unit) / 4
    out[:, 3] = np.log1p(gy / unit) / 4
    out[:, 4] = v_overlaps(qb, ab)
    out[:, 5] = h_overlaps(qb, ab)
    out[:, 6] = same_lines(qb, ab)
    out[:, 7] = qb[:, 2] <= ab[:, 0] + unit
    out[:, 8] = qb[:, 3] <= ab[:, 1] + 0.5 * unit
    out[:, 9] = np.minimum(rank, 10) / 10
    out[:, 10] = [rule[a] == q for q, a in pairs]
    out[np.arange(len(pairs)), 11 + sectors(qb, ab)] = 1.0
    return out
