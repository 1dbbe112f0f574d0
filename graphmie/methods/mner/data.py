"""Twitter-GMNER tweets and posts -> tagger samples, batches, batch decoding and the dev figures.

A sample is :func:`~.model.encode_example`'s dict (word pieces of ``tweet [SEP] caption knowledge``, shapes,
each word's first/last word piece) plus its ``tweet``. The outputs of the layers that do not
change in training are computed once per sample set (:func:`lower_states`, cached on disk by
:func:`graphmie.engine.cache.frozen_states`), so each epoch runs only the layers above.
"""
from __future__ import annotations

import re

import torch

from ...data.gmner import Tweet, bio_to_spans
from ...data.knowledge import knowledge_tags
from ...engine.cache import frozen_states
from .model import MnerTagger, encode_example, pad_batch

CACHE = "entity"
_TOKEN = re.compile(r"\w+(?:'\w+)?|[^\w\s]")


def tokenize(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Twitter-GMNER-like tokens: words, and each punctuation mark apart (``@``/``#`` split off)."""
    words, spans = [], []
    for m in _TOKEN.finditer(text):
        words.append(m.group())
        spans.append((m.start(), m.end()))
    return words, spans


def caption_of(t: Tweet, which: str) -> str:
    return {"blip2": t.caption, "owl": t.long_caption, "none": ""}[which]


def context_of(caption: str, knowledge: str | None) -> str:
    """The second segment: the image caption, then the LLM knowledge (cut first when too long)."""
    return " ".join(x for x in (caption, knowledge) if x)


def encode_tweets(tokenizer, tweets: list[Tweet], caption: str, max_length: int, knowledge: bool = False,
                  features: bool = False) -> list[dict]:
    """Samples of ``tweets``: ``tweet [SEP] caption knowledge`` (the knowledge only with ``knowledge``;
    the knowledge-match tags only with ``features``)."""
    out = []
    for t in tweets:
        k = t.knowledge if knowledge else None
        e = encode_example(tokenizer, t.tokens, context_of(caption_of(t, caption), k), max_length,
                           know_tags=knowledge_tags(t.tokens, k) if features and k else None)
        e["tweet"] = t
        out.append(e)
    return out


def lower_states(model: MnerTagger, items: list[dict], caption: str, max_length: int) -> list[torch.Tensor]:
    """Outputs of the unchanging layers per sample (fp16), disk-cached (keyed by the word pieces)."""
    model.eval()
    device = next(model.parameters()).device

    def run(batch):
        b = {k: v.to(device) for k, v in pad_batch(batch).items()}
        return model.lower(b["input_ids"], b["mask"], b["token_type_ids"]), [len(it["input_ids"]) for it in batch]

    return frozen_states(items, run, cache=CACHE, key=("mner", caption, max_length, model.n_cached), batch_size=64)


def subword_span(item: dict, s: int, e: int) -> tuple[int, int] | None:
    """The word-piece range of words ``s:e`` (None when truncation cut them all off)."""
    fs = [item["first"][w] for w in range(s, e) if item["first"][w] >= 0]
    ls = [item["last"][w] for w in range(s, e) if item["last"][w] >= 0]
    if not fs:
        return None
    return min(fs), max(ls)


def make_batch(items: list[dict], states: list[torch.Tensor], idx: list[int], device="cpu"):
    """(padded inputs, padded lower states) of samples ``idx``."""
    b = pad_batch([items[j] for j in idx])
    h = torch.zeros(len(idx), b["input_ids"].shape[1], states[idx[0]].shape[-1])
    for r, j in enumerate(idx):
        h[r, :states[j].shape[0]] = states[j].float()
    return {k: v.to(device) for k, v in b.items()}, h.to(device)


def length_batches(items: list[dict], batch_size: int, rng) -> list[list[int]]:
    """One epoch's batches: samples sorted by length (ties broken at random), chunked, shuffled."""
    order = sorted(range(len(items)), key=lambda i: (len(items[i]["input_ids"]), rng.random()))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def targets(model: MnerTagger, items: list[dict], idx: list[int], length: int):
    """BIO label targets [B, L] at each word's first word piece, and the gold spans with groundability."""
    label_ix = {lab: i for i, lab in enumerate(model.labels)}
    tgt = torch.full((len(idx), length), -100, dtype=torch.long)
    spans, groundable = [], []
    for r, j in enumerate(idx):
        it = items[j]
        for w, k in enumerate(it["first"]):
            if k >= 0:
                tgt[r, k] = label_ix[it["tweet"].tags[w]]
        for ge in it["tweet"].entities:
            sw = subword_span(it, ge.start, ge.end)
            if sw:
                spans.append((r, sw[0], sw[1], ge.type))
                groundable.append(float(ge.groundable))
    return tgt, spans, groundable


@torch.no_grad()
def predict_items(model: MnerTagger, items: list[dict], states: list[torch.Tensor], batch_size: int = 64):
    """Per sample: predicted ``[(start, end, type, p_groundable)]``, and the groundability
    probability of every gold entity (oracle spans)."""
    model.eval()
    preds: list = [None] * len(items)
    gold_p: list = [None] * len(items)
    order = sorted(range(len(items)), key=lambda i: len(items[i]["input_ids"]))
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        b, h = make_batch(items, states, idx, next(model.parameters()).device)
        h_top = model.upper(h, b["mask"], b["shapes"], b["know"], n_text=int(b["n_text"]))
        ems = model.word_emissions(h_top, [items[j]["first"] for j in idx])
        for r, j in enumerate(idx):
            spans = bio_to_spans([model.labels[k] for k in model.viterbi(ems[r])])
            sw = [(subword_span(items[j], s, e), t) for s, e, t in spans]
            q = [(r, x[0], x[1], t) for x, t in sw if x]
            probs = iter(model.ground_logits(h_top, q).sigmoid().tolist() if q else [])
            preds[j] = [(s, e, t, next(probs) if x else 0.0) for (s, e, t), (x, _) in zip(spans, sw)]
            g = [(r, *(subword_span(items[j], ge.start, ge.end) or (0, 1)), ge.type)
                 for ge in items[j]["tweet"].entities]
            gold_p[j] = model.ground_logits(h_top, g).sigmoid().tolist() if g else []
    return preds, gold_p


def evaluate_items(model: MnerTagger, items: list[dict], states: list[torch.Tensor], threshold: float = 0.5) -> dict:
    """MNER / GMNER / EEG F1 (region judged through groundability) and groundability P/R/F1."""
    from ...evaluation.gmner import binary_scores, gmner_scores

    preds, gold_p = predict_items(model, items, states)
    gold = [[(e.start, e.end, e.type, e.boxes) for e in it["tweet"].entities] for it in items]
    pr = [[(s, e, t, p >= threshold) for s, e, t, p in ps] for ps in preds]
    up = gmner_scores(pr, gold, region_mode="groundability")
    low = gmner_scores(pr, gold, region_mode="groundability_lower")
    gflat = [e.groundable for it in items for e in it["tweet"].entities]
    gs = binary_scores([p >= threshold for ps in gold_p for p in ps], gflat)
    return {"mner_f1": up["mner"]["f1"], "mner_precision": up["mner"]["precision"],
            "mner_recall": up["mner"]["recall"], "gmner_f1": up["gmner"]["f1"], "eeg_f1": up["eeg"]["f1"],
            "gmner_f1_lower": low["gmner"]["f1"], "eeg_f1_lower": low["eeg"]["f1"],
            "ground_precision": gs["precision"], "ground_recall": gs["recall"], "ground_f1": gs["f1"],
            "ground_accuracy": gs["accuracy"], "n_entities": len(gflat), "n_groundable": sum(gflat)}
