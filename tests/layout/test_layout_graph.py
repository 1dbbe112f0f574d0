"""Layout graph construction on hand-made layouts: edge types, directions, regions."""
import torch

from graphmie.document import Box
from layout.geometry import SECTORS, alignment, distance_bucket, sector
from layout.graph import CONTAIN, EDGE_DIM, NODE_TYPES, build_layout_graph, edge_vector
from layout.regions import analyse, group_lines, group_tables, merge_segments, segment_words

A = Box(0, 0, 10, 10)


def test_sectors_are_exact():
    assert SECTORS[sector(A, Box(30, 0, 40, 10))] == "E"
    assert SECTORS[sector(A, Box(-40, 0, -30, 10))] == "W"
    assert SECTORS[sector(A, Box(0, -40, 10, -30))] == "N"        # smaller y = above
    assert SECTORS[sector(A, Box(0, 40, 10, 50))] == "S"
    assert SECTORS[sector(A, Box(30, 30, 40, 40))] == "SE"
    assert SECTORS[sector(A, Box(-30, -30, -20, -20))] == "NW"
    assert SECTORS[sector(A, Box(30, -30, 40, -20))] == "NE"
    assert SECTORS[sector(A, Box(-30, 30, -20, 40))] == "SW"


def test_distance_buckets_and_alignment():
    unit = 10.0
    assert distance_bucket(A, Box(15, 0, 20, 10), unit) == 0     # gap 5 = 0.5 units
    assert distance_bucket(A, Box(30, 0, 40, 10), unit) == 1     # gap 20 = 2 units
    assert distance_bucket(A, Box(60, 0, 70, 10), unit) == 2     # gap 50 = 5 units
    assert distance_bucket(A, Box(200, 0, 210, 10), unit) == 3
    same_line, left, right, center, top = alignment(A, Box(0, 40, 10, 50), tol=2)
    assert (same_line, left, right, center, top) == (0, 1, 1, 1, 0)
    assert alignment(A, Box(30, 1, 60, 11), tol=2) == (1, 0, 0, 0, 1)


def test_edge_vector_layout():
    v = edge_vector(A, Box(30, 0, 40, 10), 10.0, contain=1)
    assert len(v) == EDGE_DIM
    assert v[SECTORS.index("E")] == 1 and sum(v[:8]) == 1
    assert v[8 + 1] == 1 and sum(v[8:12]) == 1                    # distance bucket "near"
    assert v[12] == 1                                             # same line
    assert v[17 + CONTAIN.index("contains")] == 1


def _page():
    # a question with its answer on the same line, and a second question below
    return [Box(0, 0, 50, 10), Box(60, 0, 120, 10), Box(0, 40, 50, 50)]


def test_graph_edges_types_and_regions():
    boxes = _page()
    g = build_layout_graph(boxes, 200, 100, torch.eye(3), k=2)
    assert g.n_entities == 3
    edges = {(int(s), int(d)): (SECTORS[int(t)], int(c)) for s, d, t, c in
             zip(g.edge_index[0], g.edge_index[1], g.edge_sector, g.edge_contain)}
    assert edges[(0, 1)] == ("E", 0) and edges[(1, 0)] == ("W", 0)
    assert edges[(0, 2)] == ("S", 0) and edges[(2, 0)] == ("N", 0)
    # one line region (0, 1); no block (gap of 3 text heights), no table
    assert g.regions == [("line", [0, 1])]
    r = 3
    assert NODE_TYPES[int(g.node_type[r])] == "line"
    assert edges[(r, 0)][1] == CONTAIN.index("contains") and edges[(0, r)][1] == CONTAIN.index("inside")
    assert (r, 2) not in edges
    # region node features are the mean of its members'
    assert torch.allclose(g.x[r], torch.tensor([0.5, 0.5, 0.0]))
    assert g.edge_attr.shape == (g.edge_index.shape[1], EDGE_DIM)


def test_ablation_graph_has_no_regions_and_untyped_edges():
    g = build_layout_graph(_page(), 200, 100, torch.eye(3), k=2, regions=False, edge_types=False)
    assert g.num_nodes == 3 and g.regions == []
    assert g.edge_attr.abs().sum() == 0


