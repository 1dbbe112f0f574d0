"""A text-image consistency gate (after CAG, CIKM 2024, and TMR's text-image divergence, ACL 2023).

Many posts' pictures have nothing to do with the relation their text states. The gate scores how
much an image description agrees with the post's text, from the two sentences' vectors in one
embedding space (MiniLM sentence embeddings of the text and of the caption):

    g = sigmoid(MLP([t, c, t * c, |t - c|, cos(t, c)]))  in (0, 1)

and the model scales its caption and visual branches by ``g`` per post (see
:mod:`graphmie.methods.mre_ise.model`), so a caption the gate calls unrelated can hardly move the
relation. Besides the relation loss, the gate gets a consistency objective (:meth:`consistency_loss`):
a post with its own caption is "consistent", with another post's caption "inconsistent".
"""
from __future__ import annotations

import torch
from torch import nn


class ConsistencyGate(nn.Module):
    def __init__(self, dim: int = 384, hidden: int = 64, init_open: float = 2.0):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(4 * dim + 1, hidden), nn.GELU(), nn.Linear(hidden, 1))
        nn.init.constant_(self.mlp[-1].bias, init_open)      # starts mostly open: g ~ sigmoid(2) = 0.88

    def logit(self, text: torch.Tensor, caption: torch.Tensor) -> torch.Tensor:
        """[B, dim] text and caption vectors -> [B] gate logits."""
        t = nn.functional.normalize(text.float(), dim=-1)
        c = nn.functional.normalize(caption.float(), dim=-1)
        cos = (t * c).sum(-1, keepdim=True)
        return self.mlp(torch.cat([t, c, t * c, (t - c).abs(), cos], -1)).squeeze(-1)

    def forward(self, text: torch.Tensor, caption: torch.Tensor) -> torch.Tensor:
        """[B] gate values in (0, 1). The gate judges a caption: a post without one (a zero vector) is not
        gated (1.0; it has no caption tokens, and its image regions, if any, keep their full weight)."""
        g = torch.sigmoid(self.logit(text, caption))
        return torch.where(caption.abs().sum(-1) > 0, g, torch.ones_like(g))

    def consistency_loss(self, text: torch.Tensor, caption: torch.Tensor,
                         generator: torch.Generator | None = None) -> torch.Tensor:
        """Binary cross-entropy: each post with its own caption -> 1, with a caption shifted from
        another post of the batch -> 0 (posts without a caption and identical captions left out)."""
        has = caption.abs().sum(-1) > 0
        text, caption = text[has], caption[has]
        n = text.size(0)
        if n < 2:
            return text.new_zeros(())
        shift = int(torch.randint(1, n, (1,), generator=generator))
        other = caption.roll(shift, 0)
        differ = (other - caption).abs().sum(-1) > 1e-6
        pos = self.logit(text, caption)
        neg = self.logit(text[differ], other[differ])
        bce = nn.functional.binary_cross_entropy_with_logits
        return 0.5 * (bce(pos, torch.ones_like(pos)) + (bce(neg, torch.zeros_like(neg)) if neg.numel() else 0.0))
