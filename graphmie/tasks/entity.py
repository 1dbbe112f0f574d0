"""Grounded multimodal NER (GMNER) for posts: entities, types, groundability and region grounding.

Follows H-Index (Yu et al., ACL 2023) and RiVEG (Li et al., 2024): a MiniLM tagger reads
``tweet [SEP] image caption`` (:mod:`graphmie.nn.mner_tagger`), a groundability head decides
whether each entity is visible, and a grounding head (:mod:`graphmie.nn.grounding_head`) picks
one of the candidate regions (detections, or :func:`scene_graphs.proposals.propose_regions`).
"""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

import torch

from ..config import REPO_ROOT, save_run_record
from .base import Task

MODEL_NAME = "graphmie.entity.mner"
WEIGHTS = REPO_ROOT / "graphmie" / "weights" / "entity_mner.safetensors"
DEFAULT_CONFIG = REPO_ROOT / "configs" / "entity_mner.toml"


def _cfg(config: dict | None) -> dict:
    from ..config import load_config

    base = load_config(DEFAULT_CONFIG)
    for sec, vals in (config or {}).items():
        if isinstance(vals, dict) and isinstance(base.get(sec), dict):
            base[sec].update(vals)
        else:
            base[sec] = vals
    return base


def build_model(cfg: dict):
    from ..encoders.text import load_backbone
    from ..nn.mner_tagger import MnerTagger

    tok, bert = load_backbone()
    m = cfg["model"]
    model = MnerTagger(bert, cfg["types"]["types"], n_frozen=m["n_frozen"], dropout=m["dropout"],
                       lora_rank=int(m.get("lora_rank", 0)), lora_alpha=m.get("lora_alpha"))
    return tok, model


