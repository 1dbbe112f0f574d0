"""Multimodal NER tagger: MiniLM over ``tweet [SEP] caption / LLM knowledge``, with word-shape features.

The image enters as its description (as in RiVEG / "image-to-text" MNER, Li et al. 2024:
an image caption appended to the post lets a text encoder use the visual context). The
backbone is the installed all-MiniLM-L6-v2 (uncased), so the casing the tokenizer throws away
is put back as a learned *word-shape* embedding (lower / Title / UPPER / mixed / digit /
@mention / #hashtag / punct / caption) added to the hidden states entering the first
trained layer; with ``knowledge_features`` a *knowledge-match* embedding (which words the LLM
knowledge's entity list names, BIO over a coarse category of its type:
:func:`graphmie.data.knowledge.knowledge_tags`) is added the same way. The lower ``n_frozen`` layers stay frozen (their outputs can be cached, which
makes training cheap on CPU) or, with ``lora_rank > 0``, get low-rank adapters
(:mod:`graphmie.nn.lora`; then only the embeddings are cached); the top layers, the shape
embedding and a linear BIO classifier are trained. Decoding is constrained Viterbi over the BIO
label lattice (no ``O -> I-X``, no ``B-X -> I-Y``), i.e. the decoding step of a BERT-CRF with
hard transitions.

A groundability head (:class:`GroundabilityHead`: an MLP over the mean-pooled span state, the
[CLS] state and the entity type) predicts whether an entity is visible in the image (H-Index's
"groundable" decision). The loss (:meth:`MnerTagger.loss`) is token NLL on each word's first
word piece plus ``ground_weight`` x BCE of groundability on the gold spans.

Only the fine-tuned parts are saved (:meth:`MnerTagger.trainable_state`); the frozen part is
rebuilt from the installed MiniLM at load time.
"""
from __future__ import annotations

import re

import torch
from torch import nn

from ...data.knowledge import KNOW_TAGS
from ...nn.bio import allowed_transitions, bio_viterbi

SHAPES = ("pad", "lower", "title", "upper", "mixed", "digit", "mention", "hashtag", "punct", "caption", "special")


def word_shape(w: str, prev: str | None = None) -> int:
    if prev == "@":
        return SHAPES.index("mention")
    if prev == "#":
        return SHAPES.index("hashtag")
    if not any(c.isalnum() for c in w):
        return SHAPES.index("punct")
    if any(c.isdigit() for c in w) and not any(c.isalpha() for c in w):
        return SHAPES.index("digit")
    letters = [c for c in w if c.isalpha()]
    if all(c.islower() for c in letters):
        return SHAPES.index("lower")
    if all(c.isupper() for c in letters):
        return SHAPES.index("upper") if len(letters) > 1 else SHAPES.index("title")
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return SHAPES.index("title")
    return SHAPES.index("mixed")


def bio_labels(types: list[str]) -> list[str]:
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


class GroundabilityHead(nn.Sequential):
    """[span mean, [CLS], type one-hot] -> one groundability logit (state keys ``0.*``, ``3.*``)."""

    def __init__(self, in_dim: int, hidden: int = 128, dropout: float = 0.1):
        super().__init__(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1))


