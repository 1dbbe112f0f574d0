"""Layout graph construction on hand-made layouts: edge types, directions, regions."""
import torch

from graphmie.document import Box
from layout.geometry import SECTORS, alignment, distance_bucket, sector
from layout.graph import CONTAIN, EDGE_DIM, NODE_TYPES, build_layout_graph, edge_vector
from layout.regions import analyse, group_lines, group_tables, merge_segments, segment_words, stack_chains

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


# --- the array forms of the geometry, against the definitions on one pair of boxes ------------
def _awkward_boxes(seed=0, n=40):
    """Random integer boxes (ties, touching edges, zero widths and heights) plus hand-made cases:
    identical, nested, touching, stacked, a point and a line."""
    import numpy as np

    rng = np.random.default_rng(seed)
    xy, wh = rng.integers(0, 200, size=(n, 2)), rng.integers(0, 40, size=(n, 2))
    boxes = [Box(float(x), float(y), float(x + w), float(y + h)) for (x, y), (w, h) in zip(xy, wh)]
    return boxes + [Box(10, 10, 50, 20), Box(10, 10, 50, 20), Box(20, 12, 30, 18), Box(50, 10, 90, 20),
                    Box(10, 21, 40, 31), Box(10, 32, 60, 42), Box(5, 5, 5, 5), Box(0, 15, 100, 15)]


def _column_segments(seed=0, rows=30):
    """Segments in a few left-aligned columns, one text height apart or more (stacking candidates)."""
    import random

    rng = random.Random(seed)
    boxes, texts = [], []
    for r in range(rows):
        y = 13.0 * r + rng.choice([0, 0, 2, 9])
        for x in rng.sample([0.0, 1.0, 120.0, 260.0], 2):
            boxes.append(Box(x, y, x + rng.choice([30, 60, 80, 100]), y + 10))
            texts.append(rng.choice(["Name:", "value", "Date :", "more text"]))
    return boxes, texts


def test_array_relations_equal_the_box_functions():
    from layout.geometry import (box_array, centers, gap, gaps, h_overlap, h_overlaps, same_line, same_lines,
                                 sectors, v_overlap, v_overlaps)

    boxes = _awkward_boxes()
    arr = box_array(boxes)
    a, b = arr[:, None], arr[None]
    vo, ho, sl, se, (gx, gy), (cx, cy) = (v_overlaps(a, b), h_overlaps(a, b), same_lines(a, b), sectors(a, b),
                                          gaps(a, b), centers(arr))
    for i, p in enumerate(boxes):
        assert (cx[i], cy[i]) == p.center
        for j, q in enumerate(boxes):
            assert vo[i, j] == v_overlap(p, q) and ho[i, j] == h_overlap(p, q), (i, j)
            assert sl[i, j] == same_line(p, q) and se[i, j] == sector(p, q), (i, j)
            assert (gx[i, j], gy[i, j]) == gap(p, q), (i, j)
    assert (same_lines(a, b, 0.9) == (vo >= 0.9)).all()


def _group_blocks_loop(boxes, unit, max_gap=1.0):
    """:func:`group_blocks` as the pairwise loop it vectorises."""
    from layout.geometry import h_overlap, same_line
    from layout.regions import _DSU

    dsu = _DSU(len(boxes))
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            if h_overlap(a, b) > 0.0 and max(a.y0, b.y0) - min(a.y1, b.y1) <= max_gap * unit and not same_line(a, b):
                dsu.union(i, j)
    return sorted((sorted(g, key=lambda i: (boxes[i].y0, boxes[i].x0)) for g in dsu.groups()),
                  key=lambda g: (min(boxes[i].y0 for i in g), min(boxes[i].x0 for i in g)))


def _merge_segments_loop(boxes, unit, max_gap=0.6, tol=1.0, min_ratio=0.7, texts=None):
    """:func:`merge_segments` as the pairwise loop it vectorises."""
    from layout.geometry import same_line

    order = sorted(range(len(boxes)), key=lambda i: (boxes[i].y0, boxes[i].x0))
    below, taken = {}, set()
    for i in order:
        best = None
        for j in order:
            if j == i or j in taken:
                continue
            a, b = boxes[i], boxes[j]
            if -0.3 * unit <= b.y0 - a.y1 <= max_gap * unit and abs(a.x0 - b.x0) <= tol * unit \
                    and not same_line(a, b) and a.width >= min_ratio * b.width \
                    and not (texts is not None and texts[i].rstrip().endswith(":")):
                if best is None or b.y0 < boxes[best].y0:
                    best = j
        if best is not None:
            below[i] = best
            taken.add(best)
    return stack_chains(order, below)          # (the chaining itself did not change)


