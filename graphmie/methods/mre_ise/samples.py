"""MNRE samples -> model inputs: marked encoder inputs, the frozen bottom layers' states (cached by
:func:`graphmie.engine.cache.frozen_states`), cross-modal graph tensors (cached in a
:class:`~graphmie.engine.cache.FeatureStore`), bags of words; and batching them."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from ...engine.cache import FeatureStore, content_key, frozen_states
from ...nn.topic import bow_ids
from .graphs import EMBED_PIECES, build_graphs, collate_graphs, parse_many
from .model import extended_mask
from .types import TYPE_WORDS, span_type, tagger_types

HEAD_MARK, TAIL_MARK = ("<", ">"), ("[", "]")
CACHE = "post"


class BottomEncoder:
    """Tokenizer + the frozen bottom layers of MiniLM (their outputs are what training caches).

    With ``lora_rank > 0`` no layer is frozen: the bottom layers get LoRA adapters and join the
    trained part (:class:`.model.PostREModel`), and only the embeddings are cached."""

    def __init__(self, finetune_layers: int, max_length: int = 128, lora_rank: int = 0, typed_markers: bool = False):
        from ...encoders.text import load_backbone

        self.typed_markers = typed_markers
        self.tok, self.backbone = load_backbone()
        self.backbone.eval()
        n = len(self.backbone.encoder.layer)
        self.n_lora = (n - finetune_layers) if lora_rank else 0
        self.n_bottom = 0 if lora_rank else n - finetune_layers
        self.max_length = max_length

    def top_layers(self):
        return self.backbone.encoder.layer[self.n_bottom:]

    def inputs(self, tokens: list[str], head: tuple[int, int], tail: tuple[int, int], caption: str = "",
               head_type: str | None = None, tail_type: str | None = None) -> dict:
        """Word pieces of ``< head > ... [ tail ] ... [SEP] caption`` and the positions of the two opening marks
        (``head`` / ``tail``: token spans [s, e)). With typed markers the types are written inside the
        marks, punctuated as in Zhou & Chen's typed entity markers: ``< * person * head > ... [ ^ location ^
        tail ]`` (types from :mod:`.types`; ``None`` is written ``entity``)."""
        opening = {"head": [HEAD_MARK[0]], "tail": [TAIL_MARK[0]]}
        if self.typed_markers:
            opening["head"] += ["*", TYPE_WORDS[head_type], "*"]
            opening["tail"] += ["^", TYPE_WORDS[tail_type], "^"]
        marks = [(head[0], 0, "head", opening["head"]), (head[1], 1, None, [HEAD_MARK[1]]),
                 (tail[0], 0, "tail", opening["tail"]), (tail[1], 1, None, [TAIL_MARK[1]])]
        words, pos, k = [], {}, 0
        marks.sort(key=lambda m: (m[0], -m[1]))
        for i in range(len(tokens) + 1):
            while k < len(marks) and marks[k][0] == i:
                if marks[k][2]:
                    pos.setdefault(marks[k][2], len(words))
                words += marks[k][3]
                k += 1
            if i < len(tokens):
                words.append(tokens[i] if tokens[i].strip() else "_")
        cap = caption.split() or None
        try:
            enc = self.tok(words, cap, is_split_into_words=True, truncation="only_second" if cap else True,
                           max_length=self.max_length)
        except Exception:  # noqa: BLE001 - the text alone is longer than max_length: the tokenizer refuses
            enc = None    # to cut the caption only ("Sequence to truncate too short"); cut the longest first
        if enc is None or len(enc["input_ids"]) > self.max_length:
            enc = self.tok(words, cap, is_split_into_words=True, truncation="longest_first",
                           max_length=self.max_length)
        wid, seq = enc.word_ids(), enc.sequence_ids()

        def first(word_index: int) -> int:
            for j, (w, s) in enumerate(zip(wid, seq)):
                if s == 0 and w == word_index:
                    return j
            return 0

        text_len = next((j for j, sq in enumerate(seq) if sq == 1), len(seq))
        return {"input_ids": enc["input_ids"], "token_type_ids": enc.get("token_type_ids"),
                "head_pos": first(pos["head"]), "tail_pos": first(pos["tail"]), "text_len": text_len}

    @torch.inference_mode()
    def bottom(self, batch: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states [B, L, H] after the frozen layers (CPU) and the [B, L] padding mask."""
        L = max(len(b["input_ids"]) for b in batch)
        ids = torch.zeros(len(batch), L, dtype=torch.long)
        tt = torch.zeros(len(batch), L, dtype=torch.long)
        mask = torch.zeros(len(batch), L, dtype=torch.long)
        for i, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[i, :n] = torch.tensor(b["input_ids"])
            if b.get("token_type_ids") is not None:
                tt[i, :n] = torch.tensor(b["token_type_ids"])
            mask[i, :n] = 1
        dev = self.backbone.embeddings.word_embeddings.weight.device
        h = self.backbone.embeddings(input_ids=ids.to(dev), token_type_ids=tt.to(dev))
        ext = extended_mask(mask.to(dev), h.dtype)
        for layer in self.backbone.encoder.layer[:self.n_bottom]:
            h = layer(h, ext)
        return h.cpu(), mask

    def bottom_states(self, items: list[dict], cache: str | None = None) -> list[torch.Tensor]:
        """One fp16 [length, H] tensor per item (disk-cached under ``cache`` when given)."""
        def run(batch):
            h, mask = self.bottom(batch)
            return h, mask.sum(1).tolist()

        return frozen_states(items, run, cache=cache, key=("mre_ise", self.backbone.config.name_or_path, self.n_bottom),
                             desc="MiniLM bottom layers")


