"""Cross-modal graph (CMG): the textual and visual scene graphs fused into one graph, as MRE-ISE.

Nodes of the TSG get the prefix ``t:``, nodes of the VSG (image, regions, caption graph) ``v:``.
Cross-modal edges:

* ``similar``: a textual object/attribute node and a caption object/attribute node whose phrase
  vectors have cosine >= ``threshold``;
* ``in_post``: every textual object to the image node (the post's image as global context);
* ``may_depict``: the relation's head and tail objects to every region (candidates; the graph
  information bottleneck learns which of these, and of all other edges, to keep).

``to_tensors`` turns a CMG into model inputs: node type ids, head/tail flags, phrase vectors, 9-d box
geometry, and typed directed edges (each edge also reversed, type + ``len(EDGE_TYPES)``).

Phrase vectors come from the caller's ``embed`` (a callable: list of phrases -> ``[n, dim]`` unit
vectors, one space for text and caption); graphmie passes MiniLM's static word-piece embeddings
(:func:`graphmie.engine.embedder.get_static_embedder` with 16 pieces).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from .graph import Node, SceneGraph

EDGE_TYPES = ("attr", "subj", "obj", "mod", "same_as", "has_region", "contains", "overlaps", "near", "left of",
              "above", "looks_like", "depicts", "similar", "in_post", "may_depict")
NODE_TYPES = ("text:object", "text:attribute", "text:relation", "image:image", "image:region",
              "caption:object", "caption:attribute", "caption:relation")
DEFAULT_THRESHOLD = 0.55
#: phrases -> [n, dim] unit vectors
Embed = Callable[[list[str]], torch.Tensor]


def fuse(tsg: SceneGraph, vsg: Optional[SceneGraph], head_span=None, tail_span=None, *, embed: Embed,
         threshold: float = DEFAULT_THRESHOLD) -> SceneGraph:
    """Fuse a TSG and a VSG (``None``: text only) into one graph; marks head/tail objects by span."""
    t = tsg.prefixed("t:")
    for n in t.nodes:
        n.source = "text"
    g = SceneGraph(nodes=list(t.nodes), edges=list(t.edges))
    roles = {}
    for role, span in (("head", head_span), ("tail", tail_span)):
        if span is None:
            continue
        for n in t.nodes:
            if n.kind == "object" and n.span and n.span[0] < span[1] and span[0] < n.span[1]:
                roles.setdefault(n.id, set()).add(role)
    g.roles = roles  # type: ignore[attr-defined]
    if vsg is None:
        return g
    v = vsg.prefixed("v:")
    g.nodes += v.nodes
    g.edges += v.edges
    img = "v:img"
    t_nodes = [n for n in t.nodes if n.kind in ("object", "attribute")]
    c_nodes = [n for n in v.nodes if n.source == "caption" and n.kind in ("object", "attribute")]
    if t_nodes and c_nodes:
        sims = (embed([n.text for n in t_nodes]) @ embed([n.text for n in c_nodes]).T).tolist()
        for i, a in enumerate(t_nodes):
            for j, b in enumerate(c_nodes):
                if sims[i][j] >= threshold:
                    g.add_edge(a.id, b.id, "similar")
    regions = [n for n in v.nodes if n.kind == "region"]
    for n in t.nodes:
        if n.kind == "object":
            g.add_edge(n.id, img, "in_post")
            if n.id in roles:
                for r in regions:
                    g.add_edge(n.id, r.id, "may_depict")
    return g


def node_type(n: Node) -> int:
    src = "image" if n.kind in ("image", "region") else n.source
    return NODE_TYPES.index(f"{src}:{n.kind}")


def geometry(box) -> list[float]:
    if not box:
        return [0.0] * 9
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    return [x0, y0, x1, y1, w, h, w * h, (x0 + x1) / 2, (y0 + y1) / 2]


def to_tensors(g: SceneGraph, embed: Embed) -> dict[str, torch.Tensor]:
    """Model inputs for one CMG (see the module docstring)."""
    index = {n.id: i for i, n in enumerate(g.nodes)}
    roles = getattr(g, "roles", {})
    visual = [n.kind in ("image", "region") for n in g.nodes]
    emb = embed([n.text if not v else "" for n, v in zip(g.nodes, visual)])
    emb = emb.masked_fill(torch.tensor(visual, dtype=torch.bool).reshape(-1, 1), 0.0)     # no phrase vector
    src, dst, et = [], [], []
    for s, d, lab in g.edges:
        k = EDGE_TYPES.index(lab)
        src += [index[s], index[d]]
        dst += [index[d], index[s]]
        et += [k, k + len(EDGE_TYPES)]
    return {
        "node_type": torch.tensor([node_type(n) for n in g.nodes], dtype=torch.long),
        "role": torch.tensor([[("head" in roles.get(n.id, ())), ("tail" in roles.get(n.id, ()))] for n in g.nodes],
                             dtype=torch.float).reshape(-1, 2),
        "emb": emb.half(),
        "geo": torch.tensor([geometry(n.box) for n in g.nodes], dtype=torch.float).reshape(-1, 9),
        "edge_index": torch.tensor([src, dst], dtype=torch.long).reshape(2, -1),
        "edge_type": torch.tensor(et, dtype=torch.long),
    }


#: nodes drawn at most (the drawing's cost grows with the nodes and edges; see :func:`drawn_part`)
MAX_DRAW_NODES = 60


def drawn_part(g: SceneGraph, max_nodes: int = MAX_DRAW_NODES) -> tuple[SceneGraph, Optional[str]]:
    """The part of ``g`` a drawing shows, and a note when it is not all of it: a graph of more than
    ``max_nodes`` nodes is cut to the head/tail neighbourhood (breadth-first from the head and tail
    objects, not through the image node's ``in_post`` hub, then the image and its regions, up to
    ``max_nodes`` nodes) with the edges among those nodes."""
    if len(g.nodes) <= max_nodes:
        return g, None
    adj: dict[str, list[str]] = {}
    for a, b, lab in g.edges:
        if lab != "in_post":
            adj.setdefault(a, []).append(b)
            adj.setdefault(b, []).append(a)
    roles = getattr(g, "roles", {})
    order = [n.id for n in g.nodes if n.id in roles] or [g.nodes[0].id]
    keep = dict.fromkeys(order)
    k = 0
    while k < len(order) and len(keep) < max_nodes:
        for m in adj.get(order[k], ()):
            if m not in keep and len(keep) < max_nodes:
                keep[m] = None
                order.append(m)
        k += 1
    for n in g.nodes:                              # the image and its regions, when there is room
        if n.kind in ("image", "region") and len(keep) < max_nodes:
            keep.setdefault(n.id)
    part = SceneGraph(nodes=[n for n in g.nodes if n.id in keep],
                      edges=[e for e in g.edges if e[0] in keep and e[1] in keep])
    part.roles = {n: r for n, r in roles.items() if n in keep}  # type: ignore[attr-defined]
    return part, (f"summarised: {len(part.nodes)} of {len(g.nodes)} nodes (the head/tail neighbourhood; "
                  f"at most {max_nodes} are drawn)")


def draw(g: SceneGraph, title: str = "", max_nodes: int = MAX_DRAW_NODES) -> bytes:
    """A PNG drawing of a cross-modal graph (text nodes blue, caption green, image/regions orange);
    a graph of more than ``max_nodes`` nodes is drawn summarised (:func:`drawn_part`)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    g, _ = drawn_part(g, max_nodes)
    G = nx.DiGraph()
    colors = {"text": "#8ecae6", "caption": "#b7e4c7", "image": "#ffb703"}
    for n in g.nodes:
        G.add_node(n.id, label=(n.text[:18] or n.kind))
    for s, d, lab in g.edges:
        G.add_edge(s, d, label=lab)
    roles = getattr(g, "roles", {})
    fig, ax = plt.subplots(figsize=(11, 8), dpi=90)
    pos = nx.spring_layout(G, seed=0, k=1.2 / max(len(G) ** 0.5, 1))
    node_colors = [("#fb8500" if n.id in roles else colors.get(n.source, "#ddd")) for n in g.nodes]
    nx.draw_networkx_nodes(G, pos, node_color=node_colors, node_size=380, ax=ax)
    nx.draw_networkx_edges(G, pos, ax=ax, alpha=0.45, arrows=True, arrowsize=8)
    nx.draw_networkx_labels(G, pos, {n: G.nodes[n]["label"] for n in G}, font_size=7, ax=ax)
    nx.draw_networkx_edge_labels(G, pos, nx.get_edge_attributes(G, "label"), font_size=5, ax=ax)
    ax.set_title(title[:120], fontsize=9)
    ax.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
