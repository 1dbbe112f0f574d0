"""The grounding service (graphmie.grounding): proposer candidates, given Region / Box lists, no image."""
import numpy as np
import pytest
from PIL import Image

from graphmie.document import Box, Document, Entity


# --- proposer --------------------------------------------------------------------------------
def _rect_image():
    rng = np.random.default_rng(0)
    a = np.full((300, 400, 3), 120, np.uint8) + rng.integers(0, 8, (300, 400, 3)).astype(np.uint8)
    gt = [Box(30, 40, 130, 200), Box(200, 50, 360, 120), Box(220, 180, 330, 280)]
    for b, c in zip(gt, [(220, 30, 30), (30, 200, 40), (20, 40, 210)]):
        a[int(b.y0):int(b.y1), int(b.x0):int(b.x1)] = c
    return Image.fromarray(a), gt


def test_proposer_finds_known_rectangles():
    from scene_graphs.proposals import propose_regions

    im, gt = _rect_image()
    props = propose_regions(im, max_regions=10)
    assert 1 <= len(props) <= 10
    assert all(0 <= b.x0 <= b.x1 <= 400 and 0 <= b.y0 <= b.y1 <= 300 for b in props)
    for g in gt:
        assert max(g.iou(p) for p in props) >= 0.8
    assert props[-1].to_list() == [0, 0, 400, 300]                   # whole image always a candidate
    assert [b.to_list() for b in propose_regions(im, max_regions=10)] == [b.to_list() for b in props]
    flat = Image.new("RGB", (64, 48), (10, 10, 10))
    assert propose_regions(flat)[-1].to_list() == [0, 0, 64, 48]


# --- ground_entities -------------------------------------------------------------------------
def test_ground_entities_with_regions_and_without_image(tmp_path):
    from graphmie.grounding import ground_entities

    im, gt = _rect_image()
    p = tmp_path / "rects.png"
    im.save(p)
    doc = Document("d", "post", str(p), text="Obama in Paris", image=str(p))
    doc.entities = [Entity("e0", "Obama", "PER", span=(0, 5)), Entity("e1", "Paris", "LOC", span=(9, 14))]
    gs = ground_entities(doc, str(p), ground_probs={"e0": 0.9, "e1": 0.1})
    assert [g.entity for g in gs] == ["e0", "e1"]
    assert gs[0].region is not None and gs[0].box is not None and gs[1].region is None
    assert gs[0].region in {r.id for r in doc.regions}
    assert gs[0].provenance.model == "graphmie.entity.grounding_head" and gs[0].provenance.box == gs[0].box
    # given candidate boxes (e.g. procedure-step detections)
    doc2 = Document("d2", "procedure", "x", text="cut the onion")
    doc2.entities = [Entity("e0", "onion", "OTHER")]
    g2 = ground_entities(doc2, gt, ground_probs={"e0": 1.0})
    assert g2[0].box in gt
    # no image: nothing is grounded
    doc3 = Document("d3", "post", "x", text="Obama")
    doc3.entities = [Entity("e0", "Obama", "PER")]
    assert ground_entities(doc3, None)[0].region is None


# --- Grounder.ground with given candidates, and with no image ---------------------------------
def _object_image(colour):
    rng = np.random.default_rng(0)
    a = np.full((120, 160, 3), 200, np.uint8)
    a[20:80, 30:90] = rng.integers(0, 255, (60, 60, 3))          # the same textured object in every image
    a[90:110, 100:150] = colour
    return Image.fromarray(a)


