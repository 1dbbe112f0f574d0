"""The entity task: evaluate / extract through the CLI and the Python API with the shipped weights."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import graphmie
from conftest import REPO
from graphmie.engine.checkpoint import WEIGHTS_DIR
from graphmie.errors import GraphmieError
from graphmie.tasks.entity import EntityTask

MINI = REPO / "tests" / "fixtures" / "gmner_mini"
needs_weights = pytest.mark.skipif(not all((WEIGHTS_DIR / f"{n}.safetensors").exists()
                                           for n in ("entity_mner", "entity_grounding")),
                                   reason="shipped entity weights absent")


def _cli(*args):
    r = subprocess.run([sys.executable, "-m", "graphmie", *map(str, args)], cwd=REPO, capture_output=True,
                       text=True, timeout=600)
    return r.returncode, r.stdout, r.stderr


def _posts(tmp_path):
    a = np.full((240, 320, 3), 110, np.uint8)
    a[30:200, 20:120] = (200, 40, 40)
    Image.fromarray(a).save(tmp_path / "p.png")
    (tmp_path / "post.json").write_text(json.dumps({"text": "Barack Obama visits Paris with Angela Merkel",
                                                    "image": "p.png", "caption": "a man and a woman"}))
    (tmp_path / "bad.json").write_text(json.dumps({"text": "Obama", "image": "missing.png"}))


def _check_post_output(doc):
    texts = {e["text"]: e for e in doc["entities"]}
    assert "Barack Obama" in texts and texts["Barack Obama"]["label"] == "PER"
    assert all(e["provenance"]["model"] == "graphmie.entity.mner" for e in doc["entities"])
    assert {g["entity"] for g in doc["groundings"]} == {e["id"] for e in doc["entities"]}
    regions = {r["id"]: r for r in doc["regions"]}
    for g in doc["groundings"]:
        assert g["provenance"]["model"] == "graphmie.entity.grounding_head"
        if g.get("region"):
            assert g["box"] == regions[g["region"]]["box"]


@pytest.fixture(scope="module")
def nlp():
    return graphmie.load("entity")


@needs_weights
def test_evaluate_cli_on_fixture():
    rc, out, err = _cli("evaluate", "--task", "entity", "--data", MINI, "--split", "train")
    assert rc == 0, err
    m = json.loads(out.strip().splitlines()[-1])
    for k in ("gmner_f1", "mner_f1", "eeg_f1", "gmner_f1_lower", "ground_f1", "ground_precision", "ground_recall",
              "ground_majority_f1", "region_judged_by"):
        assert k in m
    assert m["n_entities"] == 5 and m["data_stats"]["tweets_without_image"] == 1
    assert m["xml_unknown_ids"] == 1
    assert 0.0 <= m["gmner_f1_lower"] <= m["gmner_f1"] <= m["mner_f1"] <= 1.0


@needs_weights
def test_evaluate_api_options_are_validated():
    m = EntityTask.evaluate(MINI, "train", None, limit=2, caption="none")
    assert m["n_tweets"] == 2 and m["caption"] == "none"
    with pytest.raises(GraphmieError, match="E020"):
        EntityTask.evaluate(MINI, "train", None, captions="none")
    with pytest.raises(GraphmieError, match="E022"):
        EntityTask.evaluate(MINI, "train", None, caption="llava")


@needs_weights
def test_extract_cli_post_and_inline(tmp_path):
    _posts(tmp_path)
    rc, out, err = _cli("extract", tmp_path / "post.json", tmp_path / "bad.json", "--task", "entity",
                        "--out", tmp_path / "out", "--text", "Lionel Messi scores for Barcelona")
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["ok"] == 2 and summary["failed"] == 1 and rc == 1
    assert "missing.png" in err
    _check_post_output(json.loads((tmp_path / "out" / "post.json").read_text()))
    assert (tmp_path / "out" / "post.ttl").exists()


@needs_weights
def test_extract_api_post_and_inline(nlp, tmp_path):
    _posts(tmp_path)
    report = nlp.extract([tmp_path / "post.json", tmp_path / "bad.json",
                          {"text": "Lionel Messi scores for Barcelona"}], tmp_path / "out", progress=False)
    assert len(report.done) == 2 and len(report.failed) == 1 and "missing.png" in report.failed[0]["error"]
    _check_post_output(json.loads((tmp_path / "out" / "post.json").read_text()))
    assert (tmp_path / "out" / "post.ttl").exists()
    inline = nlp({"text": "Lionel Messi scores for Barcelona"}, max_regions=5)
    assert inline.source.startswith("inline:") and {e.text for e in inline.entities} >= {"Lionel Messi"}
    assert not inline.regions and all(g.region is None for g in inline.groundings)      # no image


@needs_weights
def test_extract_on_the_bundled_post_uses_its_detections_and_declares_no_duplicates(tmp_path):
    rc, out, err = _cli("extract", REPO / "examples" / "posts" / "concert.json", "--task", "entity",
                        "--out", tmp_path, "--quiet")
    assert rc == 0, err
    doc = json.loads((tmp_path / "concert.json").read_text())
    texts = [e["text"] for e in doc["entities"]]
    assert len(texts) == len(set(texts)) and "Taylor Swift" in texts
    assert all(e["provenance"]["model"] == "graphmie.entity.mner" for e in doc["entities"])
    assert doc["meta"]["ignored_input_entities"]
    det_boxes = [d["box"] for d in json.loads((REPO / "examples" / "posts" / "concert.json").read_text())["detections"]]
    assert all(r["box"] in det_boxes for r in doc["regions"])


@needs_weights
def test_bundled_post_through_the_api(nlp):
    res = nlp.run(REPO / "examples" / "posts" / "concert.json")
    assert "Taylor Swift" in [e.text for e in res.doc.entities] and res.doc.meta["ignored_input_entities"]
    assert res.doc.regions and all(r.provenance.model == "detections" for r in res.doc.regions)


def test_task_options_and_methods():
    with pytest.raises(GraphmieError, match="E020"):
        EntityTask.resolve_options({"max_region": 3})
    assert EntityTask.resolve_options(None) == {"max_regions": 20, "index": None, "llm": ""}
    with pytest.raises(GraphmieError, match="E027"):
        EntityTask.train({"method": "re2"}, REPO / "runs" / "never_written")
    with pytest.raises(GraphmieError, match="E027"):
        EntityTask.load("entity_grounding")              # the grounding head alone does not tag


needs_knowledge_weights = pytest.mark.skipif(not all((WEIGHTS_DIR / f"{n}.safetensors").exists() for n in
                                                     ("entity_mner_riveg", "entity_mner_t17", "entity_mner_t17_trio",
                                                      "entity_grounding")),
                                             reason="shipped knowledge taggers absent")


@needs_knowledge_weights
def test_extract_cli_reads_knowledge_text_and_file(tmp_path):
    know = "Named entities: 1. Messi (person/player) 2. Barcelona (organization/team) Reasoning: a footballer."
    (tmp_path / "k.txt").write_text(know + "\n")
    for value, source in ((know, "knowledge:input"), (str(tmp_path / "k.txt"), "knowledge:file:k.txt")):
        out = tmp_path / source.replace(":", "_")
        rc, _, err = _cli("extract", "--task", "entity", "--checkpoint", "entity_mner_riveg", "--out", out,
                          "--text", "Messi scores for Barcelona", "--knowledge", value, "--quiet")
        assert rc == 0, err
        doc = json.loads(next(out.glob("inline*.json")).read_text())
        assert doc["knowledge"] == know and doc["schema_version"] == graphmie.SCHEMA_VERSION
        ents = {e["text"]: e for e in doc["entities"]}
        assert ents["Messi"]["label"] == "PER" and ents["Messi"]["provenance"]["evidence"] == ["text", source]
    rc, _, err = _cli("extract", tmp_path / "k.txt", "--task", "entity", "--out", tmp_path / "x", "--knowledge", know)
    assert rc != 0 and "E030" in err                      # --knowledge describes the --text post only


@needs_knowledge_weights
def test_knowledge_is_ignored_by_the_text_tagger_and_llm_refused(nlp):
    doc = nlp({"text": "Messi scores for Barcelona", "knowledge": "Named entities: 1. Messi (person)"})
    assert doc.meta["knowledge_ignored"] and all(e.provenance.evidence == ("text",) for e in doc.entities)
    with pytest.raises(GraphmieError, match="E030"):
        graphmie.load("entity", llm="local")({"text": "Messi scores"})


@needs_knowledge_weights
def test_evaluate_twitter2017_folder_uses_its_tagger_and_knowledge(tmp_path):
    root = tmp_path / "twitter2017"
    (root / "aux_pgim").mkdir(parents=True)
    tweets = [("Obama visits Paris".split(), ["B-PER", "O", "B-LOC"]), ("Go NFL".split(), ["O", "B-MISC"])]
    (root / "valid.txt").write_text("".join(f"IMGID:{i}\n" + "".join(f"{w}\t{t}\n" for w, t in zip(ws, ts)) + "\n"
                                            for i, (ws, ts) in enumerate(tweets)))
    (root / "aux_pgim" / "valid.txt").write_text(
        "".join("".join(f"{w}\tO\n" for w in ws) + "<EOS>\tX\nNamed\tX\nentities:\tX\n1.\tX\n"
                f"{ws[-1]}\tX\n(thing)\tX\n\n" for ws, _ in tweets))
    rc, out, err = _cli("evaluate", "--task", "entity", "--data", root)
    assert rc == 0, err
    m = json.loads(out.strip().splitlines()[-1])
    assert m["benchmark"] == "twitter2017" and m["split"] == "valid" and m["knowledge"] == "pgim"
    assert m["model"] == "entity_mner_t17_trio" and m["members"] == ["entity_mner_t17", "entity_mner_t17_s14"]  # 3 seeds
    assert m["n_entities"] == 3 and "ground_f1" not in m
    m = EntityTask.evaluate(root, knowledge="none")
    assert m["knowledge"] == "none" and 0.0 <= m["mner_f1"] <= 1.0
    with pytest.raises(GraphmieError, match="E013"):       # a GMNER tagger cannot score MISC
        EntityTask.evaluate(root, checkpoint="entity_mner_riveg")
