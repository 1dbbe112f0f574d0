"""The one static word-piece embedder: the mean of MiniLM's *input* word-piece embeddings.

No transformer pass (about 100x cheaper than the contextual encoder): a text's vector is the
L2-normalised mean of the embedding-table rows of its first ``max_pieces`` word pieces, zeros for
a text with none. Used for form blocks (``max_pieces=64``) and for scene-graph phrases
(``max_pieces=16``, the cross-modal graph's shared text/caption space). The table is loaded once
per process from the installed MiniLM (or ``GRAPHMIE_TEXT_MODEL``).
"""
from __future__ import annotations

from functools import lru_cache

import torch


@lru_cache(maxsize=2)
def _table(model_path: str | None = None):
    from ..encoders.text import load_backbone

    tok, model = load_backbone(model_path)
    return tok, model.get_input_embeddings().weight.detach().clone()


class StaticEmbedder:
    def __init__(self, max_pieces: int = 64, model_path: str | None = None):
        self.tokenizer, self.table = _table(model_path)
        self.dim = self.table.shape[1]
        self.max_pieces = max_pieces
        self._cache: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def encode(self, texts: list[str], progress: bool = False) -> torch.Tensor:
        """``[len(texts), dim]`` float vectors (ordinary tensors: callers may change them in place)."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            ids = self.tokenizer(todo, add_special_tokens=False, truncation=True,
                                 max_length=self.max_pieces)["input_ids"]
            for t, seq in zip(todo, ids):
                self._cache[t] = torch.nn.functional.normalize(self.table[seq].mean(0), dim=0) if seq \
                    else torch.zeros(self.dim)
        if not texts:
            return torch.zeros(0, self.dim)
        return torch.stack([self._cache[t] for t in texts])

    __call__ = encode

    def clear(self) -> None:
        self._cache.clear()


@lru_cache(maxsize=4)
def get_static_embedder(max_pieces: int = 64) -> StaticEmbedder:
    """A process-wide shared embedder for ``max_pieces``."""
    return StaticEmbedder(max_pieces)
