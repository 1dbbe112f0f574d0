"""MREISE: the shipped checkpoint, predict's explicit options and artifacts, grounding after relations,
and a tiny training through the shared Trainer (checkpoint, sidecar, init_from)."""
import json

import pytest
import torch

from graphmie.document import Document, Entity
from graphmie.engine.checkpoint import copy_with_members, load_checkpoint
from graphmie.errors import GraphmieError
from graphmie.methods.mre_ise import MREISE
from graphmie.tasks.post import PostTask

from conftest import REPO, shared, with_members

GOOD = ("{'token': ['Messi', 'joins', 'Barcelona', 'today'], 'h': {'name': 'Messi', 'pos': [0, 1]}, "
        "'t': {'name': 'Barcelona', 'pos': [2, 3]}, 'img_id': 'a.jpg', 'relation': '/per/org/member_of'}")
OTHER = ("{'token': ['Anna', 'lives', 'in', 'Rome', 'now'], 'h': {'name': 'Anna', 'pos': [0, 1]}, "
         "'t': {'name': 'Rome', 'pos': [3, 4]}, 'img_id': 'b.jpg', 'relation': 'None'}")


@pytest.fixture(scope="module")
def method():
    return MREISE.from_checkpoint(load_checkpoint(None, "post_mre_ise", method="mre_ise"))


def test_shipped_sidecar(method):
    ckpt = method.ckpt
    assert ckpt.method == "mre_ise" and len(ckpt.meta["labels"]) == 23 and len(ckpt.meta["vocab"]) == 3000
    assert ckpt.record["dev_metrics_shipped"]["f1"] == pytest.approx(0.5954198473282443)
    assert method.config["model"]["max_length"] == 96 and method.version == ckpt.record["date"]


def test_predict_options_artifacts_and_grounding(method, monkeypatch):
    from graphmie.data.post_json import read_post

    post = REPO / "examples" / "posts" / "concert.json"
    res = method.predict(read_post(post), max_regions=5)
    doc = res.doc
    assert set(res.artifacts) == {"scene_graph", "crossmodal"}
    sg = res.artifacts["scene_graph"]
    assert sg["pair"] == ["Taylor Swift", "Ed Sheeran"]
    assert len(sg["gib_node_keep"]) == len(res.artifacts["crossmodal"].nodes)
    assert doc.meta["pairs_scored"] == 3 and [r.label for r in doc.regions] == ["person", "person", "stage"]
    assert len(doc.groundings) == len(doc.entities) == 4
    assert all(r.provenance.model_version == method.version for r in doc.relations)
    # grounding runs after the relations and does not change them
    import graphmie.grounding

    class NoGrounder:
        def ground(self, *a, **k):
            return []

    monkeypatch.setattr(graphmie.grounding, "get_grounder", lambda *a, **k: NoGrounder())
    again = method.predict(read_post(post), max_regions=5).doc
    assert [(r.head, r.tail, r.label, r.provenance.score) for r in again.relations] == \
        [(r.head, r.tail, r.label, r.provenance.score) for r in doc.relations]
    assert not again.groundings


def test_predict_text_only_post_has_no_groundings(method):
    doc = Document(id="t", kind="post", source="t", text="Lionel Messi signed for Inter Miami in Florida .")
    res = method.predict(doc)
    assert {e.text for e in res.doc.entities} >= {"Lionel Messi", "Inter Miami"}
    assert res.doc.meta["visual_evidence"] == ["none"] and not res.doc.groundings and not res.doc.regions


def write_mnre(tmp_path):
    d = tmp_path / "mnre"
    (d / "captions").mkdir(parents=True)
    (d / "rel2id.json").write_text(json.dumps({"None": 0, "/per/org/member_of": 1}))
    (d / "mnre_x.txt").write_text("\n".join([GOOD, OTHER] * 6) + "\n")
    (d / "captions" / "llavanext_x.json").write_text(json.dumps({"a": "A footballer on a pitch.", "b": "A city."}))
    return d


def tiny_config(data, **training):
    return {"task": "post", "method": "mre_ise",
            "data": {"dir": str(data), "train_split": "x", "dev_split": "x"},
            "model": {"finetune_layers": 1, "max_length": 32, "gnn_dim": 16, "z_dim": 8, "n_topics": 2},
            "training": {"epochs": 1, "batch_size": 4, **training}}