def token_char_spans(tokens: list[str]) -> list[tuple[int, int]]:
    """Character spans of the tokens in ``" ".join(tokens)``."""
    spans, c = [], 0
    for t in tokens:
        spans.append((c, c + len(t)))
        c += len(t) + 1
    return spans


@dataclass
class Prepared:
    hidden: list
    head_pos: list
    tail_pos: list
    graphs: list
    bows: list
    labels: list
    samples: list = field(default_factory=list)
    text_len: list = field(default_factory=list)     # word pieces of the first segment ([CLS] text [SEP])
    text_vec: torch.Tensor | None = None             # [N, 384] sentence vectors of the text (gate input)
    cap_vec: torch.Tensor | None = None              # [N, 384] ... of the caption (zeros: none)


def sentence_vectors(texts: list[str], cache: str | None = None) -> torch.Tensor:
    """MiniLM sentence embeddings [N, 384] of ``texts`` ("" -> zeros), kept in a FeatureStore under ``cache``."""
    from ...encoders.text import get_text_encoder

    enc = get_text_encoder()
    store = FeatureStore(cache, "sentvec_" + content_key(enc.name))
    todo = [t for t in dict.fromkeys(texts) if t and t not in store]
    if todo:
        store.update(dict(zip(todo, enc.encode(todo, progress=len(todo) >= 500).half())))
        store.save()
    zero = torch.zeros(enc.dim, dtype=torch.float16)
    return torch.stack([store.data[t] if t else zero for t in texts]).float() if texts else torch.zeros(0, enc.dim)


@dataclass
class _Ent:
    start_char: int
    end_char: int
    label_: str


def sample_types(samples, cache: str | None = None, progress: bool = True, source: str = "spacy",
                 tagger: str = "entity_mner") -> list[tuple]:
    """(head type, tail type) of each MNRE sample (:mod:`.types`): from spaCy's NER over its text, or with
    ``source="mner"`` from MNER tagger ``tagger`` typing the two argument spans."""
    if source == "mner":
        store = FeatureStore(cache, "mner_types_" + content_key(tagger))
        keys = [content_key(s.text, s.head, s.tail) for s in samples]
        todo = {k: s for k, s in zip(keys, samples) if k not in store}
        if todo:
            items = [(s.tokens, [s.head, s.tail]) for s in todo.values()]
            typed = []
            for k in tqdm(range(0, len(items), 512), desc="entity types (tagger)", unit="x512",
                          disable=not progress or len(items) < 500):
                typed += tagger_types(items[k:k + 512], tagger)
            store.update({k: tuple(t) for k, t in zip(todo, typed)})
            store.save()
        return [tuple(store.data[k]) for k in keys]
    from scene_graphs.textual import get_spacy

    store = FeatureStore(cache, "ner_types")
    todo = [t for t in dict.fromkeys(s.text for s in samples) if t not in store]
    if todo:
        docs = get_spacy().pipe(todo, batch_size=256)
        if progress and len(todo) >= 500:
            docs = tqdm(docs, total=len(todo), desc="entity types", unit="text")
        store.update({t: [(e.start_char, e.end_char, e.label_) for e in d.ents] for t, d in zip(todo, docs)})
        store.save()
    out = []
    for s in samples:
        ents = [_Ent(*e) for e in store.data[s.text]]
        spans = token_char_spans(s.tokens)
        out.append(tuple(span_type(ents, spans[a][0], spans[b - 1][1]) for a, b in (s.head, s.tail)))
    return out



