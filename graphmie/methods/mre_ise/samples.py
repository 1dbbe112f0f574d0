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

HEAD_MARK, TAIL_MARK = ("<", ">"), ("[", "]")
CACHE = "post"


class BottomEncoder:
    """Tokenizer + the frozen bottom layers of MiniLM (their outputs are what training caches).

    With ``lora_rank > 0`` no layer is frozen: the bottom layers get LoRA adapters and join the
    trained part (:class:`.model.PostREModel`), and only the embeddings are cached."""

    def __init__(self, finetune_layers: int, max_length: int = 128, lora_rank: int = 0):
        from ...encoders.text import load_backbone

        self.tok, self.backbone = load_backbone()
        self.backbone.eval()
        n = len(self.backbone.encoder.layer)
        self.n_lora = (n - finetune_layers) if lora_rank else 0
        self.n_bottom = 0 if lora_rank else n - finetune_layers
        self.max_length = max_length

    def top_layers(self):
        return self.backbone.encoder.layer[self.n_bottom:]

    def inputs(self, tokens: list[str], head: tuple[int, int], tail: tuple[int, int], caption: str = "") -> dict:
        """Word pieces of ``< head > ... [ tail ] ... [SEP] caption`` and the positions of the two opening marks
        (``head`` / ``tail``: token spans [s, e))."""
        marks = [(head[0], 0, HEAD_MARK[0]), (head[1], 1, HEAD_MARK[1]), (tail[0], 0, TAIL_MARK[0]),
                 (tail[1], 1, TAIL_MARK[1])]
        words, pos, k = [], {}, 0
        marks.sort(key=lambda m: (m[0], -m[1]))
        for i in range(len(tokens) + 1):
            while k < len(marks) and marks[k][0] == i:
                pos.setdefault(marks[k][2], len(words))
                words.append(marks[k][2])
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

        return {"input_ids": enc["input_ids"], "token_type_ids": enc.get("token_type_ids"),
                "head_pos": first(pos[HEAD_MARK[0]]), "tail_pos": first(pos[TAIL_MARK[0]])}

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
    items = [enc.inputs(s.tokens, s.head, s.tail, s.caption if use_cap else "") for s in samples]
    hidden = enc.bottom_states(items, cache)
    graphs = sample_graphs(samples, mcfg, cache, progress) if mcfg["use_graph"] else [None] * len(samples)
    bows = [bow_ids(s.text, s.caption if use_cap else "", vocab_index) if vocab_index else [] for s in samples]
    return Prepared(hidden, [it["head_pos"] for it in items], [it["tail_pos"] for it in items], graphs, bows,
                    [s.relation for s in samples], samples)


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
    if str(device) != "cpu":
        b = {k: ({kk: vv.to(device) for kk, vv in v.items()} if isinstance(v, dict) else v.to(device))
             for k, v in b.items()}
    return b
