"""The step graph and the candidate flow pairs."""
from __future__ import annotations

from graphmie.methods.seqgmper.graph import build_step_graph, candidate_pairs


def test_step_graph_exact():
    # step 0: "Chop onion" (root Chop), step 1: "Fry it now" (root Fry), step 1 has 2 regions
    g = build_step_graph([[0, 1], [2, 3, 4]], [[-1, 0], [-1, 0, 0]], [0, 2])
    assert g.node_kind == ["text"] * 5 + ["image"] * 2
    assert g.node_step == [0, 0, 1, 1, 1, 1, 1] and g.node_ref == [0, 1, 2, 3, 4, 0, 1]
    assert g.roots == {0: 0, 1: 2}
    e = set(g.edges)
    assert (0, 1, "dep") in e and (1, 0, "dep_rev") in e and (2, 4, "dep") in e
    assert (0, 1, "next_word") in e and (3, 4, "next_word") in e and (1, 2, "next_word") not in e
    assert [x for x in g.edges if x[2] in ("next_step", "prev_step")] == [(0, 2, "next_step"), (2, 0, "prev_step")]
    assert {(s, d) for s, d, t in g.edges if t == "text_image"} == {(t, i) for t in (2, 3, 4) for i in (5, 6)}
    assert {(s, d) for s, d, t in g.edges if t == "image_image"} == {(5, 6), (6, 5)}
    assert not any(t.startswith("text_image") and g.node_step[s] == 0 for s, d, t in g.edges)
    ei, et = g.edge_index()
    assert ei.shape == (2, len(g.edges)) and et.shape == (len(g.edges),)


def test_step_graph_without_parse_or_text():
    # a step whose parse does not fit its words: the first word heads all; an image-only step is rooted
    # at its first region
    g = build_step_graph([[0, 1, 2], []], [[5], []], [0, 1])
    assert {(s, d) for s, d, t in g.edges if t == "dep"} == {(0, 1), (0, 2)}
    assert g.roots == {0: 0, 1: 3} and (0, 3, "next_step") in g.edges
    assert build_step_graph([], []).edge_index()[0].shape == (2, 0)


def test_candidate_pairs_forward_only():
    assert candidate_pairs([0, 0, 1, 4], max_gap=2) == [(0, 1), (0, 2), (1, 0), (1, 2)]