class EntityTask(Task):
    name = "entity"

    def __init__(self):
        self.cfg = None
        self.model = None
        self.tokenizer = None

    # --- training ------------------------------------------------------------------------
    def train(self, config: dict, out_dir: Path) -> dict:
        from ..data.gmner import read_split
        from ..io import save_weights
        from .entity_train import encode_tweets, evaluate_items, lower_states, train_tagger

        cfg = _cfg(config)
        tr = cfg["training"]
        torch.set_num_threads(int(tr.get("threads", 1)))
        torch.manual_seed(tr["seed"])
        root = Path(cfg["data"]["root"])
        if not root.is_absolute() and not root.exists():
            root = REPO_ROOT / root
        train_split = read_split(root, cfg["data"]["train_split"])
        tweets = list(train_split.tweets)
        random.Random(tr["seed"]).shuffle(tweets)
        if cfg["data"].get("limit"):          # small runs (tests): the first N shuffled tweets
            tweets = tweets[:int(cfg["data"]["limit"])]
        nval = int(cfg["data"]["val_tweets"])
        val, train = tweets[:nval], tweets[nval:]
        tok, model = build_model(cfg)
        model.to(tr.get("device", "cpu"))
        cap, ml = cfg["data"]["caption"], cfg["model"]["max_length"]
        key = f"{cap}-{ml}-{model.n_cached}"
        items, val_items = encode_tweets(tok, train, cap, ml), encode_tweets(tok, val, cap, ml)
        states, val_states = lower_states(model, items, key), lower_states(model, val_items, key)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        meta = {"config": json.dumps({k: v for k, v in cfg.items() if k != "meta"})}

        def on_best(state, m):
            save_weights(state, out_dir / "entity_mner.safetensors", half=True, metadata=meta)
            print(json.dumps({"best_so_far": m}), flush=True)

        t0 = time.time()
        res = train_tagger(model, items, states, val_items, val_states, epochs=tr["epochs"],
                           batch_size=tr["batch_size"], lr=tr["lr"], head_lr=tr["head_lr"],
                           ground_weight=tr["ground_weight"], seed=tr["seed"],
                           log=lambda s: print(s, flush=True), on_best=on_best, device=tr.get("device", "cpu"))
        train_s = time.time() - t0
        dev_split = read_split(root, cfg["data"]["eval_split"])
        dev_tweets = dev_split.tweets[:int(cfg["data"]["limit"])] if cfg["data"].get("limit") else dev_split.tweets
        dev_items = encode_tweets(tok, dev_tweets, cap, ml)
        dev = evaluate_items(model, dev_items, lower_states(model, dev_items, key),
                             cfg["grounding"]["threshold"])
        model.to("cpu")
        save_weights(model.trainable_state(), out_dir / "entity_mner.safetensors", half=True, metadata=meta)
        metrics = {"dev_" + k: v for k, v in dev.items()}
        metrics.update(best_epoch=res["best_epoch"], train_seconds=round(train_s, 1),
                       n_train=len(train), n_val=len(val), n_dev=len(dev_tweets))
        save_run_record(out_dir, cfg, metrics, extra={"history": res["history"],
                                                       "data_stats": dict(train_split.stats)})
        return metrics

    # --- evaluation ----------------------------------------------------------------------
    def evaluate(self, data: Path, split: str | None = None, checkpoint: Path | None = None, **options) -> dict:
        from ..data.gmner import count_unknown_xml, read_split
        from .entity_train import encode_tweets, evaluate_items, lower_states

        split = split or "dev"
        torch.set_num_threads(int(options.get("threads", 1)))
        self.load(checkpoint)
        cfg = self.cfg
        ds = read_split(Path(data), split)
        limit = int(options.get("limit", 0))
        tweets = ds.tweets[:limit] if limit else ds.tweets
        cap, ml = options.get("caption", cfg["data"]["caption"]), cfg["model"]["max_length"]
        items = encode_tweets(self.tokenizer, tweets, cap, ml)
        states = lower_states(self.model, items, key=f"{cap}-{ml}-{self.model.n_cached}")
        m = evaluate_items(self.model, items, states, float(options.get("threshold", cfg["grounding"]["threshold"])))
        # majority baseline for groundability: the majority class of the training split when present
        ref = ds
        if split != "train" and (Path(data) / "train.txt").exists():
            ref = read_split(Path(data), "train")
        frac = ref.stats["groundable_entities"] / max(ref.stats["entities"], 1)
        pos = m["n_groundable"] / max(m["n_entities"], 1)
        if frac >= 0.5:      # majority says "groundable": all positive
            maj = {"f1": 2 * pos / (1 + pos), "accuracy": pos}
        else:                # majority says "not groundable": no positive predictions
            maj = {"f1": 0.0, "accuracy": 1 - pos}
        out = {"task": "entity", "split": split, "n_tweets": len(tweets), **m,
               "ground_majority_class": "groundable" if frac >= 0.5 else "not groundable",
               "ground_majority_f1": maj["f1"], "ground_majority_accuracy": maj["accuracy"],
               "ground_all_groundable_f1": 2 * pos / (1 + pos),
               "region_judged_by": "groundability (images unavailable): a groundable prediction matches a "
                                   "groundable gold entity; gmner_f1_lower/eeg_f1_lower count every groundable "
                                   "entity as wrong",
               "caption": cap, "data_stats": dict(ds.stats),
               "xml_unknown_ids": count_unknown_xml(Path(data), [ds, ref] if ref is not ds else [ds])}
        return out

    # --- extraction ----------------------------------------------------------------------
    def add_extract_args(self, parser) -> None:
        from .post import add_post_input_args

        add_post_input_args(parser, max_regions=20)
        parser.add_argument("--index", type=Path, help="FAISS region index: link grounded regions to other posts")

    def iter_inputs(self, paths, args):
        from .post import iter_post_inputs

        self.max_regions = args.max_regions
        self.index_path = args.index
        yield from iter_post_inputs(paths, args)

    def load(self, checkpoint: Path | None = None) -> None:
        if self.model is not None and checkpoint is None:
            return
        from ..io import load_trained_weights

        path = Path(checkpoint) if checkpoint else WEIGHTS
        if path.is_dir():
            path = path / "entity_mner.safetensors"
        cfg = None
        try:
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
            cfg = json.loads(meta["config"]) if "config" in meta else None
        except Exception:  # noqa: BLE001 - no metadata: use the default config
            cfg = None
        self.cfg = _cfg(cfg)
        self.tokenizer, self.model = build_model(self.cfg)
        load_trained_weights(self.model, path)      # the frozen backbone is the installed MiniLM
        from ..nn.lora import merge_lora

        merge_lora(self.model)          # inference: fold the adapters into the weights
        self.model.eval()
        self.version = path.name

    def predict(self, doc):
        if self.model is None:
            self.load(None)
        if doc.entities:
            # entities/pairs declared in a post JSON are inputs of --task post; this task finds its own
            doc.meta["ignored_input_entities"] = [e.text for e in doc.entities]
            doc.entities, doc.relations = [], []
        predict_entities(self, doc)
        image = doc.image
        regions = None
        if image is None and doc.meta.get("detections") is None:
            regions = []
        if doc.entities:
            ground_entities(doc, image if regions is None else regions, entities=doc.entities,
                            ground_probs=doc.meta.pop("_ground_probs", None),
                            max_regions=getattr(self, "max_regions", 20),
                            threshold=self.cfg["grounding"]["threshold"],
                            index=getattr(self, "index_path", None))
        return doc