def test_ground_with_given_regions_keeps_them_and_records_provenance(tmp_path):
    from graphmie.document import Provenance, Region
    from graphmie.grounding import get_grounder

    im, gt = _rect_image()
    p = tmp_path / "step.png"
    im.save(p)
    regs = [Region(f"det{i}", b, "object", image=str(p), provenance=Provenance("x", box=b, model="detector"))
            for i, b in enumerate(gt)]
    doc = Document("d", "procedure", "x", text="cut the onion")
    doc.entities = [Entity("e0", "onion", "OTHER", step=2), Entity("e1", "knife", "OTHER", step=2)]
    grounder = get_grounder()
    gs = grounder.ground(doc, regs, ground_probs={"e0": 1.0, "e1": 0.0})
    assert [g.entity for g in gs] == ["e0", "e1"] and doc.groundings == gs
    assert gs[0].region in {"det0", "det1", "det2"} and gs[0].image == str(p) and gs[0].box in gt
    assert gs[1].region is None and gs[1].provenance.score == 1.0        # p = 0: surely not in the image
    assert gs[0].provenance.page == 2 and gs[0].provenance.model_version == grounder.method.version
    assert doc.regions == regs                                           # appended once, ids kept
    grounder.ground(doc, regs, entities=doc.entities[:1], ground_probs={"e0": 1.0})
    assert doc.regions == regs and len(doc.groundings) == 3


def test_ground_with_given_boxes_and_the_heads_own_groundability():
    from graphmie.grounding import Grounder, get_grounder

    doc = Document("d", "procedure", "x", text="cut the onion")
    doc.entities = [Entity("e0", "onion", "OTHER")]
    boxes = [Box(0, 0, 50, 40), Box(60, 10, 200, 100)]
    regs, image, size = Grounder.candidate_regions(doc, boxes)
    assert [r.id for r in regs] == ["r0", "r1"] and image is None and size == (200, 100)
    assert [r.provenance.model for r in doc.regions] == ["given", "given"]
    g = get_grounder().ground(doc, boxes, threshold=0.0)[0]             # no ground_probs: the head decides
    assert g.box in boxes and 0.0 <= g.provenance.score <= 1.0
    assert get_grounder().ground(doc, boxes, threshold=1.01)[0].region is None


def test_ground_without_image_grounds_nothing():
    from graphmie.grounding import get_grounder

    doc = Document("d", "post", "x", text="Obama in Paris")
    doc.entities = [Entity("e0", "Obama", "PER"), Entity("e1", "Paris", "LOC")]
    for candidates in (None, []):
        gs = get_grounder().ground(doc, candidates, ground_probs={"e0": 0.9})
        assert [g.region for g in gs] == [None, None] and [g.image for g in gs] == [None, None]
        assert gs[0].provenance.score == pytest.approx(0.1)             # 1 - the given groundability
    assert not doc.regions
    assert get_grounder().ground(doc, [], entities=[]) == []


def test_grounded_regions_link_to_other_images_each_on_its_own_image(tmp_path):
    from graphmie.document import Grounding
    from graphmie.encoders.image import get_image_encoder
    from graphmie.grounding import link_regions
    from graphmie.retrieval.index import RegionIndex

    paths, vecs, meta = [], [], []
    obj = Box(30, 20, 90, 80)
    for i, colour in enumerate([(255, 0, 0), (0, 0, 255), (0, 255, 0)]):
        p = tmp_path / f"im{i}.png"
        _object_image(colour).save(p)
        paths.append(str(p))
        vecs.append(get_image_encoder().encode(Image.open(p), [obj]).numpy()[0])
        meta.append({"image": str(p), "box": obj.to_list()})
    idx = RegionIndex.build(np.stack(vecs), meta, kind="flat")
    doc = Document("d", "procedure", "x", text="")
    gs = [Grounding("e0", "r0", box=obj, image=paths[0]), Grounding("e1", "r1", box=obj, image=paths[1]),
          Grounding("e2", None)]
    link_regions(doc, gs, idx, k=2)
    links = doc.meta["region_links"]
    assert set(links) == {"e0", "e1"}
    assert {m["image"] for m in links["e0"]} == {paths[1], paths[2]}
    assert {m["image"] for m in links["e1"]} == {paths[0], paths[2]}
    assert all(m["score"] > 0.9 for m in links["e0"])                 # the same object, another image
