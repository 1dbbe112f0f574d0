"""Scene-graph construction on hand-written sentences and boxes: exact nodes and edges."""
import pytest
import torch

from scene_graphs.crossmodal import EDGE_TYPES, fuse, to_tensors
from scene_graphs.textual import build_textual_graph
from scene_graphs.visual import build_visual_graph, parse_detections, regions_from_detections, spatial_relation
from graphmie.engine.embedder import get_static_embedder
from graphmie.errors import GraphmieError


def nodes(g):
    return [(n.id, n.kind, n.text) for n in g.nodes]


def test_textual_objects_attributes_relations():
    g = build_textual_graph("Two dogs are sleeping near 3 old cars")
    assert nodes(g) == [("o0", "object", "dogs"), ("o1", "object", "cars"), ("a0", "attribute", "Two"),
                        ("a1", "attribute", "3"), ("a2", "attribute", "old"), ("r0", "relation", "sleeping near")]
    assert g.edges == [("o0", "a0", "attr"), ("o1", "a1", "attr"), ("o1", "a2", "attr"),
                       ("o0", "r0", "subj"), ("r0", "o1", "obj")]


def test_textual_named_entities_and_prepositions():
    g = build_textual_graph("A young man in a red shirt plays guitar on the stage with Taylor Swift .")
    objs = {n.text: n for n in g.by_kind("object")}
    assert set(objs) == {"Taylor Swift", "man", "shirt", "guitar", "stage"}
    assert objs["Taylor Swift"].label == "PERSON"
    assert {("man", "attr", "young"), ("shirt", "attr", "red"), ("man", "subj", "in"), ("in", "obj", "shirt"),
            ("man", "subj", "plays"), ("plays", "obj", "guitar"), ("plays on", "obj", "stage")} <= g.triples()


def test_predicate_adjective_and_forced_entity():
    g = build_textual_graph("The car is red")
    assert g.triples() == {("car", "attr", "red")}
    # a forced entity span (e.g. the relation's head) always becomes an object node
    g = build_textual_graph("RT @ThePhotoHour : lovely sunset", entities=[(3, 16)])
    assert any(n.kind == "object" and n.text == "@ThePhotoHour" for n in g.nodes)


def test_spatial_relations():
    assert spatial_relation([0, 0, .5, .5], [.1, .1, .3, .3]) == ("contains", True)
    assert spatial_relation([.1, .1, .3, .3], [0, 0, .5, .5]) == ("contains", False)
    assert spatial_relation([0, 0, .4, .4], [.2, .2, .6, .6]) == ("overlaps", True)
    assert spatial_relation([0, 0, .2, .2], [.25, 0, .45, .2]) == ("near", True)
    assert spatial_relation([0, 0, .2, .2], [.6, .1, .8, .3]) == ("left of", True)
    assert spatial_relation([.6, .1, .8, .3], [0, 0, .2, .2]) == ("left of", False)
    assert spatial_relation([0, .7, .2, .9], [.1, 0, .3, .2]) == ("above", False)


def test_visual_graph_with_caption():
    cap = build_textual_graph("A dog on a red car", source="caption")
    g = build_visual_graph([[0, 0, .5, .5], [.1, .1, .3, .3], [.8, .1, .95, .3], [.1, .8, .3, .95]], caption_graph=cap)
    assert nodes(g) == [("img", "image", "image"), ("reg0", "region", "region 0"), ("reg1", "region", "region 1"),
                        ("reg2", "region", "region 2"), ("reg3", "region", "region 3"), ("cap:o0", "object", "dog"),
                        ("cap:o1", "object", "car"), ("cap:a0", "attribute", "red"), ("cap:r0", "relation", "on")]
    assert g.edges == [("img", "reg0", "has_region"), ("img", "reg1", "has_region"), ("img", "reg2", "has_region"),
                       ("img", "reg3", "has_region"), ("reg0", "reg1", "contains"), ("reg0", "reg2", "left of"),
                       ("reg0", "reg3", "above"), ("reg1", "reg2", "left of"), ("reg1", "reg3", "above"),
                       ("reg3", "reg2", "left of"), ("cap:o1", "cap:a0", "attr"), ("cap:o0", "cap:r0", "subj"),
                       ("cap:r0", "cap:o1", "obj"), ("img", "cap:o0", "depicts"), ("img", "cap:o1", "depicts")]


