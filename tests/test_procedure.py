"""Procedure task: wikiHow-FG reader, procedure JSON, step graph, sequential attention, metric,
extraction, bad input, and a short training with a real floor."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from conftest import REPO, shared
from graphmie.data.wikihow_fg import FLOW_LABELS, decode_bio, read_article, read_folder
from graphmie.document import Document, Entity, Relation
from graphmie.errors import GraphmieError
from graphmie.evaluation.procedure import entity_facts, flow_facts, score
from graphmie.nn.seq_attention import SequentialElementAttention, previous_step_mask
from graphmie.nn.seqgmper import build_step_graph, candidate_pairs

FIXTURE = REPO / "tests" / "fixtures" / "wikihow_fg"
ONION = FIXTURE / "domain" / "onion.json"
EXAMPLE = REPO / "examples" / "procedures" / "fried_egg.json"


def _article(tmp_path, steps, flows, name="a.json"):
    d = {"article_id": "x", "steps": [[{"token_id": i, "token": w, "ne_tag": t} for i, w, t in s] for s in steps],
         "flows": flows}
    p = tmp_path / name
    p.write_text(json.dumps(d))
    return p


# ---------------------------------------------------------------- reader
def test_reader_fixture_exact():
    doc = read_article(ONION)
    assert doc.kind == "procedure" and doc.id == "1_chop-and-fry-an-onion"
    assert [s.text for s in doc.steps] == ["Chop the red onion with a knife .", "Fry it for 5 minutes ."]
    assert len(doc.tokens) == 14 and doc.tokens[2].span == (9, 12) and doc.tokens[8].step == 1
    assert [(e.step, e.text, e.label) for e in doc.entities] == [
        (0, "Chop", "Ae"), (0, "red onion", "I"), (0, "knife", "T"), (1, "Fry", "Ae"), (1, "it", "I"),
        (1, "5 minutes", "D")]
    assert all(e.provenance.model == "gold" for e in doc.entities)
    rel = {(doc.entity(r.head).text, doc.entity(r.tail).text, r.label) for r in doc.relations}
    assert rel == {("red onion", "Chop", "Targ"), ("knife", "Chop", "T-comp"), ("Chop", "it", "I-eq"),
                   ("it", "Fry", "Targ"), ("5 minutes", "Fry", "V-tm")}
    assert doc.meta["read_stats"] == {}


def test_reader_shared_corpus():
    data = shared("wikihow_fg", "data")
    docs = read_folder(data)
    assert len(docs) == 96
    assert sum(len(d.steps) for d in docs) == 666
    assert sum(len(d.relations) for d in docs) == 2918          # every released flow becomes a relation
    assert {r.label for d in docs for r in d.relations} == set(FLOW_LABELS)
    assert sum(len(d.entities) for d in docs) == 4880


def test_decode_bio_orphan_inside():
    spans, orphans = decode_bio(["B-I", "I-I", "O", "I-T", "I-T", "B-Ae", "I-I"])
    assert spans == [(0, 2, "I"), (3, 5, "T"), (5, 6, "Ae"), (6, 7, "I")] and orphans == 2


# ---------------------------------------------------------------- bad input
def test_steps_out_of_order(tmp_path):
    p = _article(tmp_path, [[("1-0-0", "Fry", "Ae-B")], [("0-0-0", "Chop", "Ae-B")]], [])
    with pytest.raises(GraphmieError) as e:
        read_article(p)
    assert e.value.code == "E012" and "out of order" in str(e.value) and "a.json" in str(e.value)


def test_dangling_untagged_inside_and_empty(tmp_path):
    p = _article(tmp_path, [[("0-0-0", "Chop", "Ae-B"), ("0-0-1", "red", "I-B"), ("0-0-2", "onion", "I-I"),
                             ("0-0-3", ".", "O")], []],
                 [["0-0-1", "0-0-0", "Targ"], ["0-0-2", "0-0-0", "Targ"], ["0-0-9", "0-0-0", "Targ"],
                  ["0-0-3", "0-0-0", "Dest"]])
    doc = read_article(p)
    st = doc.meta["read_stats"]
    assert st["empty_steps"] == 1 and len(doc.steps) == 2 and doc.steps[1].text == ""
    assert st["dangling_flows"] == 1 and st["flows_on_untagged"] == 1
    assert st["flows_remapped"] == 1 and st["duplicate_flows"] == 1     # 0-0-2 lies inside "red onion"
    assert len(doc.relations) == 1
    reasons = [s["reason"] for s in doc.meta["skipped_flows"]]
    assert any("0-0-9 does not exist" in r for r in reasons) and any("not inside an entity" in r for r in reasons)


@pytest.mark.parametrize("steps,flows,code", [
    ([[("0-0-0", "Chop", "Zz-B")]], [], "E013"),
    ([[("0-0-0", "Chop", "Ae-B")]], [["0-0-0", "0-0-0", "Nope"]], "E013"),
    ([[("0-0-0", "Chop", "Ae-B"), ("0-0-0", "it", "I-B")]], [], "E012"),
    ([[("0-0-1", "Chop", "Ae-B"), ("0-0-0", "it", "I-B")]], [], "E012"),
    ([[("zero", "Chop", "Ae-B")]], [], "E004"),
])
def test_bad_articles(tmp_path, steps, flows, code):
    with pytest.raises(GraphmieError) as e:
        read_article(_article(tmp_path, steps, flows))
    assert e.value.code == code


def test_read_folder_collects_errors(tmp_path):
    _article(tmp_path, [[("0-0-0", "Chop", "Ae-B")]], [], "good.json")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.json").write_text("{not json")
    errors = []
    docs = read_folder(tmp_path, errors)
    assert len(docs) == 1 and len(errors) == 1 and "E003" in errors[0] and "bad.json" in errors[0]


def test_procedure_json_bad_input(tmp_path):
    from graphmie.tasks.procedure import read_procedure

    def write(obj):
        p = tmp_path / "p.json"
        p.write_text(json.dumps(obj))
        return p

    with pytest.raises(GraphmieError) as e:
        read_procedure(write({"steps": [{"index": 2, "text": "b"}, {"index": 1, "text": "a"}]}))
    assert e.value.code == "E012"
    with pytest.raises(GraphmieError) as e:
        read_procedure(write({"steps": [{"text": "a"}, {"text": "  "}]}))
    assert e.value.code == "E007" and "step 1" in str(e.value)
    with pytest.raises(GraphmieError) as e:
        read_procedure(write({"steps": [{"text": "a", "image": "nope.png"}]}))
    assert e.value.code == "E001" and "nope.png" in str(e.value)
    doc = read_procedure(write({"steps": [{"text": "Cut it.", "image": "nope.png"}]}), missing_images="ignore")
    assert doc.steps[0].image is None and doc.meta["missing_images"][0]["image"] == "nope.png"
    doc = read_procedure(write({"title": "t", "steps": ["Cut the bread.", {"index": 1, "text": "x"}][:1]}))
    assert [t.text for t in doc.tokens] == ["Cut", "the", "bread", "."] and doc.tokens[2].span == (8, 13)


# ---------------------------------------------------------------- step graph
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


def test_candidate_pairs_forward_only():
    assert candidate_pairs([0, 0, 1, 4], max_gap=2) == [(0, 1), (0, 2), (1, 0), (1, 2)]


# ---------------------------------------------------------------- sequential attention
def test_seq_attention_shapes_and_mask():
    torch.manual_seed(0)
    layer = SequentialElementAttention(16, heads=4, dropout=0.0).eval()
    step = torch.tensor([0, 0, 1, 1, 1, 2, 0, 1])
    batch = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1])
    x = torch.randn(8, 16)
    y, att = layer(x, step, batch, return_attention=True)
    assert y.shape == (8, 16) and att.shape == (4, 8, 8)
    mask = previous_step_mask(step, batch)
    assert torch.all(att[:, ~mask] == 0)                       # only the previous step of the same document
    assert torch.allclose(att.sum(-1)[:, [2, 3, 4, 5, 7]], torch.ones(4, 5), atol=1e-5)
    assert torch.all(att.sum(-1)[:, [0, 1, 6]] == 0)           # first steps attend to nothing
    # perturbing a step-0 node changes step-1 nodes only (not step 2, not the other document)
    x2 = x.clone()
    x2[0] += 5.0
    y2 = layer(x2, step, batch)
    changed = (y2 - y).abs().sum(-1) > 1e-6
    assert changed.tolist() == [True, False, True, True, True, False, False, False]


def test_seq_attention_leaves_global_rng_and_can_stop_gradients():
    torch.manual_seed(0)
    layer = SequentialElementAttention(16, heads=4, dropout=0.5, detach_context=True).train()
    step = torch.tensor([0, 0, 1, 1, 2])
    x = torch.randn(5, 16, requires_grad=True)
    torch.manual_seed(1)
    y1 = layer(x, step)
    after = torch.rand(3)
    torch.manual_seed(1)
    assert torch.equal(torch.rand(3), after)                   # its dropout drew nothing from the global stream
    assert not torch.allclose(layer(x, step), y1)              # ... yet it is active (own generator)
    # detach_context: gradients reach x only through the residual path, never through the attention
    layer.eval()
    y = layer(x, step)
    (g_full,) = torch.autograd.grad(y[2:].sum(), x)
    assert torch.all(g_full[:2] == 0)                          # step-0 nodes feed step 1 only as keys/values
    layer.detach_context = False
    (g_att,) = torch.autograd.grad(layer(x, step)[2:].sum(), x)
    assert g_att[:2].abs().sum() > 0


def test_model_variants_share_their_initial_weights():
    from graphmie.tasks.procedure import build_model

    torch.manual_seed(3)
    full = build_model({"seq_attention": True}).state_dict()
    torch.manual_seed(3)
    ablation = build_model({"seq_attention": False}).state_dict()
    assert set(ablation) < set(full) and any(k.startswith("seq.") for k in full)
    assert all(torch.equal(full[k], ablation[k]) for k in ablation)   # only the attention differs


def test_pointer_head_loss_and_choice():
    from graphmie.tasks.procedure import NONE, _pointer_loss
    from graphmie.nn.seqgmper import SeqGMPER

    torch.manual_seed(0)
    model = SeqGMPER(hidden=16, heads=2, flow_head="pointer").eval()
    reps, types = torch.randn(3, 16), torch.tensor([0, 3, 3])
    pairs = [(0, 1), (0, 2), (1, 2)]
    logits = torch.zeros(3, NONE + 1)
    logits[1, 4] = 12.0                                        # head 0 -> tail 2, label 4
    choices = model.head_choices(logits, reps, types, pairs)
    assert set(choices) == {0, 1} and choices[0][0] == [0, 1] and choices[0][1].shape == (2 * NONE + 1,)
    assert int(choices[0][1].argmax()) == 1 * NONE + 4         # the choice decodes to (pair 1, label 4)
    good = _pointer_loss(model, logits, reps, types, pairs[:2], {(0, 2): 4}, 1.0)
    bad = _pointer_loss(model, logits, reps, types, pairs[:2], {(0, 1): 0}, 1.0)
    assert good.item() < 0.01 < 5.0 < bad.item()
    # a head without gold flow is scored on "no flow" (the last choice), weighted by none_weight
    sc = choices[1][1]
    expect = torch.logsumexp(sc, 0) - sc[-1]
    got = _pointer_loss(model, logits, reps, types, pairs[2:], {}, 0.5)
    assert torch.allclose(got, expect, atol=1e-5)


def test_attention_features_and_prior():
    from graphmie.nn.seqgmper import SeqGMPER

    torch.manual_seed(0)
    model = SeqGMPER(hidden=16, heads=2).eval()
    graph = build_step_graph([[0, 1, 2], [3, 4]], [[1, -1, 1], [-1, 0]])
    h = model.encode(torch.randn(5, 384), None, graph)
    spans, steps = [[0], [1, 2], [3], [4]], [0, 0, 1, 1]
    pairs = candidate_pairs(steps)
    att = model.pair_attention(spans, pairs)
    assert att.shape == (len(pairs), 3)
    for (a, b), row in zip(pairs, att):
        if steps[a] == steps[b]:
            assert torch.all(row == 0)                         # same step: no attention features, no prior
        else:
            assert row[0] > 0
    for tail in (2, 3):                                        # a tail's mass over all of step 0 is 1
        total = sum(float(att[k, 0]) for k, (a, b) in enumerate(pairs) if b == tail)
        assert abs(total - 1.0) < 1e-5
    logits = model.pair_logits(model.span_reps(h, spans), torch.tensor([0, 3, 3, 0]), steps, [0, 1, 3, 4], pairs, spans)
    model.att_prior.data.fill_(0.0)
    plain = model.pair_logits(model.span_reps(h, spans), torch.tensor([0, 3, 3, 0]), steps, [0, 1, 3, 4], pairs, spans)
    cross = torch.tensor([steps[a] != steps[b] for a, b in pairs])
    assert torch.allclose(logits[~cross], plain[~cross])
    assert not torch.allclose(logits[cross, :-1], plain[cross, :-1]) and torch.allclose(logits[:, -1], plain[:, -1])


# ---------------------------------------------------------------- metric
def _doc(entities, relations):
    from graphmie.document import Step, Token

    d = Document(id="d", kind="procedure", source="m")
    for s in range(2):
        st = Step(index=s, text="")
        for w in range(4):
            st.tokens.append(len(d.tokens))
            d.tokens.append(Token(text="w", step=s))
        d.steps.append(st)
    d.entities = [Entity(id=i, text="w", label=lab, tokens=[s * 4 + k for k in range(a, b)], step=s)
                  for i, s, a, b, lab in entities]
    d.relations = [Relation(id=f"r{k}", head=h, tail=t, label=lab) for k, (h, t, lab) in enumerate(relations)]
    return d


def test_metric_hand_made():
    gold = _doc([("a", 0, 0, 1, "Ae"), ("b", 0, 1, 3, "I"), ("c", 1, 0, 1, "Ae")],
                [("b", "a", "Targ"), ("a", "c", "Dest")])
    assert score([gold], [gold])["entity_f1"] == 1.0 and score([gold], [gold])["flow_f1"] == 1.0
    # wrong type on b, span off by one on c; one flow wrong label, other endpoint span wrong
    pred = _doc([("a", 0, 0, 1, "Ae"), ("b", 0, 1, 3, "T"), ("c", 1, 0, 2, "Ae")],
                [("b", "a", "Dest"), ("a", "c", "Dest")])
    r = score([pred], [gold])
    assert r["entity_f1"] == pytest.approx(1 / 3)
    assert r["flow_f1"] == 0.0                                   # label wrong; tail span wrong
    assert r["flow_f1_unlabelled"] == pytest.approx(0.5)         # (b->a) matches spans, types ignored
    assert entity_facts(gold) == {(0, 0, 1, "Ae"), (0, 1, 3, "I"), (1, 0, 1, "Ae")}
    assert flow_facts(gold, labelled=False) == {((0, 1, 3), (0, 0, 1)), ((0, 0, 1), (1, 0, 1))}
    # micro average over documents: 1 of 2 + 2 of 2 flows
    r2 = score([pred, gold], [gold, gold])
    assert r2["flow_f1"] == pytest.approx(0.5) and r2["gold_flows"] == 4


# ---------------------------------------------------------------- the shipped model: evaluate + extract
def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "graphmie", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def test_evaluate_cli_fixture():
    r = _cli("evaluate", "--task", "procedure", "--data", str(FIXTURE))
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert {"entity_f1", "flow_f1", "flow_f1_unlabelled"} <= set(m) and m["documents"] == 1
    assert m["gold_entities"] == 6 and m["gold_flows"] == 5
    assert m["entity_f1"] > 0.5                                  # trained weights read this easy article well


def test_extract_example(tmp_path):
    r = _cli("extract", str(EXAMPLE), "--task", "procedure", "--out", str(tmp_path), "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads((tmp_path / "fried_egg.json").read_text())
    assert [s["index"] for s in out["steps"]] == [0, 1, 2, 3]
    assert out["steps"][1]["image"].endswith("fry_egg.png")
    labels = {e["label"] for e in out["entities"]}
    assert "Ae" in labels and "I" in labels
    texts = {e["text"] for e in out["entities"]}
    assert {"Heat", "Crack", "Cook"} <= texts
    assert all(e["provenance"]["model"] == "graphmie.procedure.seqgmper" for e in out["entities"])
    assert out["relations"] and all(r["label"] in FLOW_LABELS for r in out["relations"])
    ids = {e["id"] for e in out["entities"]}
    assert all(r["head"] in ids and r["tail"] in ids for r in out["relations"])
    assert any(r["page"] == 1 for r in out["regions"])           # regions of the step image
    assert out["meta"]["step_graph"]["image_nodes"] == len(out["regions"])
    for g in out.get("groundings", []):
        assert g["entity"] in ids and g["provenance"]["model"]
    assert (tmp_path / "fried_egg.ttl").exists() and (tmp_path / "fried_egg.cypher").exists()


def test_image_path_with_generated_image(tmp_path):
    from PIL import Image, ImageDraw

    from graphmie.tasks.procedure import ProcedureTask, read_procedure

    im = Image.new("RGB", (120, 90), "white")
    ImageDraw.Draw(im).rectangle((20, 20, 70, 60), fill="red")
    im.save(tmp_path / "bowl.png")
    (tmp_path / "p.json").write_text(json.dumps({"steps": [{"text": "Pour the milk into a bowl."},
                                                           {"text": "Whisk the milk.", "image": "bowl.png"}]}))
    task = ProcedureTask()
    task.load(None)
    doc = task.predict(read_procedure(tmp_path / "p.json"))
    regs = [r for r in doc.regions if r.page == 1]
    assert regs and regs[0].box.to_list() == [0, 0, 120, 90] and all(r.provenance for r in regs)
    assert doc.meta["step_graph"]["image_nodes"] == len(regs)
    assert doc.meta["step_graph"]["text_nodes"] == len(doc.tokens)
    for g in doc.groundings:                          # only step-1 object/tool entities are grounded
        e = doc.entity(g.entity)
        assert e.step == 1 and e.label in ("I", "T")
        assert g.region is None or g.region in {r.id for r in regs}


# ---------------------------------------------------------------- short training with a floor
def test_short_training_floor():
    data = shared("wikihow_fg", "data")
    from graphmie.tasks.procedure import Featurizer, predict_example, prepare, train_model

    torch.set_num_threads(1)
    docs = read_folder(data)
    feat = Featurizer()
    exs = [prepare(d, feat) for d in docs]
    feat.save()
    train, test = exs[::3], exs[1::6][:10]                      # 32 / 10 articles, disjoint
    model, losses = train_model(train, {"hidden": 64}, {"epochs": 12, "lr": 3e-3, "seed": 0})
    assert losses[-1] < losses[0] * 0.6
    r = score([predict_example(model, e) for e in test], [e.doc for e in test])
    assert r["entity_f1"] > 0.45, r
    assert r["flow_f1_unlabelled"] > 0.15 and r["flow_f1"] > 0.1, r