def test_lines_blocks_tables():
    # 3 rows x 2 aligned columns = a table; plus a two-line paragraph stacked at the bottom
    boxes = [Box(0, y, 40, y + 10) for y in (0, 20, 40)] + [Box(100, y, 140, y + 10) for y in (0, 20, 40)]
    boxes += [Box(0, 100, 80, 110), Box(0, 114, 60, 124)]
    lines = group_lines(boxes)
    assert lines[:3] == [[0, 3], [1, 4], [2, 5]]
    assert group_tables(boxes, lines, tol=5) == [[0, 1, 2]]
    lay = analyse(boxes)
    assert [6, 7] in lay.blocks


def test_ocr_words_to_segments_and_blocks():
    words = [("Name:", Box(0, 0, 40, 10)), ("John", Box(44, 0, 70, 10)), ("Smith", Box(74, 0, 100, 10)),
             ("Date", Box(200, 0, 230, 10)), ("Notes", Box(0, 30, 40, 40)), ("more", Box(0, 43, 30, 53))]
    segs = segment_words(words, unit=10)
    assert [[words[i][0] for i in s] for s in segs] == [["Name:"], ["John", "Smith"], ["Date"], ["Notes"], ["more"]]
    seg_boxes = [Box(0, 30, 40, 40), Box(0, 43, 30, 53), Box(200, 0, 230, 10)]
    assert sorted(merge_segments(seg_boxes, unit=10)) == [[0, 1], [2]]


def test_vectorised_edge_features_equal_the_per_edge_definition():
    import numpy as np

    from layout.graph import box_array, edge_arrays

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, size=(40, 2))
    wh = rng.uniform(1, 80, size=(40, 2))
    boxes = [Box(float(x), float(y), float(x + w), float(y + h)) for (x, y), (w, h) in zip(xy, wh)]
    boxes += [Box(10, 10, 20, 20), Box(10, 10, 20, 20), Box(30, 10, 40, 20)]   # same centre; same line
    n = len(boxes)
    src, dst = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    src, dst = src.ravel(), dst.ravel()
    contain = rng.integers(0, 3, size=len(src))
    v, sect, dist = edge_arrays(box_array(boxes), src, dst, contain, 12.0)
    for e in range(len(src)):
        ref = edge_vector(boxes[src[e]], boxes[dst[e]], 12.0, int(contain[e]))
        assert np.allclose(v[e], ref, atol=1e-6), e
        assert sect[e] == int(np.argmax(ref[:8])) and dist[e] == int(np.argmax(ref[8:12]))


def test_baseline_rule_and_candidates():
    from layout.linking import candidates, rule_links

    boxes = [Box(10, 10, 100, 30), Box(10, 50, 60, 70), Box(80, 50, 200, 70), Box(10, 90, 60, 110),
             Box(80, 90, 200, 110), Box(10, 130, 60, 150), Box(10, 160, 60, 180)]
    labels = ["header", "question", "answer", "question", "answer", "question", "answer"]
    # Name:->Ann Lee and Date:->1/2/99 on their lines; 555-1234 takes Fax just above it
    assert rule_links(boxes, labels) == {(1, 2), (3, 4), (5, 6)}
    cands = candidates(boxes, labels, k=2)
    assert all(labels[q] == "question" and labels[a] == "answer" for q, a in cands)
    assert {(1, 2), (3, 4), (5, 6)} <= set(cands)


def test_graph_and_pair_features_do_not_depend_on_the_box_unit():
    """Pixels or PDF points: a uniformly scaled page gives the same graph and pair features."""
    import numpy as np

    from layout.linking import candidates, pair_features

    rng = np.random.default_rng(1)
    xy, wh = rng.uniform(0, 600, size=(30, 2)), rng.uniform(8, 90, size=(30, 2))
    boxes = [Box(float(x), float(y), float(x + w), float(y + h / 4)) for (x, y), (w, h) in zip(xy, wh)]
    s = 72 / 150
    small = [Box(b.x0 * s, b.y0 * s, b.x1 * s, b.y1 * s) for b in boxes]
    a = build_layout_graph(boxes, 1275, 1650, torch.eye(30), k=4)
    b = build_layout_graph(small, 1275 * s, 1650 * s, torch.eye(30), k=4)
    assert torch.equal(a.edge_index, b.edge_index) and a.regions == b.regions
    assert torch.allclose(a.edge_attr, b.edge_attr, atol=1e-5) and torch.allclose(a.geo, b.geo, atol=1e-5)
    labels = ["question" if i % 2 else "answer" for i in range(30)]
    pa, pb = candidates(boxes, labels, 5), candidates(small, labels, 5)
    assert pa == pb
    assert np.allclose(pair_features(boxes, pa, labels), pair_features(small, pb, labels), atol=1e-5)