def test_group_blocks_and_merge_segments_equal_their_pairwise_loops():
    from layout.regions import group_blocks

    for seed in range(3):
        boxes = _awkward_boxes(seed)
        for unit in (3.0, 10.0):
            assert group_blocks(boxes, unit) == _group_blocks_loop(boxes, unit)
            assert merge_segments(boxes, unit) == _merge_segments_loop(boxes, unit)
        segs, texts = _column_segments(seed)
        assert merge_segments(segs, 10.0) == _merge_segments_loop(segs, 10.0)
        assert merge_segments(segs, 10.0, texts=texts) == _merge_segments_loop(segs, 10.0, texts=texts)
        assert any(len(b) > 1 for b in merge_segments(segs, 10.0, texts=texts))
    assert group_blocks([], 10.0) == [] and merge_segments([], 10.0) == []


def test_knn_pairs_and_graph_edges_equal_their_loops():
    import numpy as np

    from layout.graph import both_ways, knn_pairs

    def knn_loop(boxes, k):
        from layout.graph import box_array, gap_matrix

        arr = box_array(boxes)
        c = (arr[:, :2] + arr[:, 2:]) / 2
        d = gap_matrix(arr, arr) + 1e-3 * np.hypot(c[:, None, 0] - c[None, :, 0], c[:, None, 1] - c[None, :, 1])
        np.fill_diagonal(d, np.inf)
        nn = np.argpartition(d, min(k, len(boxes) - 1) - 1, axis=1)[:, :min(k, len(boxes) - 1)]
        return sorted({(min(i, int(j)), max(i, int(j))) for i in range(len(boxes)) for j in nn[i]})

    boxes = _awkward_boxes()
    for k in (1, 3, 8):
        assert knn_pairs(boxes, k) == knn_loop(boxes, k)
    assert knn_pairs(boxes[:1], 8) == []
    src, dst, cont = both_ways(np.array([0, 5]), np.array([1, 6]), np.array([0, 1]), np.array([0, 2]))
    assert list(zip(src, dst, cont)) == [(0, 1, 0), (1, 0, 0), (5, 6, 1), (6, 5, 2)]

    def edges_loop(boxes, k):
        """The edge list in the documented order: k-nearest pairs both ways, then regions and members."""
        n, lay, out = len(boxes), analyse(boxes), []
        for i, j in knn_pairs(boxes, k):
            out += [(i, j, 0), (j, i, 0)]
        lines = [g for g in lay.lines if len(g) > 1]
        line_node = {tuple(g): n + r for r, g in enumerate(lines)}
        for r, g in enumerate(lines + lay.blocks, start=n):
            out += [e for i in g for e in ((r, i, 1), (i, r, 2))]
        for r, rows in enumerate(lay.tables, start=n + len(lines) + len(lay.blocks)):
            for row in rows:
                kids = [line_node[tuple(lay.lines[row])]] if tuple(lay.lines[row]) in line_node else lay.lines[row]
                out += [e for i in kids for e in ((r, i, 1), (i, r, 2))]
        return out

    table = [Box(0, y, 40, y + 10) for y in (0, 20, 40)] + [Box(100, y, 140, y + 10) for y in (0, 20, 40)]
    table += [Box(0, 100, 80, 110), Box(0, 114, 60, 124), Box(100, 60, 140, 70)]
    for boxes in (table, _awkward_boxes(1)):
        g = build_layout_graph(boxes, 300, 300, torch.zeros(len(boxes), 2), k=3)
        got = list(zip(g.edge_index[0].tolist(), g.edge_index[1].tolist(), g.edge_contain.tolist()))
        assert got == edges_loop(boxes, 3)
    assert any(kind == "table" for kind, _ in build_layout_graph(table, 300, 300, torch.zeros(9, 2)).regions)


