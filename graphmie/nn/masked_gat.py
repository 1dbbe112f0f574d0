"""GATv2-style attention layer whose messages are gated by per-edge masks (MRE-ISE's GIB edge adjustment)."""
from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax


class MaskedGATLayer(MessagePassing):
    r"""Multi-head GATv2 attention over typed edges, with an optional keep-mask per edge.

    For an edge :math:`j \to i` with edge features :math:`e_{ji}` (per head):

    .. math::
        \alpha_{ji} = \operatorname{softmax}_{j \in \mathcal{N}(i)}\big(a^\top
            \operatorname{LeakyReLU}_{0.2}(W_s x_j + W_d x_i + W_e e_{ji})\big), \qquad
        h_i = \sum_j m_{ji}\, \alpha_{ji}\, (W_s x_j + W_e e_{ji})

    (the softmax runs over the incoming edges of each node; :math:`m_{ji}` is the edge mask,
    1 when none is given), and the output is
    :math:`\operatorname{LayerNorm}(x + W_o \operatorname{GELU}(h))` (dropout on the attention
    and on the update while training).
    """

    def __init__(self, dim: int, edge_dim: int, heads: int = 4, dropout: float = 0.1):
        super().__init__(aggr="add", node_dim=0)
        self.heads, self.dh = heads, dim // heads
        self.w_src = nn.Linear(dim, dim)
        self.w_dst = nn.Linear(dim, dim)
        self.w_edge = nn.Linear(edge_dim, dim)
        self.att = nn.Parameter(torch.randn(heads, self.dh) * 0.1)
        self.out = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,
                edge_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: [N, dim]; edge_index: [2, E] (source, target); edge_attr: [E, edge_dim]; edge_mask: [E] or None."""
        n = x.size(0)
        xs = self.w_src(x).view(n, self.heads, self.dh)
        xd = self.w_dst(x).view(n, self.heads, self.dh)
        e = self.w_edge(edge_attr).view(-1, self.heads, self.dh)
        agg = self.propagate(edge_index, x=(xs, xd), e=e, edge_mask=edge_mask, size=(n, n))
        return self.norm(x + self.drop(self.out(torch.nn.functional.gelu(agg.reshape(n, -1)))))

    def message(self, x_j, x_i, e, edge_mask, index, ptr, size_i):
        logits = (torch.nn.functional.leaky_relu(x_j + x_i + e, 0.2) * self.att).sum(-1)     # [E, heads]
        alpha = softmax(logits, index, ptr, size_i)
        if edge_mask is not None:
            alpha = alpha * edge_mask.unsqueeze(-1)
        return (x_j + e) * self.drop(alpha).unsqueeze(-1)