def test_tiny_training_checkpoint_and_init_from(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHMIE_CACHE", str(tmp_path / "cache"))
    data = write_mnre(tmp_path)
    m = PostTask.train(tiny_config(data), tmp_path / "run")
    assert m["n"] == 12 and m["train_rows"] == 12 and len(m["loss_history"]) == 1
    side = json.loads((tmp_path / "run" / "model.json").read_text())
    assert side["method"] == "mre_ise" and side["meta"]["labels"] == ["None", "/per/org/member_of"]
    assert side["config"]["model"]["gnn_dim"] == 16 and side["record"]["dev_metrics"]["f1"] == m["f1"]
    assert (tmp_path / "run" / "run.json").exists() and any((tmp_path / "cache" / "post").iterdir())
    ev = PostTask.evaluate(data, "x", tmp_path / "run")
    assert ev["n"] == m["n"] and abs(ev["accuracy"] - m["accuracy"]) <= 1 / 12 + 1e-9     # fp16 file vs fp32 model
    # continue from the run with zero learning rates: the weights come back unchanged
    PostTask.train(tiny_config(data, init_from=str(tmp_path / "run"), lr_encoder=0.0, lr_head=0.0), tmp_path / "run2")
    a = load_checkpoint(tmp_path / "run", "post_mre_ise").state
    b = load_checkpoint(tmp_path / "run2", "post_mre_ise").state
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_config_keys_are_checked():
    with pytest.raises(GraphmieError, match="E020"):
        MREISE.resolve_config({"training": {"epohcs": 2}})
    with pytest.raises(GraphmieError, match="E021"):
        MREISE.resolve_config({"model": {"use_gib": "yes"}})
    for bad in ({"distill_weight": 1.5}, {"distill_temperature": 0.0}):
        with pytest.raises(GraphmieError, match="E009"):
            MREISE.resolve_config({"training": bad})
    from graphmie.config import load_config

    cfg = MREISE.resolve_config(load_config(REPO / "configs" / "post_mre_ise.toml"))
    assert cfg["method"] == "mre_ise" and cfg["model"]["max_length"] == 96


@pytest.mark.slow
def test_short_training_reaches_f1_floor(tmp_path):
    data = shared("mnre", "mnre_train.txt").parent
    from graphmie.config import load_config

    cfg = load_config(REPO / "configs" / "post_mre_ise.toml", {
        "data.dir": str(data), "data.limit": 1000, "data.dev_limit": 300, "model.finetune_layers": 1,
        "model.max_length": 64, "training.epochs": 6, "training.lr_encoder": 3e-4,
        "training.lr_head": 2e-3})
    m = PostTask.train(cfg, tmp_path)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "run.json").exists()
    # 1000 rows x 6 epochs: measured F1 0.22 on 300 val rows (all-None gives 0, random labels ~0.05)
    assert m["n"] == 300 and m["f1"] >= 0.15, m
    ev = PostTask.evaluate(data, "val", tmp_path, limit=300)
    assert ev["f1"] == pytest.approx(m["f1"], abs=0.02)


def test_tiny_training_with_typed_markers_gate_and_reversed_pairs_reports_evidence(tmp_path, monkeypatch):
    from graphmie.methods.mre_ise import MREISE

    monkeypatch.setenv("GRAPHMIE_CACHE", str(tmp_path / "cache"))
    data = write_mnre(tmp_path)
    cfg = tiny_config(data)
    cfg["model"].update(typed_markers=True, use_gate=True)
    cfg["data"]["reverse_pairs"] = 1.0
    m = PostTask.train(cfg, tmp_path / "run")
    assert m["reversed_rows"] == 12 and m["train_rows"] == 24 and m["n"] == 12
    method = MREISE.from_checkpoint(load_checkpoint(tmp_path / "run", "post_mre_ise"))
    assert method.model.gate is not None and method.enc.typed_markers
    with torch.no_grad():
        method.model.classifier[-1].bias[1] = 100.0          # every pair gets the relation: its evidence is shown
    doc = Document(id="g", kind="post", source="g", text="Lionel Messi plays for Inter Miami .",
                   caption="A footballer on a pitch.", entities=[
                       Entity(id="h", text="Lionel Messi", label="PERSON", span=(0, 12)),
                       Entity(id="t", text="Inter Miami", label="ORG", span=(23, 34))],
                   meta={"pairs": [["h", "t"]]})
    res = method.predict(doc)
    gate = res.doc.meta["consistency_gate"]
    assert 0.0 < gate < 1.0
    (rel,) = res.doc.relations
    prov = rel.provenance
    assert rel.label == "/per/org/member_of" and prov.evidence == ("text", "caption", "scene graph", "topics")
    assert set(prov.attribution) == {"gate", "caption", "graph", "topics"} and prov.attribution["gate"] == gate
    assert all(-1.0 <= v <= 1.0 for v in prov.attribution.values())
    back = Document.from_dict(json.loads(json.dumps(res.doc.to_dict())))
    assert back.relations[0].provenance.attribution == prov.attribution