class MnerTagger(nn.Module):
    def __init__(self, backbone, types: list[str], n_frozen: int = 4, dropout: float = 0.1, lora_rank: int = 0,
                 lora_alpha: float | None = None, knowledge_features: bool = False):
        super().__init__()
        self.types = list(types)
        self.labels = bio_labels(self.types)
        self.backbone = backbone
        self.n_frozen = n_frozen
        self.lora_rank = lora_rank
        #: layers whose outputs do not change in training (cacheable): all frozen ones, or none with LoRA
        self.n_cached = 0 if lora_rank else n_frozen
        hid = backbone.config.hidden_size
        self.shape_emb = nn.Embedding(len(SHAPES), hid)
        nn.init.normal_(self.shape_emb.weight, std=0.02)
        #: knowledge-match feature: which words the knowledge's entity list names (BIO x category)
        self.know_emb = nn.Embedding(len(KNOW_TAGS), hid) if knowledge_features else None
        if self.know_emb is not None:
            nn.init.normal_(self.know_emb.weight, std=0.02)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hid, len(self.labels))
        self.ground_head = GroundabilityHead(2 * hid + len(self.types), dropout=dropout)
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        for layer in self.backbone.encoder.layer[n_frozen:]:
            for p in layer.parameters():
                p.requires_grad_(True)
        if lora_rank:
            from ...nn.lora import add_lora

            for layer in self.backbone.encoder.layer[:n_frozen]:
                add_lora(layer, lora_rank, lora_alpha)

    # --- state -----------------------------------------------------------------------------
    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The fine-tuned tensors only (top layers, LoRA adapters, shape embedding, classifier,
        groundability head)."""
        return {k: v for k, v in self.state_dict().items() if self.is_trainable_key(k)}

    def is_trainable_key(self, k: str) -> bool:
        return (not k.startswith("backbone.") or ".lora_" in k
                or any(k.startswith(f"backbone.encoder.layer.{i}.")
                       for i in range(self.n_frozen, len(self.backbone.encoder.layer))))

    # --- forward ---------------------------------------------------------------------------
    @staticmethod
    def _ext_mask(mask: torch.Tensor, dtype) -> torch.Tensor:
        return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min

    @torch.no_grad()
    def lower(self, input_ids: torch.Tensor, mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        """Hidden states after the ``n_cached`` unchanging layers (cacheable)."""
        h = self.backbone.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        ext = self._ext_mask(mask, h.dtype)
        for layer in self.backbone.encoder.layer[:self.n_cached]:
            h = layer(h, attention_mask=ext)
        return h

    def upper(self, h: torch.Tensor, mask: torch.Tensor, shapes: torch.Tensor,
              know: torch.Tensor | None = None, n_text: int | None = None) -> torch.Tensor:
        """The trained layers (LoRA-adapted and fully tuned); the word-shape (and knowledge-match)
        embeddings join first. With ``n_text`` the last layer computes only the first ``n_text``
        positions ([CLS], the tweet, [SEP]: all that is read from its output), attending to every
        position: the same states for those positions, for a fraction of the cost when a long
        context (the knowledge) follows the tweet."""
        h = h.float() + self.shape_emb(shapes)
        if self.know_emb is not None:         # (no tags given: every word "none")
            h = h + self.know_emb(know if know is not None else torch.zeros_like(shapes))
        ext = self._ext_mask(mask, h.dtype)
        layers = self.backbone.encoder.layer[self.n_cached:]
        for k, layer in enumerate(layers):
            if n_text is not None and k == len(layers) - 1 and n_text < h.shape[1]:
                return last_layer_on_prefix(layer, h, ext, n_text)
            h = layer(h, attention_mask=ext)
        return h

    def emissions(self, h_top: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(h_top)).log_softmax(-1)

    def ground_logits(self, h_top: torch.Tensor, spans: list[tuple[int, int, int, str]]) -> torch.Tensor:
        """``spans``: (batch row, first subword, last subword exclusive, type) -> groundability logits."""
        if not spans:
            return torch.zeros(0)
        feats = []
        for b, s, e, t in spans:
            onehot = torch.zeros(len(self.types), device=h_top.device)
            if t in self.types:
                onehot[self.types.index(t)] = 1.0
            feats.append(torch.cat([h_top[b, s:e].mean(0), h_top[b, 0], onehot]))
        return self.ground_head(self.dropout(torch.stack(feats))).squeeze(-1)

    def loss(self, h_top: torch.Tensor, targets: torch.Tensor, spans: list[tuple[int, int, int, str]],
             groundable: list[float], ground_weight: float = 0.5) -> torch.Tensor:
        """Token NLL (``targets`` [B, L] label indices, -100 = ignored) + ``ground_weight`` x
        groundability BCE on ``spans`` (gold entities) against ``groundable`` (0/1)."""
        em = self.emissions(h_top)
        loss = nn.functional.nll_loss(em.reshape(-1, em.shape[-1]), targets.to(em.device).reshape(-1),
                                      ignore_index=-100)
        if spans:
            loss = loss + ground_weight * nn.functional.binary_cross_entropy_with_logits(
                self.ground_logits(h_top, spans), torch.tensor(groundable, device=h_top.device))
        return loss

    def word_emissions(self, h_top: torch.Tensor, firsts: list[list[int]]) -> list[torch.Tensor]:
        """Per row: log-probs [n_words, n_labels] at each word's first word piece (``firsts``; a word
        cut off by truncation, -1, gets 'O')."""
        em = self.emissions(h_top).float().cpu()
        out = []
        for r, first in enumerate(firsts):
            e = torch.full((len(first), em.shape[-1]), -1e4)
            e[:, 0] = 0.0
            for w, k in enumerate(first):
                if k >= 0:
                    e[w] = em[r, k]
            out.append(e)
        return out

    # --- decoding --------------------------------------------------------------------------
    def allowed_transitions(self) -> torch.Tensor:
        return allowed_transitions(self.labels)

    def viterbi(self, emis: torch.Tensor) -> list[int]:
        """Best label path for ``emis`` [n_words, n_labels] (log-probs) under the BIO constraints."""
        return bio_viterbi(emis, self.labels)


class TaggerEnsemble(nn.Module):
    """Taggers of the same labels averaged: the members' tag probabilities (mean of their softmaxes, then
    one constrained Viterbi decode) and groundability probabilities. The same calls as
    :class:`MnerTagger` (``lower`` / ``upper`` / ``word_emissions`` / ``viterbi`` / ``ground_logits``);
    ``upper`` returns one state tensor per member and the other calls take that list. The members share
    the unchanging lower layers (the installed MiniLM), so ``lower`` runs once."""

    def __init__(self, members: list[MnerTagger]):
        super().__init__()
        first = members[0]
        for m in members[1:]:
            if m.labels != first.labels or m.n_cached != first.n_cached or \
                    (m.know_emb is None) != (first.know_emb is None):
                raise ValueError("ensemble members differ in labels, cached layers or knowledge features")
        self.members = nn.ModuleList(members)
        self.types, self.labels, self.n_cached = first.types, first.labels, first.n_cached
        self.know_emb = first.know_emb           # (only tested for None: whether the members read the tags)

    def lower(self, input_ids, mask, token_type_ids):
        return self.members[0].lower(input_ids, mask, token_type_ids)

    def upper(self, h, mask, shapes, know=None, n_text=None) -> list[torch.Tensor]:
        return [m.upper(h, mask, shapes, know, n_text=n_text) for m in self.members]

    def emissions(self, h_tops: list[torch.Tensor]) -> torch.Tensor:
        em = torch.stack([m.emissions(h) for m, h in zip(self.members, h_tops)])
        return (em.logsumexp(0) - torch.log(torch.tensor(float(len(h_tops))))).clamp_max(0.0)

    def ground_logits(self, h_tops: list[torch.Tensor], spans) -> torch.Tensor:
        if not spans:
            return torch.zeros(0)
        p = torch.stack([m.ground_logits(h, spans).sigmoid() for m, h in zip(self.members, h_tops)]).mean(0)
        return torch.logit(p, eps=1e-6)

    word_emissions = MnerTagger.word_emissions
    allowed_transitions = MnerTagger.allowed_transitions
    viterbi = MnerTagger.viterbi


_WS = re.compile(r"\s+")


def last_layer_on_prefix(layer, h: torch.Tensor, ext_mask: torch.Tensor, n: int) -> torch.Tensor:
    """A BERT layer's output at positions ``:n`` only (queries there; keys and values everywhere):
    equal to ``layer(h, attention_mask=ext_mask)[:, :n]``."""
    att, B, L, H = layer.attention.self, h.shape[0], h.shape[1], h.shape[2]
    nh, hd = att.num_attention_heads, att.attention_head_size

    def heads(x, m):
        return x.view(B, m, nh, hd).transpose(1, 2)

    ctx = nn.functional.scaled_dot_product_attention(
        heads(att.query(h[:, :n]), n), heads(att.key(h), L), heads(att.value(h), L), attn_mask=ext_mask,
        dropout_p=att.dropout.p if att.training else 0.0)
    a = layer.attention.output(ctx.transpose(1, 2).reshape(B, n, H), h[:, :n])
    return layer.output(layer.intermediate(a), a)


def encode_example(tokenizer, words: list[str], context: str = "", max_length: int = 96,
                   know_tags: list[str] | None = None) -> dict:
    """Tokenise ``words [SEP] context`` (the context: image caption and/or LLM knowledge, cut to
    fit ``max_length``; the tweet itself is cut only when it alone is longer); returns ids, token
    types, shapes, knowledge-match tags (with ``know_tags``, one per word), the first subword of
    each word (-1 when truncated away) and the subword range of each word."""
    ctx_words = context.split() if context else []
    kw = dict(is_split_into_words=True, truncation="only_second" if ctx_words else True, max_length=max_length)
    try:
        enc = tokenizer(words, ctx_words, **kw) if ctx_words else tokenizer(words, **kw)
    except Exception:  # the tweet alone is longer than max_length
        enc = tokenizer(words, ctx_words, is_split_into_words=True, truncation="longest_first",
                        max_length=max_length) if ctx_words else tokenizer(words, is_split_into_words=True,
                                                                           truncation=True, max_length=max_length)
    wids, seqs = enc.word_ids(), enc.sequence_ids()
    shapes, know, first, last = [], [], [-1] * len(words), [-1] * len(words)
    word_shapes = [word_shape(w, words[i - 1] if i else None) for i, w in enumerate(words)]
    for k, (wi, sq) in enumerate(zip(wids, seqs)):
        if sq is None:
            shapes.append(SHAPES.index("special"))
            know.append(0)
        elif sq == 1:
            shapes.append(SHAPES.index("caption"))
            know.append(0)
        else:
            shapes.append(word_shapes[wi])
            know.append(KNOW_TAGS.index(know_tags[wi]) if know_tags else 0)
            if first[wi] < 0:
                first[wi] = k
            last[wi] = k + 1
    tt = enc.get("token_type_ids") or [0] * len(enc["input_ids"])
    n_text = next((k + 1 for k, sq in enumerate(seqs) if k and sq is None), len(seqs))   # up to the first [SEP]
    return {"input_ids": enc["input_ids"], "token_type_ids": tt, "shapes": shapes, "know": know, "first": first,
            "last": last, "n_text": n_text}


def pad_batch(items: list[dict], keys=("input_ids", "token_type_ids", "shapes", "know")) -> dict[str, torch.Tensor]:
    """Padded ``[B, L]`` tensors of ``keys`` (those the items have) and the mask; ``n_text``: the
    longest [CLS] tweet [SEP] prefix (a 0-d tensor)."""
    L = max(len(it["input_ids"]) for it in items)
    keys = [k for k in keys if k in items[0]]
    out = {k: torch.zeros(len(items), L, dtype=torch.long) for k in keys}
    out["n_text"] = torch.tensor(max(it.get("n_text", len(it["input_ids"])) for it in items))
    out["mask"] = torch.zeros(len(items), L, dtype=torch.long)
    for i, it in enumerate(items):
        n = len(it["input_ids"])
        for k in keys:
            out[k][i, :n] = torch.tensor(it[k])
        out["mask"][i, :n] = 1
    return out
