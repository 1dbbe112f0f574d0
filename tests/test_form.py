"""Form relation extraction: reader, metric, baseline rule, model shapes, CLI, bad input."""
import json
import math
from pathlib import Path

import pytest
import torch

from graphmie.data.funsd import dev_split, gold_links, read_funsd
from graphmie.document import Box
from graphmie.errors import GraphmieError
from graphmie.evaluation.form import end_to_end, entity_prf, match_boxes
from graphmie.evaluation.prf import PRF

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "forms"


def _ent(i, box, text, label, linking=()):
    return {"id": i, "box": box, "text": text, "label": label, "linking": [list(p) for p in linking],
            "words": [{"box": box, "text": w} for w in text.split()[:1]]}


def tiny_form():
    return {"form": [
        _ent(0, [10, 10, 100, 30], "HEADER", "header", [(0, 1)]),
        _ent(1, [10, 50, 60, 70], "Name:", "question", [(0, 1), (1, 2)]),
        _ent(2, [80, 50, 200, 70], "Ann Lee", "answer", [(1, 2)]),
        _ent(3, [10, 90, 60, 110], "Date:", "question", [(4, 3)]),     # listed answer-first
        _ent(4, [80, 90, 200, 110], "1/2/99", "answer", [(4, 3), (3, 4)]),
        _ent(5, [10, 130, 60, 150], "Fax", "question"),
        _ent(6, [10, 160, 60, 180], "555-1234", "answer"),
    ]}


def write(tmp_path, obj, name="f.json"):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


def test_reader_orients_links_and_drops_header_links(tmp_path):
    doc = read_funsd(write(tmp_path, tiny_form()))
    assert doc.kind == "form" and len(doc.entities) == 7
    assert gold_links(doc) == {("e1", "e2"), ("e3", "e4")}
    assert doc.meta["read_stats"]["other_links"] == 1
    assert all(r.provenance.model == "gold" for r in doc.relations)


@pytest.mark.parametrize("content,code", [
    ("{not json", "E003"), ('{"form": [', "E003"), ('{"forms": []}', "E004"),
    ('{"form": [{"id": 0, "label": "question"}]}', "E004"),
    ('{"form": [{"id": 0, "box": [0, 0, 1, 1], "label": "key"}]}', "E013"),
    ('{"form": [{"id": 0, "box": [0, "x", 1, 1], "label": "other"}]}', "E004"), ("", "E007")])
def test_reader_bad_input(tmp_path, content, code):
    with pytest.raises(GraphmieError) as e:
        read_funsd(write(tmp_path, content))
    assert e.value.code == code and "f.json" in str(e.value)


def test_dev_split_is_fixed():
    ids = [f"{i:04d}" for i in range(149)]
    tr, dv = dev_split(ids)
    assert len(dv) == 30 and len(tr) == 119 and not set(tr) & set(dv)
    assert dev_split(list(reversed(ids))) == (tr, dv)