def test_members_average_models_and_refuse_a_model_of_other_input(tmp_path):
    """``model.members``: the text-only model listed with itself decodes and scores as alone; a member
    that reads other input (the captioned model) is E025 naming the key; a bad member spec is E021."""
    def owner(name, members):
        return with_members(tmp_path, "post_mre_ise_text", name, members, "mre_ise")

    alone = MREISE.from_checkpoint(load_checkpoint("post_mre_ise_text", "unused", method="mre_ise"))
    pair = MREISE.from_checkpoint(owner("pair", ["post_mre_ise_text"]))
    assert [c.name for c in pair.members] == ["post_mre_ise_text"]
    text = "Messi joins Barcelona with Neymar"
    ents = [Entity("e0", "Messi", "PER", span=(0, 5)), Entity("e1", "Barcelona", "ORG", span=(12, 21))]
    docs = [Document("d", "post", "x", text=text, entities=list(ents), meta={"pairs": [["e0", "e1"], ["e1", "e0"]]})
            for _ in range(2)]
    one, two = alone.predict(docs[0]).doc, pair.predict(docs[1]).doc
    assert one.relations                                          # something to compare
    assert [(r.head, r.tail, r.label) for r in two.relations] == [(r.head, r.tail, r.label) for r in one.relations]
    assert [r.provenance.score for r in two.relations] == pytest.approx([r.provenance.score for r in one.relations],
                                                                        abs=1e-4)
    assert two.meta["relation_model_members"] == ["pair", "post_mre_ise_text"]
    with pytest.raises(GraphmieError, match="E025") as err:
        MREISE.from_checkpoint(owner("mixed", ["post_mre_ise"]))
    assert "post_mre_ise" in str(err.value) and "model.use_caption" in str(err.value)
    with pytest.raises(GraphmieError, match="E001"):
        MREISE.from_checkpoint(owner("missing", ["no_such_model"]))
    for bad in ([""], [3]):
        with pytest.raises(GraphmieError, match="E021"):
            MREISE.from_checkpoint(owner("bad", bad))


def test_distillation_follows_the_teacher_and_refuses_one_of_other_input(tmp_path, monkeypatch):
    """``training.distill_from``: with the whole weight on the teacher, the model learns the teacher's labels
    (a teacher trained to call every pair member_of), not the gold ones; the soft targets are cached by the
    teacher's weights and rows; a teacher that reads other input is E025."""
    monkeypatch.setenv("GRAPHMIE_CACHE", str(tmp_path / "cache"))
    data = write_mnre(tmp_path)
    (data / "mnre_y.txt").write_text("\n".join([GOOD, OTHER.replace("'None'", "'/per/org/member_of'")] * 6) + "\n")
    (data / "captions" / "llavanext_y.json").write_text((data / "captions" / "llavanext_x.json").read_text())
    fast = {"epochs": 6, "lr_head": 1e-2, "lr_encoder": 1e-3}
    teacher = tmp_path / "teacher"
    t = PostTask.train({**tiny_config(data, **fast), "data": {"dir": str(data), "train_split": "y", "dev_split": "x"}},
                       teacher)
    assert t["accuracy"] == 0.5                                    # it calls every pair member_of
    gold = PostTask.train(tiny_config(data, **fast), tmp_path / "gold")
    assert gold["accuracy"] == 1.0 and gold["distilled_from"] == ""
    student = PostTask.train(tiny_config(data, distill_from=str(teacher), distill_weight=1.0, distill_temperature=1.0,
                                         **fast), tmp_path / "student")
    assert student["accuracy"] == 0.5 and student["distilled_from"] == "teacher"
    assert (tmp_path / "cache" / "post" / "teacher_logits.pt").exists()
    # a second run reads the cached soft targets: the teacher is not loaded again
    monkeypatch.setattr(MREISE, "from_checkpoint", classmethod(lambda cls, ckpt: pytest.fail("teacher reloaded")))
    again = PostTask.train(tiny_config(data, distill_from=str(teacher), distill_weight=1.0, distill_temperature=1.0,
                                       **fast), tmp_path / "again")
    assert again["loss_history"] == student["loss_history"]
    monkeypatch.undo()
    monkeypatch.setenv("GRAPHMIE_CACHE", str(tmp_path / "cache"))
    other = tiny_config(data, distill_from=str(teacher))
    other["model"]["typed_markers"] = True
    with pytest.raises(GraphmieError, match="E025") as err:
        PostTask.train(other, tmp_path / "typed")
    assert "model.typed_markers" in str(err.value) and "distill_from" in str(err.value)
    # a teacher that averages members named relative to its own folder (as model.members allows)
    pair = copy_with_members(teacher / "model.safetensors", teacher / "pair.safetensors", ["model.safetensors"])
    averaged = PostTask.train(tiny_config(data, distill_from=str(pair), distill_weight=1.0, distill_temperature=1.0,
                                          **fast), tmp_path / "averaged")
    assert averaged["accuracy"] == 0.5 and averaged["distilled_from"] == "pair"
