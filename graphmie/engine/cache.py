"""The one frozen-encoder cache: what a frozen (untrained) encoder computes is computed once.

Two shapes of cached output, both on disk under :func:`graphmie.config.cache_dir` (never in the
repo; safe to delete at any time), written atomically so a parallel reader never sees half a file:

* :func:`frozen_states` -- per-item hidden states of the frozen bottom layers of a transformer
  (fp16, one ``[length, hidden]`` tensor per item), batched by length; keyed by a hash of the
  inputs and of what produced them. Training then runs only the layers above.
* :class:`FeatureStore` -- a persistent mapping ``key -> tensor (or tuple of tensors / lists)``
  for per-text features (sentence vectors, per-step word vectors and parses).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..config import cache_dir


def content_key(*parts) -> str:
    """A short, stable hash of JSON-able ``parts``."""
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]


def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _load(path: Path):
    try:
        return torch.load(path, weights_only=True)
    except Exception:  # noqa: BLE001 - a stale or broken cache file is recomputed
        return None


def frozen_states(items: Sequence[dict], run: Callable[[list[dict]], tuple[torch.Tensor, Sequence[int]]],
                  cache: str | None = None, key: tuple = (), batch_size: int = 64, desc: str = "frozen layers",
                  progress: bool = True) -> list[torch.Tensor]:
    """``run(batch)`` -> (hidden states ``[B, L, H]``, true length of each item); returns one fp16
    ``[length, H]`` tensor per item, in the order of ``items``. With ``cache`` (a cache folder name)
    the result is kept on disk under a hash of ``key`` and the items' ``input_ids``."""
    path = None
    if cache is not None:
        path = cache_dir(cache) / f"frozen_{content_key(list(key), [it['input_ids'] for it in items])}.pt"
        if path.exists():
            got = _load(path)
            if got is not None and len(got) == len(items):
                return got
    order = sorted(range(len(items)), key=lambda i: len(items[i]["input_ids"]))
    out: list[torch.Tensor | None] = [None] * len(items)
    starts = range(0, len(order), batch_size)
    if progress and len(items) >= 200:
        from tqdm import tqdm

        starts = tqdm(starts, desc=desc, unit="batch", file=sys.stderr)
    with torch.inference_mode():
        for s in starts:
            idx = order[s:s + batch_size]
            h, lengths = run([items[i] for i in idx])
            h = h.cpu()
            for j, i in enumerate(idx):
                out[i] = h[j, :int(lengths[j])].half().clone()
    if path is not None:
        _atomic_save(out, path)
    return out  # type: ignore[return-value]


class FeatureStore:
    """A persistent ``key -> features`` mapping (``cache``: the cache folder name, None = memory only)."""

    def __init__(self, cache: str | None, name: str):
        self.path = cache_dir(cache) / f"{name}.pt" if cache else None
        self.data: dict = {}
        self._dirty = False
        if self.path is not None and self.path.exists():
            self.data = _load(self.path) or {}

    def __contains__(self, key) -> bool:
        return key in self.data

    def get(self, key, compute: Callable[[], object]):
        if key not in self.data:
            self.data[key] = compute()
            self._dirty = True
        return self.data[key]

    def update(self, items: dict) -> None:
        self.data.update(items)
        self._dirty = self._dirty or bool(items)

    def save(self) -> None:
        if self.path is not None and self._dirty:
            _atomic_save(self.data, self.path)
            self._dirty = False