def test_metrics_on_hand_made_cases():
    p = PRF().update({(1, 2), (3, 4), (5, 6)}, {(1, 2), (3, 4), (7, 8), (9, 10)})
    assert (p.tp, p.fp, p.fn) == (2, 1, 2) and math.isclose(p.f1, 2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    e = entity_prf({"a": "question", "b": "other", "c": "header"}, {"a": "question", "b": "answer", "c": "other"})
    assert (e.tp, e.fp, e.fn) == (1, 1, 1)          # "other" is background, not scored
    gold = {"g1": Box(0, 0, 10, 10), "g2": Box(20, 0, 30, 10), "g3": Box(0, 20, 10, 30)}
    pred = {"p1": Box(0, 0, 11, 10), "p2": Box(21, 0, 30, 10), "p3": Box(100, 100, 110, 110)}
    assert match_boxes(pred, gold) == {"p1": "g1", "p2": "g2"}
    links, ents = end_to_end(pred, {"p1": "question", "p2": "answer", "p3": "answer"}, {("p1", "p2"), ("p1", "p3")},
                             gold, {"g1": "question", "g2": "answer", "g3": "answer"}, {("g1", "g2"), ("g1", "g3")})
    assert (links.tp, links.fp, links.fn) == (1, 1, 1)
    assert (ents.tp, ents.fp, ents.fn) == (2, 1, 1)


def test_baseline_rule():
    from layout.linking import candidates, rule_links

    doc = read_funsd(write_tmp(tiny_form()))
    boxes, labels = [e.box for e in doc.entities], [e.label for e in doc.entities]
    # Name:->Ann Lee and Date:->1/2/99 on their lines; 555-1234 takes Fax just above it
    assert rule_links(boxes, labels) == {(1, 2), (3, 4), (5, 6)}
    cands = candidates(boxes, labels, k=2)
    assert all(labels[q] == "question" and labels[a] == "answer" for q, a in cands)
    assert {(1, 2), (3, 4), (5, 6)} <= set(cands)


def write_tmp(obj, _n=[0]):
    import tempfile

    d = Path(tempfile.mkdtemp())
    p = d / "t.json"
    p.write_text(json.dumps(obj))
    return p


def test_model_shapes_losses_and_decoding():
    from layout.graph import EDGE_DIM, GEO_DIM, build_layout_graph
    from layout.linking import PAIR_DIM
    from graphmie.nn.form_re2 import FormRE2, constrained_decode, constraint_loss, listwise_loss

    boxes = [Box(0, 0, 50, 10), Box(60, 0, 120, 10), Box(0, 40, 50, 50), Box(60, 40, 90, 50)]
    g = build_layout_graph(boxes, 200, 100, torch.randn(4, 398), k=3)
    net = FormRE2(in_dim=398, geo_dim=GEO_DIM, edge_dim=EDGE_DIM, pair_dim=PAIR_DIM, hidden=32, heads=4)
    h = net.encode(g.x, g.geo, g.edge_index, g.edge_attr)
    assert h.shape == (g.num_nodes, 32) and g.num_nodes > 4
    assert net.entity_logits(h[:4]).shape == (4, 4)
    pairs = torch.tensor([[0, 1], [2, 1], [2, 3]])
    assert net.link_logits(h, pairs, torch.zeros(3, PAIR_DIM)).shape == (3,)
    # constraint: answer 1 has p = 0.9 + 0.8 -> 0.7 over the limit; answer 3 is fine; averaged over 2 answers
    logit = lambda p: math.log(p / (1 - p))
    c = constraint_loss(torch.tensor([logit(0.9), logit(0.8), logit(0.3)]), torch.tensor([1, 1, 3]))
    assert math.isclose(float(c), 0.35, abs_tol=1e-5)
    lw = listwise_loss(torch.tensor([0.0, 0.0]), torch.tensor([1, 1]), torch.tensor([1.0, 0.0]))
    assert math.isclose(float(lw), math.log(3), abs_tol=1e-5)
    dec = constrained_decode([(0, 1), (2, 1), (2, 3)], [0.9, 0.8, 0.3], 0.5, 0.95)
    assert [(q, a) for q, a, _ in dec] == [(0, 1)]
    dec = constrained_decode([(0, 1), (2, 1), (2, 3)], [0.9, 0.8, 0.3], 0.5, 0.95, constrained=False)
    assert sorted((q, a) for q, a, _ in dec) == [(0, 1), (2, 1)]


def test_ensemble_averages_members_and_round_trips_its_state():
    import copy

    from graphmie.data.funsd import read_funsd
    from graphmie.tasks.form import DEFAULT_CONFIG, FormModel, LABELS, Featurizer, make_graph

    cfg = copy.deepcopy(DEFAULT_CONFIG)
    cfg["model"].update(hidden=16, heads=2)
    torch.manual_seed(0)
    members = [FormModel(cfg) for _ in range(3)]
    ens = FormModel.ensemble(members)
    state = ens.state_dict()
    assert {k.split(".")[1] for k in state} == {"0", "1", "2"} and all(k.startswith("members.") for k in state)
    assert not any(k.startswith("members.") for k in members[0].state_dict())      # one model: plain keys
    again = FormModel(cfg, state)
    assert len(again.nets) == 3
    doc = read_funsd(EXAMPLE / "registration_form.json")
    feats = Featurizer(text="static")
    data = make_graph(doc, feats, cfg["graph"])
    n = len(doc.entities)
    with torch.no_grad():
        probs = [torch.softmax(m.net.entity_logits(m.net.encode(data.x, data.geo, data.edge_index,
                                                                  data.edge_attr)[:n]), -1) for m in members]
    mean = torch.stack(probs).mean(0)
    out = again.run(doc, feats, data=data)
    assert out["labels"] == [LABELS[i] for i in mean.argmax(-1).tolist()]
    assert torch.allclose(torch.tensor(out["label_scores"]), mean.max(-1).values, atol=1e-5)


def test_shipped_weights_predict_the_example_json():
    from graphmie.tasks.form import FormTask

    task = FormTask()
    task.load(None)
    doc = task.predict(read_funsd(EXAMPLE / "registration_form.json"))
    assert all(r.provenance and r.provenance.model == "graphmie.form.re2" for r in doc.relations)
    assert all(e.provenance.score is not None for e in doc.entities)
    gold = gold_links(read_funsd(EXAMPLE / "registration_form.json"))
    pred = {(r.head, r.tail) for r in doc.relations}
    assert len(pred & gold) >= len(gold) // 2          # a clean printed form: most links found


def test_cli_extract_end_to_end_with_bad_inputs(tmp_path):
    from PIL import Image

    from graphmie.cli import main

    ok_json = EXAMPLE / "registration_form.json"
    ok_png = EXAMPLE / "registration_form.png"
    missing = tmp_path / "missing.png"
    notimg = write(tmp_path, "this is not a png", "notimage.png")
    broken = write(tmp_path, '{"form": [{"id": 0, "box": [1, 2', "broken.json")
    partial = write(tmp_path, '{"form": [{"id": 0, "text": "x"}]}', "partial.json")
    empty = tmp_path / "empty.png"
    Image.new("RGB", (300, 200), "white").save(empty)
    huge = tmp_path / "huge.png"
    Image.new("1", (9000, 9000)).save(huge)
    other = write(tmp_path, "a,b\n", "table.csv")
    out = tmp_path / "out"
    rc = main(["extract", str(ok_json), str(ok_png), str(missing), str(notimg), str(broken), str(partial),
               str(empty), str(huge), str(other), "--task", "form", "--out", str(out), "--quiet"])
    assert rc == 1
    report = json.loads((out / "report.json").read_text())
    assert report["ok"] == 2 and report["failed"] == 7
    codes = {Path(e["input"]).name: e["code"] for e in report["errors"]}
    assert codes == {"missing.png": "E001", "notimage.png": "E005", "broken.json": "E003", "partial.json": "E004",
                     "empty.png": "E007", "huge.png": "E006", "table.csv": "E008"}
    for e in report["errors"]:
        assert Path(e["input"]).name in e["error"]
    names = sorted(p.name for p in out.iterdir())
    for suffix in (".json", ".ttl", ".cypher", ".png"):
        assert "registration_form" + suffix in names
    assert not [n for n in names if n.startswith(("missing", "notimage", "broken", "partial", "empty", "huge",
                                                   "table", "."))]
    res = json.loads((out / "registration_form.json").read_text())
    assert res["relations"] and all(r["label"] == "question->answer" for r in res["relations"])
    assert Image.open(out / "registration_form.png").size[0] > 100


def test_tesseract_ocr_path_links_the_example_form(tmp_path):
    import shutil

    pytest.importorskip("pytesseract", reason="pytesseract not installed (pip install 'graphmie[tesseract]')")
    if shutil.which("tesseract") is None:
        pytest.skip("the tesseract binary is not installed (apt-get install tesseract-ocr)")
    from graphmie.cli import main

    out = tmp_path / "out"
    assert main(["extract", str(EXAMPLE / "registration_form.png"), "--task", "form", "--ocr", "tesseract",
                 "--out", str(out), "--quiet"]) == 0
    doc = json.loads((out / "registration_form.json").read_text())
    text = {e["id"]: e["text"] for e in doc["entities"]}
    links = {(text[r["head"]], text[r["tail"]]) for r in doc["relations"]}
    assert ("Full name:", "Maria Jensen") in links and ("Date of birth:", "14 March 1988") in links
    assert len(links) >= 8
