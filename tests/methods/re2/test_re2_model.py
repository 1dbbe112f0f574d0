"""RE² network: shapes, losses, decoding, the ensemble, the shipped weights, the config schema."""
import math
import tomllib

import pytest
import torch

from conftest import REPO
from graphmie.data.funsd import gold_links, read_funsd
from graphmie.document import Box

EXAMPLE = REPO / "examples" / "forms"


def test_model_shapes_losses_and_decoding():
    from layout.graph import EDGE_DIM, GEO_DIM, build_layout_graph
    from layout.linking import PAIR_DIM
    from graphmie.methods.re2.model import FormRE2, constrained_decode, constraint_loss, listwise_loss

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
    # the training loss is the sum of its parts
    ent, lab = torch.randn(4, 4), torch.tensor([0, 1, 0, 1])
    z, y, ans = torch.tensor([1.0, -1.0, 0.5]), torch.tensor([1.0, 0.0, 0.0]), torch.tensor([1, 1, 3])
    total = net.loss(ent, lab, z, y, ans, constraint_weight=0.5, listwise_weight=0.0)
    ref = torch.nn.functional.cross_entropy(ent, lab) + torch.nn.functional.binary_cross_entropy_with_logits(
        z, y, pos_weight=torch.tensor(2.0)) + 0.5 * constraint_loss(z, ans)
    assert torch.allclose(total, ref)


def test_ensemble_averages_members_and_round_trips_its_state():
    from graphmie.methods.re2 import RE2
    from graphmie.methods.re2.data import make_graph
    from graphmie.methods.re2.evaluate import run_page
    from graphmie.methods.re2.features import Featurizer
    from graphmie.methods.re2.model import LABELS, Ensemble, build_network

    cfg = RE2.resolve_config({"model": {"hidden": 16, "heads": 2}})
    torch.manual_seed(0)
    members = [build_network(cfg).eval() for _ in range(3)]
    ens = Ensemble(members)
    state = ens.checkpoint_state()
    assert {k.split(".")[1] for k in state} == {"0", "1", "2"} and all(k.startswith("members.") for k in state)
    assert not any(k.startswith("members.") for k in Ensemble(members[:1]).checkpoint_state())  # one: plain keys
    again = Ensemble([build_network(cfg) for _ in range(3)])
    again.checkpoint_module().load_state_dict(state)
    again.eval()
    doc = read_funsd(EXAMPLE / "registration_form.json")
    data = make_graph(doc, Featurizer("static"), cfg["graph"])
    n = len(doc.entities)
    with torch.no_grad():
        probs = [torch.softmax(m.entity_logits(m.encode(data.x, data.geo, data.edge_index, data.edge_attr)[:n]), -1)
                 for m in members]
    mean = torch.stack(probs).mean(0)
    out = run_page(again, doc, data, cfg)
    assert out["labels"] == [LABELS[i] for i in mean.argmax(-1).tolist()]
    assert torch.allclose(torch.tensor(out["label_scores"]), mean.max(-1).values, atol=1e-5)


def test_shipped_weights_predict_the_example_json():
    from graphmie.tasks.form import FormTask

    task = FormTask.load(None)
    res = task.predict(read_funsd(EXAMPLE / "registration_form.json"), {"gold_labels": False})
    doc = res.doc
    assert all(r.provenance and r.provenance.model == "graphmie.form.re2" for r in doc.relations)
    assert all(e.provenance.score is not None for e in doc.entities)
    assert doc.meta["labels_from"] == "model" and doc.meta["layout_regions"] > 0
    assert res.artifacts["layout_graph"].n_entities == len(doc.entities)
    gold = gold_links(read_funsd(EXAMPLE / "registration_form.json"))
    pred = {(r.head, r.tail) for r in doc.relations}
    assert len(pred & gold) >= len(gold) // 2          # a clean printed form: most links found
    kept = task.predict(read_funsd(EXAMPLE / "registration_form.json"), {"gold_labels": True}).doc
    assert kept.meta["labels_from"] == "gold" and all(e.provenance.model == "gold" for e in kept.entities)


@pytest.mark.parametrize("name", ["form_re2", "form_re2_ablation", "form_re2_minilm"])
def test_configs_and_shipped_sidecars_fit_the_schema(name):
    from graphmie.engine.checkpoint import load_checkpoint
    from graphmie.methods.re2 import RE2

    cfg = RE2.resolve_config(tomllib.loads((REPO / "configs" / f"{name}.toml").read_text()))
    assert cfg["output"]["name"] == name
    ckpt = load_checkpoint(name, "form_re2", method="re2")
    assert ckpt.meta["members"] == 5 and ckpt.record["data"]["dev_ids"]
    assert {k: v for k, v in RE2.resolve_config(ckpt.config).items() if k != "output"} == \
        {k: v for k, v in cfg.items() if k not in ("output", "task", "method")}


def test_unknown_config_key_and_bad_features_are_coded():
    from graphmie.errors import GraphmieError
    from graphmie.methods.re2 import RE2
    from graphmie.methods.re2.features import Featurizer

    with pytest.raises(GraphmieError) as e:
        RE2.resolve_config({"training": {"epohcs": 3}})
    assert e.value.code == "E020" and "epochs" in str(e.value)
    with pytest.raises(GraphmieError) as e:
        Featurizer("bert")
    assert e.value.code == "E022"


def test_ink_features_equal_the_per_box_definition(tmp_path):
    """The ink cues of grey and colour pages, box by box as defined (boxes inside, across and
    outside the page, fractional and empty), and zeros without a readable picture."""
    import numpy as np
    from PIL import Image

    from graphmie.methods.re2.features import INK_DIM, ink_features

    def per_box(image, boxes):
        with Image.open(image) as im:
            g = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
        out = torch.zeros(len(boxes), INK_DIM)
        H, W = g.shape
        for i, b in enumerate(boxes):
            x0, y0 = max(int(b.x0), 0), max(int(b.y0), 0)
            x1, y1 = min(max(int(math.ceil(b.x1)), x0 + 1), W), min(max(int(math.ceil(b.y1)), y0 + 1), H)
            crop = g[y0:y1, x0:x1]
            if crop.size:
                out[i] = torch.tensor([float((crop < 0.5).mean()), float(1 - crop.mean()), float(crop.std()), 1.0])
        return out

    rng = np.random.default_rng(0)
    page = rng.integers(0, 256, size=(120, 90, 3), dtype=np.uint8)
    boxes = [Box(0, 0, 90, 120), Box(10.5, 20.2, 40.7, 31.1), Box(0, 0, 90, 3), Box(80, 110, 200, 300),
             Box(300, 300, 310, 310), Box(5, 5, 5, 5), Box(12, 40, 13, 41)]
    Image.fromarray(page[..., 0], "L").save(tmp_path / "grey.png")
    Image.fromarray(page, "RGB").save(tmp_path / "colour.png")
    for name in ("grey.png", "colour.png"):
        got = ink_features(str(tmp_path / name), boxes)
        assert got.dtype == torch.float32 and torch.equal(got, per_box(tmp_path / name, boxes))
    assert torch.equal(ink_features(str(tmp_path / "grey.png"), []), torch.zeros(0, INK_DIM))
    (tmp_path / "broken.png").write_bytes((tmp_path / "grey.png").read_bytes()[:200])
    assert torch.equal(ink_features(str(tmp_path / "broken.png"), boxes), torch.zeros(len(boxes), INK_DIM))
    assert torch.equal(ink_features(None, boxes), torch.zeros(len(boxes), INK_DIM))
