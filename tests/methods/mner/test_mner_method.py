"""The MNER method (graphmie.methods.mner): shipped checkpoint, tokenizer, predict -> Result, a short training."""
import pytest

from conftest import shared, with_members
from graphmie.document import Document
from graphmie.engine.checkpoint import WEIGHTS_DIR, load_checkpoint
from graphmie.errors import GraphmieError
from graphmie.methods.mner import MNER
from graphmie.methods.mner.data import tokenize

needs_weights = pytest.mark.skipif(not (WEIGHTS_DIR / "entity_mner.safetensors").exists(),
                                   reason="shipped entity weights absent")


@pytest.fixture(scope="module")
def mner():
    return MNER.from_checkpoint(load_checkpoint(None, "entity_mner", method="mner"))


def test_tokenize_like_gmner():
    words, spans = tokenize("RT @NASA: Go #Apollo11 don't")
    assert words == ["RT", "@", "NASA", ":", "Go", "#", "Apollo11", "don't"]
    assert all("RT @NASA: Go #Apollo11 don't"[s:e] == w for w, (s, e) in zip(words, spans))


def test_schema_holds_the_shipped_config_and_refuses_typos():
    ck = load_checkpoint(None, "entity_mner", method="mner")
    cfg = MNER.resolve_config(ck.config)
    assert cfg["model"]["lora_rank"] == 64 and cfg["types"]["coarse"]["PER"] == "PER"
    assert ck.meta["labels"][:3] == ["O", "B-PER", "I-PER"]
    with pytest.raises(GraphmieError, match="E020"):
        MNER.resolve_config({"training": {"epohcs": 3}})
    with pytest.raises(GraphmieError, match="E021"):
        MNER.resolve_config({"types": {"coarse": "PER"}})
    assert MNER.resolve_config({"types": {"coarse": {"PER.athlete": "PER"}}})["types"]["coarse"] == \
        {"PER.athlete": "PER"}                                          # a free mapping


@needs_weights
def test_predict_without_image_passes_groundability_explicitly(mner):
    doc = Document("d", "post", "x", text="Barack Obama visits Paris with Angela Merkel", caption="a man and a woman")
    res = mner.predict(doc)
    assert res.doc is doc and res.error is None
    assert [(e.text, e.label) for e in doc.entities] == [("Barack Obama", "PER"), ("Paris", "LOC"),
                                                         ("Angela Merkel", "PER")]
    assert all(e.provenance.model == "graphmie.entity.mner" and e.provenance.model_version == mner.version
               for e in doc.entities)
    assert [g.entity for g in doc.groundings] == ["m0", "m1", "m2"] and all(g.region is None for g in doc.groundings)
    assert not doc.regions and set(doc.meta) == {"entity_type_hierarchy"}          # no private keys left behind
    assert [t.text for t in doc.tokens[:2]] == ["Barack", "Obama"] and doc.tokens[0].tag == "B-PER"


@needs_weights
def test_type_spans_gives_each_given_span_its_most_probable_type(mner):
    words = ["Angela", "Merkel", "met", "the", "Bayern", "Munich", "squad", "in", "Berlin"]
    (rows,) = mner.type_spans([(words, [(0, 2), (4, 6), (8, 9), (2, 3)])])
    assert [t for t, _ in rows[:3]] == ["PER", "ORG", "LOC"]
    assert all(0.25 <= p <= 1.0 for _, p in rows)                 # a probability among the 4 types
    assert rows[0][1] > 0.9                                       # a clear person
    a, b = mner.type_spans([(words, [(0, 2)]), (["Paris"], [(0, 1)])], batch_size=1)   # batching: same answer
    assert a[0][0] == "PER" and b[0][0] == "LOC"
    with pytest.raises(ValueError):
        mner.type_spans([(words, [(8, 10)])])
    long = ["word"] * 300 + ["Berlin"]                          # past the 96-piece window: no type
    assert mner.type_spans([(long, [(300, 301), (0, 1)])])[0][0] == (None, 0.0)


@needs_weights
def test_predict_with_image_options_are_explicit(mner, tmp_path):
    import numpy as np
    from PIL import Image

    a = np.full((240, 320, 3), 110, np.uint8)
    a[30:200, 20:120] = (200, 40, 40)
    Image.fromarray(a).save(tmp_path / "p.png")
    doc = Document("d", "post", "x", text="Lionel Messi scores for Barcelona", image=str(tmp_path / "p.png"))
    mner.predict(doc, max_regions=3, threshold=0.0)               # threshold 0: every entity is grounded
    assert 1 <= len(doc.regions) <= 3 and all(g.region for g in doc.groundings)
    again = Document("d", "post", "x", text="Lionel Messi scores for Barcelona", image=str(tmp_path / "p.png"))
    mner.predict(again, max_regions=3, threshold=1.01)
    assert all(g.region is None for g in again.groundings)