def sample_graphs(samples, mcfg: dict, cache: str | None = None, progress: bool = True) -> list[dict]:
    """Cross-modal graph tensors of each MNRE sample (kept in a FeatureStore under ``cache`` when given)."""
    from scene_graphs.visual import cxcywh_to_xyxy

    use_cap, n_reg = mcfg["use_caption"], mcfg["max_regions"]
    store = FeatureStore(cache, "graphs_" + content_key("mre_ise", EMBED_PIECES, mcfg["similarity_threshold"],
                                                        use_cap, n_reg))
    keys = [content_key(s.text, s.head, s.tail, s.caption if use_cap else "", s.boxes[:n_reg]) for s in samples]
    todo = [(s, k) for s, k in zip(samples, keys) if k not in store]
    if todo:
        texts = [s.text for s, _ in todo] + ([s.caption for s, _ in todo] if use_cap else [])
        parses = parse_many(texts, progress)
        new = {}
        for s, k in tqdm(todo, desc="scene graphs", unit="post", disable=not progress or len(todo) < 200):
            spans = token_char_spans(s.tokens)
            hs = (spans[s.head[0]][0], spans[s.head[1] - 1][1])
            ts = (spans[s.tail[0]][0], spans[s.tail[1] - 1][1])
            regions = [cxcywh_to_xyxy(b) for b in s.boxes[:n_reg]]
            cp = parses.get(s.caption) if use_cap and s.caption else None
            new[k] = build_graphs(parses[s.text], hs, ts, cp, regions, use_visual=use_cap,
                                  threshold=mcfg["similarity_threshold"]).tensors
        store.update(new)
        store.save()
    return [store.data[k] for k in keys]


def prepare_samples(samples, enc: BottomEncoder, mcfg: dict, vocab_index: dict | None, cache: str | None = None,
                    progress: bool = True) -> Prepared:
    """Everything the model needs of ``samples`` (MNRE samples), bottom states and graphs cached under ``cache``."""
    use_cap = mcfg["use_caption"]
    types = (sample_types(samples, cache, progress, mcfg["type_source"], mcfg["type_tagger"])
             if mcfg.get("typed_markers") else [(None, None)] * len(samples))
    items = [enc.inputs(s.tokens, s.head, s.tail, s.caption if use_cap else "", *ty) for s, ty in zip(samples, types)]
    hidden = enc.bottom_states(items, cache)
    graphs = sample_graphs(samples, mcfg, cache, progress) if mcfg["use_graph"] else [None] * len(samples)
    bows = [bow_ids(s.text, s.caption if use_cap else "", vocab_index) if vocab_index else [] for s in samples]
    p = Prepared(hidden, [it["head_pos"] for it in items], [it["tail_pos"] for it in items], graphs, bows,
                 [s.relation for s in samples], samples, [it["text_len"] for it in items])
    if mcfg.get("use_gate") and use_cap:
        p.text_vec = sentence_vectors([s.text for s in samples], cache)
        p.cap_vec = sentence_vectors([s.caption for s in samples], cache)
    return p


def make_batch(p: Prepared, idx: list[int], model, device="cpu") -> dict:
    """The model's keyword inputs for rows ``idx`` of ``p`` (padded hidden states, graphs, bags of words)."""
    H = p.hidden[idx[0]].size(-1)
    L = max(p.hidden[i].size(0) for i in idx)
    hidden = torch.zeros(len(idx), L, H)
    mask = torch.zeros(len(idx), L, dtype=torch.long)
    for j, i in enumerate(idx):
        n = p.hidden[i].size(0)
        hidden[j, :n] = p.hidden[i].float()
        mask[j, :n] = 1
    b = {"hidden": hidden, "mask": mask, "head_pos": torch.tensor([p.head_pos[i] for i in idx]),
         "tail_pos": torch.tensor([p.tail_pos[i] for i in idx])}
    if model.use_graph:
        b["graph"] = collate_graphs([p.graphs[i] for i in idx])
    if model.use_topics:
        b["bow"] = model.ntm.bow([p.bows[i] for i in idx])
    if model.gate is not None and p.text_vec is not None:
        pos = torch.arange(L)
        b["caption_mask"] = ((pos[None, :] >= torch.tensor([p.text_len[i] for i in idx])[:, None])
                             & mask.bool()).long()
        b["text_vec"], b["cap_vec"] = p.text_vec[idx], p.cap_vec[idx]
    if str(device) != "cpu":
        b = {k: ({kk: vv.to(device) for kk, vv in v.items()} if isinstance(v, dict) else v.to(device))
             for k, v in b.items()}
    return b


@torch.no_grad()
def prepared_logits(model, p, batch_size: int = 128) -> torch.Tensor:
    """Logits [N, C] of every row of a :class:`.samples.Prepared` (as ``MREISE.predict_prepared`` batches them)."""
    model.eval()
    order = sorted(range(len(p.labels)), key=lambda i: p.hidden[i].size(0))
    out = [None] * len(order)
    device = next(model.parameters()).device
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        logits = model(**make_batch(p, idx, model, device))[0]
        for i, row in zip(idx, logits.float().cpu()):
            out[i] = row
    return torch.stack(out)
