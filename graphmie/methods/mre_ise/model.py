"""The MRE-ISE network: entity pair from MiniLM, masked GAT over the cross-modal graph with GIB
masks and a Gaussian bottleneck, latent multimodal topics, and a relation classifier.

* **Entity pair** from the fine-tuned MiniLM: the post is marked ``< head > ... [ tail ]`` and the image
  description appended as the second segment; the hidden states of the two opening markers are the
  head/tail representations. The top ``finetune_layers`` are fine-tuned; the bottom layers stay frozen
  (so their outputs can be cached) or, with ``lora_rank > 0``, are adapted by LoRA
  (:mod:`graphmie.nn.lora`).
* **Cross-modal graph** encoded by :class:`~graphmie.nn.masked_gat.MaskedGATLayer`: attention messages
  multiplied by the GIB edge masks, node features by the GIB node masks (:mod:`graphmie.nn.gib`).
* **Readout**: pair-conditioned attention pooling + mean of the head and tail nodes, squeezed through a
  Gaussian bottleneck.
* **Latent multimodal topics** (:mod:`graphmie.nn.topic`).
* A relation classifier over the concatenation; the loss is cross-entropy plus the weighted GIB and
  topic terms (:func:`loss`).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch_geometric.utils import softmax as pyg_softmax

from ...nn.gib import GaussianBottleneck, GIBMasks
from ...nn.masked_gat import MaskedGATLayer
from ...nn.topic import NeuralTopicModel


def extended_mask(mask: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """[B, L] 0/1 padding mask -> the additive [B, 1, 1, L] attention mask of the BERT layers."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class PostREModel(nn.Module):
    """``n_node_types`` / ``n_edge_types``: the cross-modal graph's node and edge type counts (edges
    are also reversed, so ``2 * n_edge_types`` edge embeddings)."""

    def __init__(self, n_node_types: int, n_edge_types: int, top_layers=None, n_labels: int = 23,
                 hidden: int = 384, gnn_dim: int = 128, gnn_layers: int = 2, z_dim: int = 64, use_graph: bool = True,
                 use_gib: bool = True, use_topics: bool = True, vocab_size: int = 0, n_topics: int = 16,
                 tau: float = 0.5, prior: float = 0.7, dropout: float = 0.1, lora_layers: int = 0,
                 lora_rank: int = 0, lora_alpha: float | None = None):
        super().__init__()
        self.use_graph, self.use_gib, self.use_topics = use_graph, use_gib, use_topics and vocab_size > 0
        self.top = nn.ModuleList(copy.deepcopy(list(top_layers))) if top_layers is not None else nn.ModuleList()
        # the first `lora_layers` encoder layers stay frozen and get low-rank adapters
        self.lora_layers = lora_layers if lora_rank else 0
        if self.lora_layers:
            from ...nn.lora import add_lora

            for layer in self.top[:self.lora_layers]:
                for p in layer.parameters():
                    p.requires_grad_(False)
                add_lora(layer, lora_rank, lora_alpha)
        self.drop = nn.Dropout(dropout)
        feat = 2 * hidden
        if use_graph:
            self.node_emb = nn.Linear(hidden, gnn_dim)
            self.type_emb = nn.Embedding(n_node_types, gnn_dim)
            self.geo = nn.Linear(9, gnn_dim)
            self.role = nn.Linear(2, gnn_dim)
            self.edge_emb = nn.Embedding(2 * n_edge_types, 32)
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


def loss(logits: torch.Tensor, aux: dict, target: torch.Tensor, gib_weight: float,
         topic_weight: float) -> torch.Tensor:
    """Cross-entropy plus the GIB compression term and the topic model's ELBO, weighted."""
    out = torch.nn.functional.cross_entropy(logits, target)
    if "gib" in aux:
        out = out + gib_weight * aux["gib"]
    if "topic" in aux:
        out = out + topic_weight * aux["topic"]
    return out


def decode(logits: torch.Tensor, labels: list[str]) -> list[tuple[str, float]]:
    """The most probable label of each row and its probability."""
    score, k = torch.softmax(logits.float(), -1).max(-1)
    return [(labels[int(j)], float(sc)) for j, sc in zip(k.cpu(), score.cpu())]
