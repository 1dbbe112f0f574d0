"""Sequential element attention (after SeqGMPER's sequential multimodal attention).

In a procedure, the state of an entity in step *t* depends on what happened to it in
step *t-1* ("cut the onion" -> "fry *it*"). SeqGMPER lets every element (text token or
image region) of step *t* attend to the elements of the previous step, so that state
changes carry over from step to step. This layer implements exactly that: multi-head
scaled dot-product attention whose mask allows node ``i`` to attend to node ``j`` only
when both belong to the same document and ``step[j] == step[i] - 1``. Nodes of the first
step (nothing to attend to) get no update. The result is added back through a learned
gate: ``x' = LayerNorm(x + sigmoid(g([x, a])) * a)``.

With ``detach_context=True`` the attention (queries, keys, values and gate) reads a
gradient-stopped copy of ``x``: whatever trains this layer (the flow losses through ``a``, an
attention loss) does not reach the encoder below it through the attention, so that encoder
is shaped by the step-local objectives; the residual path passes gradients as usual.
"""
from __future__ import annotations

import torch
from torch import nn


def previous_step_mask(step: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
    """``[N, N]`` bool: ``mask[i, j]`` is True where node ``i`` may attend to node ``j``."""
    mask = step.view(-1, 1) - 1 == step.view(1, -1)
    if batch is not None:
        mask &= batch.view(-1, 1) == batch.view(1, -1)
    return mask


class SequentialElementAttention(nn.Module):
    def __init__(self, dim: int, heads: int = 4, dropout: float = 0.1, detach_context: bool = False):
        super().__init__()
        self.detach_context = detach_context
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.dim, self.heads = dim, heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.gate = nn.Linear(2 * dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.p = dropout
        nn.init.constant_(self.gate.bias, -1.0)      # start close to the identity: carry-over is learned
        # attention dropout draws from its own generator, leaving the global random stream alone:
        # a model trained with and without this layer then sees the same dropout masks elsewhere
        self._gen = torch.Generator().manual_seed(int(torch.randint(2 ** 62, ())))

    def _dropout(self, att: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0:
            return att
        keep = torch.rand(att.shape, generator=self._gen) >= self.p
        return att * keep.to(att.device) / (1 - self.p)

    def forward(self, x: torch.Tensor, step: torch.Tensor, batch: torch.Tensor | None = None,
                return_attention: bool = False):
        """``x``: ``[N, dim]`` node features; ``step``: ``[N]`` step index of each node;
        ``batch``: ``[N]`` document index (None = one document). Returns ``x'`` (and the
        attention ``[heads, N, N]`` when ``return_attention``)."""
        n, h, d = x.size(0), self.heads, self.dim // self.heads
        mask = previous_step_mask(step, batch)                              # [N, N]
        c = x.detach() if self.detach_context else x
        q = self.q(c).view(n, h, d).transpose(0, 1)                         # [h, N, d]
        k = self.k(c).view(n, h, d).transpose(0, 1)
        v = self.v(c).view(n, h, d).transpose(0, 1)
        logits = q @ k.transpose(1, 2) / d ** 0.5                           # [h, N, N]
        logits = logits.masked_fill(~mask.unsqueeze(0), float("-inf"))
        has_prev = mask.any(dim=1)                                          # [N]
        logits = torch.where(has_prev.view(1, -1, 1), logits, torch.zeros_like(logits))
        att = torch.softmax(logits, dim=-1) * has_prev.view(1, -1, 1)       # rows with no key -> 0
        att = att.masked_fill(~mask.unsqueeze(0), 0.0)
        a = (self._dropout(att) @ v).transpose(0, 1).reshape(n, self.dim)
        a = self.out(a) * has_prev.view(-1, 1)
        g = torch.sigmoid(self.gate(torch.cat([c, a], dim=-1)))
        y = self.norm(x + g * a)
        return (y, att) if return_attention else y
