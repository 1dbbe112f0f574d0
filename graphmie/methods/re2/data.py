"""From a form Document to what the network sees: the layout graph, link candidates, gold targets.

:func:`make_graph` builds the region-aware layout graph (:func:`layout.graph.build_layout_graph`)
over the block features; :func:`pair_inputs` lists the question→answer candidates of a labelling
(each answer's ``candidates_k`` nearest questions + the baseline rule's pick) with their pair
geometry; :func:`make_sample` adds the gold labels and links of an annotated form;
:func:`batch_forward` runs a batch of samples through one network as one disjoint graph.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ...data.funsd import gold_links, list_annotations, read_funsd
from ...document import Document
from ...errors import GraphmieError
from .features import Featurizer
from .model import LABELS, FormRE2


@dataclass
class Sample:
    doc: Document
    data: object                       # torch_geometric Data
    labels: torch.Tensor | None        # gold label index per entity
    gold: set                          # gold (question idx, answer idx)
    pairs: torch.Tensor | None = None  # candidates from gold labels, [P, 2] entity indices
    pair_x: torch.Tensor | None = None
    pair_y: torch.Tensor | None = None


def make_graph(doc: Document, feats: Featurizer, gcfg: dict):
    """The layout graph of a form's page (``gcfg``: the ``[graph]`` config)."""
    from layout.graph import build_layout_graph

    if not doc.entities:
        raise GraphmieError("E007", doc.source, detail="the page has no entity blocks (no text)")
    page = doc.pages[0] if doc.pages else None
    boxes = [e.box for e in doc.entities]
    w = page.width if page else max(b.x1 for b in boxes) + 1
    h = page.height if page else max(b.y1 for b in boxes) + 1
    x = feats([e.text for e in doc.entities], boxes, page.image if page else None)
    return build_layout_graph(boxes, w, h, x, k=gcfg["k"], regions=gcfg["regions"], edge_types=gcfg["edge_types"])


def pair_inputs(doc: Document, labels: list[str], k: int) -> tuple[list[tuple[int, int]], torch.Tensor]:
    """(question, answer) entity-index candidates under ``labels`` and their pair features."""
    from layout.linking import PAIR_DIM, candidates, pair_features

    boxes = [e.box for e in doc.entities]
    pairs = candidates(boxes, labels, k)
    if not pairs:
        return [], torch.zeros(0, PAIR_DIM)
    return pairs, torch.from_numpy(pair_features(boxes, pairs, labels))


def make_sample(doc: Document, feats: Featurizer, gcfg: dict) -> Sample:
    """A gold-annotated form as a training / scoring sample (candidates from the gold labels)."""
    data = make_graph(doc, feats, gcfg)
    idx = {e.id: i for i, e in enumerate(doc.entities)}
    gold = {(idx[q], idx[a]) for q, a in gold_links(doc)}
    labels = [e.label for e in doc.entities]
    pairs, px = pair_inputs(doc, labels, gcfg["candidates_k"])
    return Sample(doc=doc, data=data, labels=torch.tensor([LABELS.index(l) for l in labels]), gold=gold,
                  pairs=torch.tensor(pairs, dtype=torch.long).reshape(-1, 2), pair_x=px,
                  pair_y=torch.tensor([float(p in gold) for p in pairs]))


def read_folder(folder: Path, ids: set[str] | None = None, progress: bool = True) -> list[Document]:
    """The FUNSD annotations of a dataset folder (only ``ids`` when given)."""
    from tqdm import tqdm

    files = [f for f in list_annotations(folder) if ids is None or f.stem in ids]
    return [read_funsd(f) for f in tqdm(files, desc="reading FUNSD", unit="form", disable=not progress)]


def batch_forward(net: FormRE2, samples: list[Sample]):
    """One batch as one disjoint graph: (entity logits, gold labels, link logits, link targets,
    candidate pairs as node indices of the batch)."""
    from torch_geometric.data import Batch

    keep = ["x", "geo", "edge_index", "edge_attr", "node_type"]
    datas = [s.data.__class__(**{k: s.data[k] for k in keep}, num_nodes=s.data.num_nodes) for s in samples]
    b = Batch.from_data_list(datas)
    h = net.encode(b.x, b.geo, b.edge_index, b.edge_attr)
    ent_idx, pairs, px, py = [], [], [], []
    for g, s in enumerate(samples):
        off = int(b.ptr[g])
        n = len(s.doc.entities)
        ent_idx.append(torch.arange(off, off + n))
        if len(s.pairs):
            pairs.append(s.pairs + off)
            px.append(s.pair_x)
            py.append(s.pair_y)
    ent_idx = torch.cat(ent_idx)
    ent_logits = net.entity_logits(h[ent_idx])
    labels = torch.cat([s.labels for s in samples])
    if pairs:
        pairs, px, py = torch.cat(pairs), torch.cat(px), torch.cat(py)
        link_logits = net.link_logits(h, pairs, px)
    else:
        pairs, link_logits, py = torch.zeros(0, 2, dtype=torch.long), torch.zeros(0), torch.zeros(0)
    return ent_logits, labels, link_logits, py, pairs