def test_short_training_reaches_floor(tmp_path):
    root = shared("gmner")
    from graphmie.tasks.entity import EntityTask

    m = EntityTask.train({"data": {"root": str(root), "limit": 1000, "val_tweets": 200},
                          "training": {"epochs": 2, "lr": 3e-4, "head_lr": 3e-3}}, tmp_path)
    assert m["n_train"] == 800 and m["n_dev"] == 1000
    assert m["dev_mner_f1"] >= 0.45          # 0.63 after 3 epochs when measured; chance is ~0
    assert m["dev_ground_f1"] >= 0.3
    assert (tmp_path / "model.safetensors").stat().st_size < 10_000_000
    assert (tmp_path / "run.json").exists()
    ck = load_checkpoint(tmp_path, "unused", method="mner")
    assert ck.record["dev_metrics"]["dev_mner_f1"] == m["dev_mner_f1"] and ck.config["data"]["limit"] == 1000
    assert len(ck.record["history"]) == 2 and ck.meta["types"] == ["PER", "ORG", "LOC", "OTHER"]
    back = EntityTask.load(tmp_path)
    doc = Document("d", "post", "x", text="Barack Obama visits Paris")
    assert back.predict(doc, {"max_regions": 20, "index": None}).doc.entities


def test_short_training_with_knowledge_reads_it(tmp_path):
    """The knowledge recipe (frozen lower layers, knowledge-match feature, knowledge dropout) trains on
    Twitter-GMNER with the RiVEG knowledge, records it, and reads a post's knowledge at prediction."""
    root = shared("gmner")
    from graphmie.tasks.entity import EntityTask

    m = EntityTask.train({"data": {"root": str(root), "limit": 600, "val_tweets": 100, "knowledge": "auto",
                                   "knowledge_dropout": 0.2},
                          "model": {"n_frozen": 5, "lora_rank": 0, "max_length": 160, "knowledge_features": True},
                          "training": {"epochs": 2, "lr": 1e-4, "head_lr": 3e-3, "threads": 1}}, tmp_path)
    assert m["knowledge"] == "riveg" and m["n_dev"] == 600
    assert m["dev_mner_f1"] >= 0.4                              # measured 0.49: far above chance (~0)
    assert m["dev_mner_f1"] > m["dev_mner_f1_without_knowledge"]  # the knowledge is what it learned to use
    ck = load_checkpoint(tmp_path, "unused", method="mner")
    assert ck.meta["knowledge"] == "riveg" and "know_emb.weight" in ck.state
    back = EntityTask.load(tmp_path)
    text = "Taylor Swift plays Wembley tonight"
    doc = Document("d", "post", "x", text=text, knowledge="Named entities: 1. Taylor Swift (person) "
                   "2. Wembley (location) Reasoning: a singer and a stadium.", meta={"knowledge_source": "riveg"})
    ents = back.predict(doc, {"max_regions": 20, "index": None, "llm": ""}).doc.entities
    assert ents and all(e.provenance.evidence == ("text", "knowledge:riveg") for e in ents)


@needs_weights
def test_members_average_taggers_and_refuse_a_tagger_of_other_input(mner, tmp_path):
    """``model.members`` lists other checkpoints averaged with this one: a tagger listed with itself as
    its member decodes exactly as alone; a member that reads other input (a knowledge tagger) is E025."""
    def owner(name, members):
        return with_members(tmp_path, "entity_mner", name, members, "mner")

    pair = MNER.from_checkpoint(owner("pair", ["entity_mner"]))
    assert [m.name for m in pair.members] == ["entity_mner"]
    text = "Barack Obama visits Paris with Angela Merkel"
    one, two = Document("d", "post", "x", text=text), Document("d", "post", "x", text=text)
    mner.predict(one)
    pair.predict(two)
    assert [(e.text, e.label) for e in two.entities] == [(e.text, e.label) for e in one.entities]
    assert two.meta["entity_tagger_members"] == ["pair", "entity_mner"]
    with pytest.raises(GraphmieError, match="E025") as err:
        MNER.from_checkpoint(owner("mixed", ["entity_mner_riveg"]))
    assert "entity_mner_riveg" in str(err.value) and "data.knowledge" in str(err.value)
    with pytest.raises(GraphmieError, match="E001"):
        MNER.from_checkpoint(owner("missing", ["no_such_tagger"]))
    with pytest.raises(GraphmieError, match="E001"):                # a name too long to look up
        MNER.from_checkpoint(owner("long", ["x" * 5000]))
    for bad in ([""], [3], [None]):
        with pytest.raises(GraphmieError, match="E021"):
            MNER.from_checkpoint(owner("bad", bad))
