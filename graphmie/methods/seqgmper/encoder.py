"""The word encoder tuned instead of frozen: MiniLM (all-MiniLM-L6-v2) with LoRA adapters on every
linear layer of all six transformer layers (:mod:`graphmie.nn.lora`: query, key, value, attention
output, intermediate and output projections), the pretrained weights frozen.

It computes what :class:`~.samples.Featurizer` caches for the frozen encoder -- each step encoded
alone (short sequences), a word's vector the mean of its sub-words -- for all steps of a document
in one padded batch. The adapters start at zero, so before training it gives the frozen features.
Only the adapters are trained and stored (rank 8: 0.33 M parameters, 0.66 MB in fp16).
"""
from __future__ import annotations

import torch
from torch import nn

from ...nn.lora import add_lora

#: the sub-word limit of one step, as the frozen Featurizer's
MAX_PIECES = 256


class LoRAWordEncoder(nn.Module):
    def __init__(self, rank: int = 8, alpha: float = 16.0):
        super().__init__()
        from ...encoders.text import load_backbone

        self.tokenizer, self.bert = load_backbone()
        for p in self.bert.parameters():
            p.requires_grad_(False)
        self.adapted = add_lora(self.bert.encoder, rank=rank, alpha=alpha)
        self.dim = self.bert.config.hidden_size

    def pieces(self, steps: list[list[str]]) -> list[tuple[list[int], list[int | None]]]:
        """Per step: its sub-word ids and the word each belongs to (None for [CLS]/[SEP])."""
        out = []
        for words in steps:
            if not words:
                out.append(([], []))
                continue
            enc = self.tokenizer([words], is_split_into_words=True, truncation=True, max_length=MAX_PIECES)
            out.append((enc["input_ids"][0], enc.word_ids(0)))
        return out

    def forward(self, pieces: list[tuple[list[int], list[int | None]]], n_words: list[int]) -> torch.Tensor:
        """Word vectors ``[sum(n_words), dim]``, steps in order (words cut by truncation stay zero)."""
        rows = [k for k, (ids, _) in enumerate(pieces) if ids]
        total = sum(n_words)
        out = torch.zeros(total, self.dim)
        if not rows:
            return out
        width = max(len(pieces[k][0]) for k in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for r, k in enumerate(rows):
            ids[r, :len(pieces[k][0])] = torch.tensor(pieces[k][0])
            mask[r, :len(pieces[k][0])] = 1
        hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        offsets = [0]
        for n in n_words:
            offsets.append(offsets[-1] + n)
        index, src = [], []
        for r, k in enumerate(rows):
            for pos, w in enumerate(pieces[k][1]):
                if w is not None:
                    index.append(offsets[k] + w)
                    src.append(r * width + pos)
        index = torch.tensor(index)
        flat = hidden.reshape(-1, self.dim)[torch.tensor(src)]
        summed = out.index_add(0, index, flat)
        count = torch.zeros(total).index_add(0, index, torch.ones(len(src))).clamp(min=1).unsqueeze(-1)
        return summed / count