def test_crossmodal_fusion_and_tensors():
    tsg = build_textual_graph("Two dogs are sleeping near 3 old cars")
    vsg = build_visual_graph([[0, 0, .5, .5], [.6, .6, .9, .9]],
                             caption_graph=build_textual_graph("A dog on a red car", source="caption"))
    embed = get_static_embedder(16)
    g = fuse(tsg, vsg, head_span=(0, 8), tail_span=(32, 37), embed=embed)
    cross = {e for e in g.edges if e[2] in ("similar", "in_post", "may_depict")}
    assert cross == {("t:o0", "v:cap:o0", "similar"), ("t:o1", "v:cap:o1", "similar"),
                     ("t:o0", "v:img", "in_post"), ("t:o1", "v:img", "in_post"),
                     ("t:o0", "v:reg0", "may_depict"), ("t:o0", "v:reg1", "may_depict"),
                     ("t:o1", "v:reg0", "may_depict"), ("t:o1", "v:reg1", "may_depict")}
    assert g.roles == {"t:o0": {"head"}, "t:o1": {"tail"}}
    t = to_tensors(g, embed)
    assert t["edge_index"].shape[1] == 2 * len(g.edges) == t["edge_type"].numel()
    assert int(t["edge_type"].max()) < 2 * len(EDGE_TYPES)
    assert t["role"].sum(0).tolist() == [1.0, 1.0]
    # text only: no visual nodes, no cross-modal edges
    assert len(fuse(tsg, None, embed=embed).nodes) == len(tsg.nodes)
    # image and region nodes carry no phrase vector; text nodes a unit one
    visual = [n.kind in ("image", "region") for n in g.nodes]
    norms = t["emb"].float().norm(dim=-1)
    assert all((float(v) == 0) if is_vis else abs(float(v) - 1) < 1e-2 for v, is_vis in zip(norms, visual))


def test_fuse_uses_the_callers_embedder():
    tsg = build_textual_graph("Two dogs are sleeping near 3 old cars")
    vsg = build_visual_graph([], caption_graph=build_textual_graph("A dog on a red car", source="caption"))
    ones = lambda phrases: torch.nn.functional.normalize(torch.ones(len(phrases), 4), dim=-1)
    g = fuse(tsg, vsg, embed=ones, threshold=0.99)      # every phrase alike: every text/caption pair similar
    similar = [e for e in g.edges if e[2] == "similar"]
    assert len(similar) == 5 * 3
    assert to_tensors(g, ones)["emb"].shape == (len(g.nodes), 4)


def test_detections_formats():
    boxes, _ = regions_from_detections({"abc_crop_1.jpg": [0.5, 0.5, 0.2, 0.2, 0.04],
                                        "abc_crop_0.jpg": [0.25, 0.25, 0.5, 0.5, 0.25],
                                        "zzz_crop_0.jpg": [0.5, 0.5, 1, 1, 1]}, "abc")
    assert boxes == [[0.0, 0.0, 0.5, 0.5], pytest.approx([0.4, 0.4, 0.6, 0.6])]
    boxes, labels = regions_from_detections([{"box": [10, 20, 50, 60], "label": "dog"}], image_size=(100, 200))
    assert boxes == [[0.1, 0.1, 0.5, 0.3]] and labels == ["dog"]
    with pytest.raises(GraphmieError, match="E004"):
        regions_from_detections([{"box": [1, 2]}])
    with pytest.raises(GraphmieError, match="E009"):
        regions_from_detections([{"box": [0.5, 0.5, 0.1, 0.1]}])


def test_parse_detections_mnre_format():
    d = parse_detections({"x_crop_1.jpg": [0.5, 0.5, 0.2, 0.2, 0.04], "x_crop_0.jpg": [0.1, 0.1, 0.2, 0.4],
                          "y_z_crop_0.png": [0.5, 0.5, 1, 1, 1]}, "f.json")
    assert d == {"x": [[0.1, 0.1, 0.2, 0.4, pytest.approx(0.08)], [0.5, 0.5, 0.2, 0.2, 0.04]],
                 "y_z": [[0.5, 0.5, 1.0, 1.0, 1.0]]}
    for bad in ({"x.jpg": [0.5, 0.5, 0.2, 0.2]}, {"x_crop_0.jpg": [0.5, 0.5]}, {"x_crop_0.jpg": ["a", 0, 0, 0]}):
        with pytest.raises(GraphmieError, match="E004"):
            parse_detections(bad, "f.json")


def test_detections_non_finite_refused_outside_clipped_or_dropped():
    with pytest.raises(GraphmieError, match="E009"):
        regions_from_detections([{"box": [float("nan"), 0, 0.5, 0.5]}])
    with pytest.raises(GraphmieError, match="E009"):
        regions_from_detections({"a_crop_0.jpg": [0.5, float("inf"), 0.1, 0.1]})
    with pytest.raises(GraphmieError, match="E004"):
        regions_from_detections([{"box": [True, 0, 0.5, 0.5]}])
    stats = {}
    boxes, labels = regions_from_detections([{"box": [2, 2, 20, 20], "label": 3}, {"box": [50, 50, 60, 60]},
                                             {"box": [30, 10, 50, 20], "label": "cup"}], image_size=(40, 30),
                                            stats=stats)
    assert boxes == [[0.05, 2 / 30, 0.5, 20 / 30], [0.75, 10 / 30, 1.0, 20 / 30]] and labels == [None, "cup"]
    assert stats == {"outside_image": 1, "clipped": 1}


def test_big_graph_drawn_summarised():
    from scene_graphs.crossmodal import drawn_part
    from scene_graphs.graph import Node, SceneGraph

    g = SceneGraph()
    for i in range(100):
        g.add_node(Node(f"t:{i}", "object", f"w{i}"))
        if i:
            g.add_edge(f"t:{i - 1}", f"t:{i}", "mod")
    g.roles = {"t:50": {"head"}}
    part, note = drawn_part(g, 10)
    assert len(part.nodes) == 10 and "t:50" in {n.id for n in part.nodes} and "10 of 100" in note
    assert drawn_part(g, 100) == (g, None)
