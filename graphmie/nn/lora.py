"""Low-rank adapters (LoRA, Hu et al. 2022) for the linear layers of a frozen transformer.

``add_lora(module, rank)`` wraps every :class:`torch.nn.Linear` whose attribute name is in
``targets`` (BERT's ``query``/``key``/``value``/``dense``) in a :class:`LoRALinear`: the frozen
weight ``W`` plus a trainable update ``(alpha / rank) * B @ A`` with ``A`` [rank, in] and ``B``
[out, rank]; ``B`` starts at zero, so the adapted model starts as the pretrained one. Only the
adapters are trained and saved (``lora_a`` / ``lora_b`` in the state dict), which keeps a
fine-tuned encoder's shipped weights small. :func:`merge_lora` folds the updates into the
weights for inference.
"""
from __future__ import annotations

import math

import torch
from torch import nn

TARGETS = ("query", "key", "value", "dense")


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, rank: int = 8, alpha: float | None = None, dropout: float = 0.0):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.rank = rank
        self.scale = (alpha if alpha is not None else rank) / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.drop(x) @ self.lora_a.t() @ self.lora_b.t()) * self.scale

    def delta(self) -> torch.Tensor:
        return (self.lora_b @ self.lora_a) * self.scale


def add_lora(module: nn.Module, rank: int = 8, alpha: float | None = None, dropout: float = 0.0,
             targets: tuple[str, ...] = TARGETS) -> list[str]:
    """Wrap the target linear layers of ``module`` in place; returns the wrapped layers' names."""
    done = []
    for name, child in list(module.named_modules()):
        for attr, sub in list(child.named_children()):
            if attr in targets and isinstance(sub, nn.Linear):
                setattr(child, attr, LoRALinear(sub, rank, alpha, dropout))
                done.append(f"{name}.{attr}" if name else attr)
    return done


@torch.no_grad()
def merge_lora(module: nn.Module) -> int:
    """Fold every adapter into its base weight and unwrap it (inference); returns how many."""
    n = 0
    for name, child in list(module.named_modules()):
        for attr, sub in list(child.named_children()):
            if isinstance(sub, LoRALinear):
                sub.base.weight += sub.delta().to(sub.base.weight.dtype)
                setattr(child, attr, sub.base)
                n += 1
    return n