# ------------------------------------------------------------------------------------------------
# prediction on one post
# ------------------------------------------------------------------------------------------------
_TOKEN = __import__("re").compile(r"\w+(?:'\w+)?|[^\w\s]")


def tokenize(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Twitter-GMNER-like tokens: words, and each punctuation mark apart (``@``/``#`` split off)."""
    words, spans = [], []
    for m in _TOKEN.finditer(text):
        words.append(m.group())
        spans.append((m.start(), m.end()))
    return words, spans


@torch.no_grad()
def predict_entities(task: EntityTask, doc) -> None:
    """Tag ``doc.text`` (with ``doc.caption`` as image context); adds Entities with provenance."""
    from ..document import Entity, Provenance, Token
    from ..nn.mner_tagger import encode_example, pad_batch
    from .entity_train import _subword_span

    model, cfg = task.model, task.cfg
    words, spans = tokenize(doc.text)
    if not words:
        return
    item = encode_example(task.tokenizer, words, doc.caption or "", cfg["model"]["max_length"])
    b = pad_batch([item])
    h_top = model.upper(model.lower(b["input_ids"], b["mask"], b["token_type_ids"]), b["mask"], b["shapes"])
    em = model.emissions(h_top)[0]
    e = torch.full((len(words), em.shape[-1]), -1e4)
    e[:, 0] = 0.0
    for w, k in enumerate(item["first"]):
        if k >= 0:
            e[w] = em[k]
    labels = [model.labels[k] for k in model.viterbi(e)]
    from ..data.gmner import bio_to_spans

    base = len(doc.tokens)
    if not doc.tokens:
        doc.tokens = [Token(w, span=s, tag=l) for w, s, l in zip(words, spans, labels)]
        base = 0
    probs = []
    n0 = len(doc.entities)
    for k, (s, t_end, typ) in enumerate(bio_to_spans(labels)):
        sw = _subword_span(item, s, t_end)
        score = float(torch.stack([e[w].max() for w in range(s, t_end)]).mean().exp())
        gp = float(model.ground_logits(h_top, [(0, sw[0], sw[1], typ)]).sigmoid()) if sw else 0.0
        cs, ce = spans[s][0], spans[t_end - 1][1]
        eid = f"m{n0 + k}"
        doc.entities.append(Entity(eid, doc.text[cs:ce], typ, tokens=list(range(base + s, base + t_end)) if base == 0
                                   else [], span=(cs, ce),
                                   provenance=Provenance(doc.source, span=(cs, ce), model=MODEL_NAME,
                                                         model_version=getattr(task, "version", None),
                                                         score=round(score, 4))))
        probs.append((eid, gp))
    doc.meta["_ground_probs"] = dict(probs)
    doc.meta["entity_type_hierarchy"] = cfg["types"].get("coarse", {})


# ------------------------------------------------------------------------------------------------
# grounding, shared by posts, procedure steps and relation-graph entities
# ------------------------------------------------------------------------------------------------
GROUNDING_WEIGHTS = REPO_ROOT / "graphmie" / "weights" / "entity_grounding.safetensors"
GROUNDING_MODEL = "graphmie.entity.grounding_head"


def _load_grounding_head():
    """The shipped grounding head (text + geometry prior), loaded once per process."""
    return _grounding_head_cached()


def _grounding_head_cached(_cache={}):
    if "head" not in _cache:
        from ..io import load_weights
        from ..nn.grounding_head import GroundingHead

        head = GroundingHead(entity_dim=384, use_visual=False)
        head.load_state_dict({k: v.float() for k, v in load_weights(GROUNDING_WEIGHTS).items()})
        head.eval()
        _cache["head"] = head
    return _cache["head"]


def _candidate_regions(doc, image_or_regions, max_regions: int):
    """(regions, image path, image size): from Region/Box lists, detections in doc.meta, or the proposer."""
    from ..document import Box, Provenance, Region
    from ..io import open_image

    if isinstance(image_or_regions, (list, tuple)):
        regs = []
        for i, r in enumerate(image_or_regions):
            if isinstance(r, Box):
                r = Region(f"r{len(doc.regions) + i}", r, "object", image=doc.image,
                           provenance=Provenance(doc.source, box=r, model="given"))
            regs.append(r)
        size = None
        if regs:
            size = (max(r.box.x1 for r in regs), max(r.box.y1 for r in regs))
            img = regs[0].image
            if img:
                try:
                    im = open_image(img)
                    size = im.size
                except Exception:  # noqa: BLE001 - the boxes still define a usable frame
                    pass
        return regs, regs[0].image if regs else None, size
    path = image_or_regions
    im = open_image(path) if not hasattr(path, "size") else path
    name = str(path) if not hasattr(path, "size") else (doc.image or "image")
    det = doc.meta.get("detections")
    if det is not None:
        from scene_graphs.visual import regions_from_detections

        norm, _ = regions_from_detections(det, Path(name).stem, image_size=im.size, where=doc.source)
        boxes = [Box(x0 * im.width, y0 * im.height, x1 * im.width, y1 * im.height) for x0, y0, x1, y1 in norm]
        model = "detections"
    else:
        from scene_graphs.proposals import propose_regions

        boxes = propose_regions(im, max_regions=max_regions)
        model = "scene_graphs.proposals"
    n = len(doc.regions)
    regs = [Region(f"r{n + i}", b, "object", image=name,
                   provenance=Provenance(doc.source, box=b, model=model)) for i, b in enumerate(boxes)]
    doc.regions.extend(regs)
    return regs, name, im.size


@torch.no_grad()
def ground_entities(doc, image_path_or_regions=None, entities=None, ground_probs: dict | None = None,
                    max_regions: int = 20, threshold: float = 0.5, index=None, k_links: int = 5):
    """Ground ``entities`` (default: all of ``doc.entities``) in an image, H-Index style.

    ``image_path_or_regions``: an image path / PIL image (candidates = ``doc.meta["detections"]``
    or the offline proposer), a list of :class:`Region`/:class:`Box` candidates, or None/[]
    (no image: every entity is ungroundable). ``ground_probs`` ({entity id: p}) overrides the
    head's own groundability (the post tagger supplies it). ``index``: a
    :class:`graphmie.retrieval.RegionIndex` (or its folder) to link each grounded region to the
    most similar regions of other images (``doc.meta["region_links"]``).

    Appends the Groundings (with provenance: model, score = region softmax score) and the
    candidate Regions to ``doc`` and returns the new Groundings.
    """
    from ..document import Grounding, Provenance
    from ..encoders.text import get_text_encoder
    from ..nn.grounding_head import normalise_boxes

    ents = list(doc.entities if entities is None else entities)
    if not ents:
        return []
    if image_path_or_regions is None and doc.image:
        image_path_or_regions = doc.image
    regs, image, size = ([], None, None) if not image_path_or_regions else \
        _candidate_regions(doc, image_path_or_regions, max_regions)
    for r in regs:
        if r not in doc.regions:
            doc.regions.append(r)
    head = _load_grounding_head()
    emb = get_text_encoder().encode([f"{e.text} ({e.label})" for e in ents])
    R = len(regs)
    boxes = normalise_boxes([r.box for r in regs], *size) if R else torch.zeros(0, 4)
    out = head(emb, boxes[None].expand(len(ents), R, 4) if R else torch.zeros(len(ents), 0, 4))
    gp = None
    if ground_probs is not None:     # the tagger's groundability where it has one, else the head's own
        own = out.ground_logit.sigmoid()
        gp = torch.tensor([float(ground_probs[e.id]) if e.id in ground_probs else float(own[i])
                           for i, e in enumerate(ents)])
    res = head.predict(out, threshold=threshold, ground_prob=gp)
    new = []
    for e, (j, score, p) in zip(ents, res):
        if j is None:
            g = Grounding(e.id, None, image=image, provenance=Provenance(
                doc.source, model=GROUNDING_MODEL, score=round(1 - p, 4)))
        else:
            r = regs[j]
            g = Grounding(e.id, r.id, box=r.box, image=r.image or image, provenance=Provenance(
                doc.source, box=r.box, model=GROUNDING_MODEL, score=round(score * p, 4)))
        doc.groundings.append(g)
        new.append(g)
    if index is not None and any(g.region for g in new) and image:
        _link(doc, new, index, k_links)
    return new


def _link(doc, groundings, index, k):
    from ..encoders.image import get_image_encoder
    from ..io import open_image
    from ..retrieval.index import RegionIndex

    idx = index if isinstance(index, RegionIndex) else RegionIndex.load(index)
    gs = [g for g in groundings if g.region and g.image]
    im = open_image(gs[0].image)
    q = get_image_encoder().encode(im, [g.box for g in gs]).numpy()
    links = doc.meta.setdefault("region_links", {})
    for g, hits in zip(gs, idx.search(q, k + 1)):
        links[g.entity] = [{"image": m["image"], "box": m["box"], "score": round(s, 4)} for s, m in hits
                           if str(m["image"]) != str(g.image)][:k]
