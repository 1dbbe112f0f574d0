"""MRE-ISE-style multimodal relation classifier (Wu et al., ACL 2023, "Information Screening whilst
Exploiting"), on MiniLM.

* **Entity pair** from the fine-tuned MiniLM: the post is marked ``< head > ... [ tail ]`` and the image
  description appended as the second segment; the hidden states of the two opening markers are the
  head/tail representations. The top ``finetune_layers`` are fine-tuned; the bottom layers stay frozen
  (so their outputs can be cached) or, with ``lora_rank > 0``, are adapted by LoRA
  (:mod:`graphmie.nn.lora`).
* **Cross-modal graph** (``scene_graphs.crossmodal``) encoded by a masked GAT: attention messages
  multiplied by the GIB edge masks, node features by the GIB node masks (``graphmie.nn.gib``).
* **Readout**: pair-conditioned attention pooling + mean of the head and tail nodes, squeezed through a
  Gaussian bottleneck.
* **Latent multimodal topics** (``graphmie.nn.topic``).
* A relation classifier over the concatenation.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch_geometric.utils import softmax as pyg_softmax

from scene_graphs.crossmodal import EDGE_TYPES, NODE_TYPES

from .gib import GaussianBottleneck, GIBMasks
from .topic import NeuralTopicModel


def extended_mask(mask: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class MaskedGATLayer(nn.Module):
    """GAT(v2) layer whose messages are gated by per-edge masks (GIB edge adjustment)."""

    def __init__(self, dim: int, edge_dim: int, heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.heads, self.dh = heads, dim // heads
        self.w_src = nn.Linear(dim, dim)
        self.w_dst = nn.Linear(dim, dim)
        self.w_edge = nn.Linear(edge_dim, dim)
        self.att = nn.Parameter(torch.randn(heads, self.dh) * 0.1)
        self.out = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, edge_index, edge_attr, edge_mask=None):
        n = x.size(0)
        src, dst = edge_index
        xs = self.w_src(x).view(n, self.heads, self.dh)
        xd = self.w_dst(x).view(n, self.heads, self.dh)
        e = self.w_edge(edge_attr).view(-1, self.heads, self.dh)
        h = torch.nn.functional.leaky_relu(xs[src] + xd[dst] + e, 0.2)
        logits = (h * self.att).sum(-1)                                  # [E, heads]
        alpha = pyg_softmax(logits, dst, num_nodes=n)
        if edge_mask is not None:
            alpha = alpha * edge_mask.unsqueeze(-1)
        msg = (xs[src] + e) * self.drop(alpha).unsqueeze(-1)
        agg = torch.zeros_like(xs).index_add_(0, dst, msg).reshape(n, -1)
        return self.norm(x + self.drop(self.out(torch.nn.functional.gelu(agg))))


class PostREModel(nn.Module):
    def __init__(self, backbone_config=None, top_layers=None, n_labels: int = 23, hidden: int = 384,
                 gnn_dim: int = 128, gnn_layers: int = 2, z_dim: int = 64, use_graph: bool = True,
                 use_gib: bool = True, use_topics: bool = True, vocab_size: int = 0, n_topics: int = 16,
                 tau: float = 0.5, prior: float = 0.7, dropout: float = 0.1, lora_layers: int = 0,
                 lora_rank: int = 0, lora_alpha: float | None = None):
        super().__init__()
        self.use_graph, self.use_gib, self.use_topics = use_graph, use_gib, use_topics and vocab_size > 0
        self.top = nn.ModuleList(copy.deepcopy(list(top_layers))) if top_layers is not None else nn.ModuleList()
        # the first `lora_layers` encoder layers stay frozen and get low-rank adapters
        self.lora_layers = lora_layers if lora_rank else 0
        if self.lora_layers:
            from .lora import add_lora

            for layer in self.top[:self.lora_layers]:
                for p in layer.parameters():
                    p.requires_grad_(False)
                add_lora(layer, lora_rank, lora_alpha)
        self.drop = nn.Dropout(dropout)
        feat = 2 * hidden
        if use_graph:
            self.node_emb = nn.Linear(hidden, gnn_dim)
            self.type_emb = nn.Embedding(len(NODE_TYPES), gnn_dim)
            self.geo = nn.Linear(9, gnn_dim)
            self.role = nn.Linear(2, gnn_dim)
            self.edge_emb = nn.Embedding(2 * len(EDGE_TYPES), 32)
            self.pair_proj = nn.Linear(2 * hidden, gnn_dim)
            self.gib = GIBMasks(gnn_dim, 32, tau=tau, prior=prior) if use_gib else None
            self.gnn = nn.ModuleList(MaskedGATLayer(gnn_dim, 32, dropout=dropout) for _ in range(gnn_layers))
            self.pool_att = nn.Linear(2 * gnn_dim, 1)
            self.bottleneck = GaussianBottleneck(3 * gnn_dim, z_dim) if use_gib else nn.Linear(3 * gnn_dim, z_dim)
            feat += z_dim
        if self.use_topics:
            self.ntm = NeuralTopicModel(vocab_size, n_topics, dim_out=64)
            feat += n_topics + 64
        self.classifier = nn.Sequential(nn.Linear(feat, hidden), nn.GELU(), nn.Dropout(dropout),
                                        nn.Linear(hidden, n_labels))

    def is_trainable_key(self, k: str) -> bool:
        """Saved tensors: everything but the frozen weights of LoRA-adapted layers."""
        return not any(k.startswith(f"top.{i}.") for i in range(self.lora_layers)) or ".lora_" in k

    def trainable_state(self) -> dict:
        return {k: v for k, v in self.state_dict().items() if self.is_trainable_key(k)}

    def encode_top(self, hidden, mask):
        ext = extended_mask(mask, hidden.dtype)
        for layer in self.top:
            hidden = layer(hidden, ext)
        return hidden

    def graph_features(self, g: dict, pair: torch.Tensor):
        x = (self.node_emb(g["emb"].float()) + self.type_emb(g["node_type"]) + self.geo(g["geo"])
             + self.role(g["role"]))
        ea = self.edge_emb(g["edge_type"])
        p = self.pair_proj(pair)
        batch, ei = g["batch"], g["edge_index"]
        aux = x.new_zeros(())
        node_mask = edge_mask = None
        if self.gib is not None:
            node_mask, edge_mask, aux = self.gib(x, ei, ea, p, batch)
            x = x * node_mask.unsqueeze(-1)
        for layer in self.gnn:
            x = layer(x, ei, ea, edge_mask)
        B = pair.size(0)
        att = pyg_softmax(self.pool_att(torch.cat([x, p[batch]], -1)).squeeze(-1), batch, num_nodes=x.size(0))
        pooled = x.new_zeros(B, x.size(1)).index_add_(0, batch, x * att.unsqueeze(-1))
        roles = []
        for k in range(2):
            w = g["role"][:, k:k + 1]
            s = x.new_zeros(B, x.size(1)).index_add_(0, batch, x * w)
            c = x.new_zeros(B, 1).index_add_(0, batch, w)
            roles.append(s / c.clamp(min=1))
        h = torch.cat([pooled] + roles, -1)
        if self.use_gib:
            z, kl = self.bottleneck(h)
            aux = aux + kl
        else:
            z = self.bottleneck(h)
        return z, aux, (node_mask, edge_mask)

    def forward(self, hidden, mask, head_pos, tail_pos, graph=None, bow=None):
        """hidden: [B, L, H] outputs of the frozen bottom layers. Returns (logits, aux losses dict, masks)."""
        h = self.encode_top(hidden, mask)
        ar = torch.arange(h.size(0), device=h.device)
        pair = torch.cat([h[ar, head_pos], h[ar, tail_pos]], -1)
        feats = [self.drop(pair)]
        aux = {}
        masks = (None, None)
        if self.use_graph:
            z, gib_loss, masks = self.graph_features(graph, pair)
            feats.append(z)
            aux["gib"] = gib_loss
        if self.use_topics:
            tfeat, _, ntm_loss = self.ntm(bow)
            feats.append(tfeat)
            aux["topic"] = ntm_loss
        return self.classifier(torch.cat(feats, -1)), aux, masks
