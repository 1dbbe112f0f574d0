"""BIO decoding under the scheme's constraints: ``I-X`` only after ``B-X`` or ``I-X``, never first.

Taggers that score each word alone (a softmax per word) can emit ``O I-X`` or ``B-X I-Y``; the
best path that obeys the constraints (Viterbi over the words' log-probabilities, with forbidden
transitions at -1e4) is what the MNER tagger and the procedure tagger decode.
"""
from __future__ import annotations

from functools import lru_cache

import torch

FORBIDDEN = -1e4


def allowed_transitions(labels) -> torch.Tensor:
    """``[L, L]`` bool: ``ok[i, j]`` when label ``j`` may follow label ``i``."""
    return _allowed(tuple(labels)).clone()


@lru_cache(maxsize=16)
def _allowed(labels: tuple) -> torch.Tensor:
    """:func:`allowed_transitions`, built once per label set (read-only: callers get a copy)."""
    n = len(labels)
    ok = torch.ones(n, n, dtype=torch.bool)
    for j, lj in enumerate(labels):
        if lj.startswith("I-"):
            for i, li in enumerate(labels):
                ok[i, j] = li != "O" and li[2:] == lj[2:]
    return ok


def bio_viterbi(emis: torch.Tensor, labels) -> list[int]:
    """Best label path for ``emis`` ``[n_words, n_labels]`` (log-probabilities) under the BIO constraints."""
    n = emis.shape[0]
    if n == 0:
        return []
    trans = torch.where(_allowed(tuple(labels)), 0.0, FORBIDDEN).to(emis.dtype)
    start = torch.tensor([FORBIDDEN if lab.startswith("I-") else 0.0 for lab in labels], dtype=emis.dtype)
    score = start + emis[0]
    back = []
    for i in range(1, n):
        best, idx = (score[:, None] + trans).max(0)     # [from, to] -> best predecessor of each label
        back.append(idx)
        score = best + emis[i]
    path = [int(score.argmax())]
    for idx in reversed(back):
        path.append(int(idx[path[-1]]))
    return path[::-1]
