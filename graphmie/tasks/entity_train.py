"""Training and batch inference of the multimodal NER tagger + groundability head on Twitter-GMNER.

Kept apart from :mod:`graphmie.tasks.entity` (the CLI-facing task) so the task module stays small.
The frozen lower layers' outputs are computed once per split and cached under
``/tmp/graphmie_cache/entity/`` (never in the repo), so each epoch only runs the top layers.
"""
from __future__ import annotations

import hashlib
import json
import random
import sys
import time

import torch

from ..config import cache_dir
from torch import nn

from ..data.gmner import Tweet, bio_to_spans
from ..nn.mner_tagger import MnerTagger, encode_example, pad_batch

CACHE_DIR = cache_dir("entity")


def caption_of(t: Tweet, which: str) -> str:
    return {"blip2": t.caption, "owl": t.long_caption, "none": ""}[which]


def encode_tweets(tokenizer, tweets: list[Tweet], caption: str, max_length: int) -> list[dict]:
    out = []
    for t in tweets:
        e = encode_example(tokenizer, t.tokens, caption_of(t, caption), max_length)
        e["tweet"] = t
        out.append(e)
    return out


@torch.no_grad()
def lower_states(model: MnerTagger, items: list[dict], key: str | None = None, batch_size: int = 64,
                 progress: bool = True) -> list[torch.Tensor]:
    """Outputs of the frozen layers per item (fp16), cached on disk under ``key`` when given."""
    path = None
    if key:
        h = hashlib.sha1(json.dumps([key, [it["input_ids"] for it in items]]).encode()).hexdigest()[:16]
        path = CACHE_DIR / f"lower_{h}.pt"
        if path.exists():
            return torch.load(path, weights_only=True)
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(items)), key=lambda i: len(items[i]["input_ids"]))
    res: list[torch.Tensor | None] = [None] * len(items)
    rng = range(0, len(order), batch_size)
    if progress:
        from tqdm import tqdm

        rng = tqdm(rng, desc="frozen layers", unit="batch", file=sys.stderr)
    for i in rng:
        idx = order[i:i + batch_size]
        b = {k: v.to(device) for k, v in pad_batch([items[j] for j in idx]).items()}
        h = model.lower(b["input_ids"], b["mask"], b["token_type_ids"]).cpu()
        for r, j in enumerate(idx):
            res[j] = h[r, :len(items[j]["input_ids"])].half().clone()
    if path:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        torch.save(res, path)
    return res


def _batch(items, states, idx, device="cpu"):
    b = pad_batch([items[j] for j in idx])
    L = b["input_ids"].shape[1]
    h = torch.zeros(len(idx), L, states[idx[0]].shape[-1])
    for r, j in enumerate(idx):
        h[r, :states[j].shape[0]] = states[j].float()
    return {k: v.to(device) for k, v in b.items()}, h.to(device)


def _word_emissions(model, h_top, items, idx):
    """Per item: log-probs [n_words, n_labels] at each word's first subword (words cut off -> 'O')."""
    em = model.emissions(h_top).float().cpu()
    out = []
    for r, j in enumerate(idx):
        first = items[j]["first"]
        e = torch.full((len(first), em.shape[-1]), -1e4)
        e[:, 0] = 0.0
        for w, k in enumerate(first):
            if k >= 0:
                e[w] = em[r, k]
        out.append(e)
    return out


def _subword_span(item, s, e):
    fs = [item["first"][w] for w in range(s, e) if item["first"][w] >= 0]
    ls = [item["last"][w] for w in range(s, e) if item["last"][w] >= 0]
    if not fs:
        return None
    return min(fs), max(ls)