def test_node_geometries_and_region_boxes_equal_their_definitions():
    import numpy as np

    from layout.graph import box_array, node_geometries, node_geometry, region_boxes

    boxes = _awkward_boxes()
    groups = [[3], [0, 1, 2], [47, 5, 9, 1], list(range(len(boxes)))]
    unions = []
    for g in groups:
        u = boxes[g[0]]
        for i in g[1:]:
            u = u.union(boxes[i])
        unions.append(u.to_list())
    assert region_boxes(box_array(boxes), groups).tolist() == unions
    assert region_boxes(box_array(boxes), []).shape == (0, 4)
    types = [i % len(NODE_TYPES) for i in range(len(boxes))]
    got = node_geometries(box_array(boxes), types, 300.0, 250.0, 11.0)
    ref = np.array([node_geometry(b, 300.0, 250.0, 11.0, t) for b, t in zip(boxes, types)], dtype=np.float32)
    assert np.allclose(got, ref, rtol=0, atol=1e-6) and np.array_equal(np.delete(got, 6, 1), np.delete(ref, 6, 1))


def _pair_features_loop(boxes, pairs, labels):
    """:func:`pair_features` pair by pair (the definition it vectorises)."""
    import math

    import numpy as np

    from layout.geometry import gap, h_overlap, median_height, same_line, v_overlap
    from layout.linking import PAIR_DIM, rule_question

    unit = median_height(boxes)
    qs = [i for i, l in enumerate(labels) if l == "question"]
    rank, by_answer, rule = {}, {}, {}
    for q, a in pairs:
        by_answer.setdefault(a, []).append((math.hypot(*gap(boxes[q], boxes[a])), q))
    for a, lst in by_answer.items():
        for r, (_, q) in enumerate(sorted(lst)):
            rank[(q, a)] = r
        rule[a] = rule_question(a, boxes, qs, unit)
    out = np.zeros((len(pairs), PAIR_DIM), dtype=np.float32)
    for n, (q, a) in enumerate(pairs):
        qb, ab = boxes[q], boxes[a]
        gx, gy = gap(qb, ab)
        f = [np.clip((ab.center[0] - qb.center[0]) / (30 * unit), -1, 1),
             np.clip((ab.center[1] - qb.center[1]) / (30 * unit), -1, 1),
             math.log1p(gx / unit) / 4, math.log1p(gy / unit) / 4,
             v_overlap(qb, ab), h_overlap(qb, ab), float(same_line(qb, ab)),
             float(qb.x1 <= ab.x0 + unit), float(qb.y1 <= ab.y0 + 0.5 * unit),
             min(rank[(q, a)], 10) / 10, float(rule.get(a) == q)]
        s = [0.0] * len(SECTORS)
        s[sector(qb, ab)] = 1.0
        out[n] = f + s
    return out


def test_rule_candidates_and_pair_features_equal_their_loops():
    import random

    import numpy as np

    from layout.geometry import median_height
    from layout.linking import candidate_ranks, candidates, pair_features, rule_question, rule_questions

    rng = random.Random(0)
    for seed in range(3):
        boxes = _awkward_boxes(seed)
        labels = [rng.choice(["question", "answer", "answer", "other"]) for _ in boxes]
        qs = [i for i, l in enumerate(labels) if l == "question"]
        ans = [i for i, l in enumerate(labels) if l == "answer"]
        unit = median_height(boxes)
        assert rule_questions(ans, boxes, qs, unit) == [rule_question(a, boxes, qs, unit) for a in ans]
        assert any(q is not None for q in rule_questions(ans, boxes, qs, unit))
        pairs = candidates(boxes, labels, k=5)
        got, ref = pair_features(boxes, pairs, labels), _pair_features_loop(boxes, pairs, labels)
        assert np.array_equal(np.delete(got, [2, 3], 1), np.delete(ref, [2, 3], 1))
        assert np.allclose(got[:, 2:4], ref[:, 2:4], rtol=0, atol=1e-6)
        shuffled = rng.sample(pairs, len(pairs)) + pairs[:3]                # any order, a pair listed twice
        assert np.array_equal(np.delete(pair_features(boxes, shuffled, labels), [2, 3], 1),
                              np.delete(_pair_features_loop(boxes, shuffled, labels), [2, 3], 1))
    assert rule_questions([1], boxes, [], 10.0) == [None] and rule_questions([], boxes, [0], 10.0) == []
    assert pair_features(boxes, [], labels).shape == (0, len(SECTORS) + 11)
    # answer 9: questions 1 and 2 tie at distance 1 (the lower index first), a repeat of (3, 9) takes its later rank
    assert candidate_ranks([(3, 9), (2, 9), (1, 9), (4, 8), (3, 9)], [0.5, 1.0, 1.0, 2.0, 0.5]) == [1, 3, 2, 0, 1]