def train_tagger(model: MnerTagger, items: list[dict], states: list[torch.Tensor], val_items: list[dict],
                 val_states: list[torch.Tensor], epochs: int = 5, batch_size: int = 16, lr: float = 5e-5,
                 head_lr: float = 1e-3, ground_weight: float = 0.5, seed: int = 13, log=print,
                 on_best=None, device: str = "cpu") -> dict:
    """Joint BIO tagging (token NLL) + groundability (BCE on gold spans). Keeps the best epoch on val.
    ``device``: where to train ("cpu", or "cuda" on a machine with a GPU)."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    model.to(device)
    label_ix = {l: i for i, l in enumerate(model.labels)}
    top = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("backbone.")]
    head = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("backbone.")]
    opt = torch.optim.AdamW([{"params": top, "lr": lr}, {"params": head, "lr": head_lr}], weight_decay=0.01)
    n_steps = epochs * ((len(items) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / (0.06 * n_steps))
                                              * max(0.0, (n_steps - s) / n_steps))
    bce = nn.BCEWithLogitsLoss()
    best, best_state, history = -1.0, None, []
    for ep in range(epochs):
        model.train()
        # length-bucketed shuffled batches
        order = sorted(range(len(items)), key=lambda i: (len(items[i]["input_ids"]), rng.random()))
        batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        rng.shuffle(batches)
        t0, tot = time.time(), 0.0
        for idx in batches:
            b, h = _batch(items, states, idx, device)
            h_top = model.upper(h, b["mask"], b["shapes"])
            em = model.emissions(h_top)
            tgt = torch.full(b["input_ids"].shape, -100, dtype=torch.long)
            spans = []
            glabels = []
            for r, j in enumerate(idx):
                it = items[j]
                for w, k in enumerate(it["first"]):
                    if k >= 0:
                        tgt[r, k] = label_ix[it["tweet"].tags[w]]
                for ge in it["tweet"].entities:
                    sw = _subword_span(it, ge.start, ge.end)
                    if sw:
                        spans.append((r, sw[0], sw[1], ge.type))
                        glabels.append(float(ge.groundable))
            loss = nn.functional.nll_loss(em.reshape(-1, em.shape[-1]), tgt.to(device).reshape(-1),
                                          ignore_index=-100)
            if spans:
                loss = loss + ground_weight * bce(model.ground_logits(h_top, spans),
                                                  torch.tensor(glabels, device=h_top.device))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot += float(loss.detach())
        m = evaluate_items(model, val_items, val_states)
        m.update(epoch=ep + 1, loss=tot / len(batches), seconds=round(time.time() - t0, 1))
        history.append(m)
        log(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()}))
        score = m["mner_f1"] + 0.25 * m["ground_f1"]
        if score > best:
            best, best_state = score, {k: v.detach().clone() for k, v in model.trainable_state().items()}
            if on_best is not None:          # checkpoint the best epoch so far (long runs can be cut short)
                on_best(best_state, m)
    model.load_state_dict(best_state, strict=False)
    return {"history": history, "best_epoch": max(range(len(history)), key=lambda i: history[i]["mner_f1"]
                                                  + 0.25 * history[i]["ground_f1"]) + 1}


@torch.no_grad()
def predict_items(model: MnerTagger, items: list[dict], states: list[torch.Tensor], batch_size: int = 64,
                  gold_spans: bool = False, threshold: float = 0.5):
    """Per item: predicted ``[(start, end, type, p_groundable)]`` and, with ``gold_spans``, the
    groundability probability of every gold entity (oracle spans)."""
    model.eval()
    preds: list = [None] * len(items)
    gold_p: list = [None] * len(items)
    order = sorted(range(len(items)), key=lambda i: len(items[i]["input_ids"]))
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        b, h = _batch(items, states, idx, next(model.parameters()).device)
        h_top = model.upper(h, b["mask"], b["shapes"])
        ems = _word_emissions(model, h_top, items, idx)
        for r, j in enumerate(idx):
            labels = [model.labels[k] for k in model.viterbi(ems[r])]
            spans = bio_to_spans(labels)
            sw = [(_subword_span(items[j], s, e), t) for s, e, t in spans]
            q = [(r, x[0], x[1], t) for x, t in sw if x]
            probs = model.ground_logits(h_top, q).sigmoid().tolist() if q else []
            it = iter(probs)
            preds[j] = [(s, e, t, next(it) if x else 0.0) for (s, e, t), (x, _) in zip(spans, sw)]
            if gold_spans:
                g = [(r, *(_subword_span(items[j], ge.start, ge.end) or (0, 1)), ge.type)
                     for ge in items[j]["tweet"].entities]
                gold_p[j] = model.ground_logits(h_top, g).sigmoid().tolist() if g else []
    return preds, gold_p


def evaluate_items(model, items, states, threshold: float = 0.5) -> dict:
    from ..evaluation.gmner import binary_scores, gmner_scores

    preds, gold_p = predict_items(model, items, states, gold_spans=True)
    gold = [[(e.start, e.end, e.type, e.boxes) for e in it["tweet"].entities] for it in items]
    pr = [[(s, e, t, p >= threshold) for s, e, t, p in ps] for ps in preds]
    up = gmner_scores(pr, gold, region_mode="groundability")
    low = gmner_scores(pr, gold, region_mode="groundability_lower")
    gflat = [e.groundable for it in items for e in it["tweet"].entities]
    pflat = [p >= threshold for ps in gold_p for p in ps]
    gs = binary_scores(pflat, gflat)
    return {"mner_f1": up["mner"]["f1"], "mner_precision": up["mner"]["precision"],
            "mner_recall": up["mner"]["recall"], "gmner_f1": up["gmner"]["f1"], "eeg_f1": up["eeg"]["f1"],
            "gmner_f1_lower": low["gmner"]["f1"], "eeg_f1_lower": low["eeg"]["f1"],
            "ground_precision": gs["precision"], "ground_recall": gs["recall"], "ground_f1": gs["f1"],
            "ground_accuracy": gs["accuracy"], "n_entities": len(gflat),
            "n_groundable": sum(gflat)}
