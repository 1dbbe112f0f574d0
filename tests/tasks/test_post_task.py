"""``--task post``: reading posts (files and inline), extraction through the API and the CLI, output files,
distinct names for inline posts, bad inputs failing alone."""
import argparse
import json
from pathlib import Path

import pytest

import graphmie
from graphmie.errors import GraphmieError
from graphmie.tasks.post import PostTask

from conftest import REPO, shared


#: the captioned model (the default, post_mre_ise_text_trio, reads the text alone)
MULTIMODAL = "post_mre_ise"


@pytest.fixture(scope="module")
def nlp():
    return graphmie.load("post", checkpoint=MULTIMODAL)


def namespace(**kw):
    base = {"text": None, "image": None, "caption": None, "detections": None, "head": None, "tail": None,
            "max_regions": None}
    return argparse.Namespace(**{**base, **kw})


def test_task_declaration():
    assert (PostTask.name, PostTask.default_method, PostTask.methods, PostTask.default_weights) == \
        ("post", "mre_ise", ("mre_ise",), "post_mre_ise_text_trio")
    assert PostTask.options == {"max_regions": 10} and PostTask.predict_options == ("max_regions",)
    parser = argparse.ArgumentParser()
    PostTask.add_cli_args(parser)
    args = parser.parse_args(["--text", "Ann met Bob", "--head", "Ann", "--tail", "Bob", "--max-regions", "4"])
    assert PostTask.cli_options(args) == {"max_regions": 4}
    assert PostTask.cli_inputs(args) == [{"text": "Ann met Bob", "pairs": [["Ann", "Bob"]]}]
    assert PostTask.cli_options(parser.parse_args([])) == {} and PostTask.cli_inputs(parser.parse_args([])) == []


def test_cli_inputs_need_head_and_tail_together_and_text():
    with pytest.raises(GraphmieError, match="E030"):
        PostTask.cli_inputs(namespace(text="Ann met Bob", head="Ann"))
    with pytest.raises(GraphmieError, match="E030"):
        PostTask.cli_inputs(namespace(head="Ann", tail="Bob"))


def test_inline_posts_with_other_pairs_get_distinct_files(nlp, tmp_path):
    out = tmp_path / "out"
    text = "Barack Obama visited Berlin with Angela Merkel ."
    first = PostTask.cli_inputs(namespace(text=text, head="Barack Obama", tail="Berlin"))
    second = PostTask.cli_inputs(namespace(text=text, head="Angela Merkel", tail="Berlin"))
    nlp.extract(first, out, progress=False)                     # two runs into one --out
    nlp.extract(second, out, progress=False)
    docs = {p.name: json.loads(p.read_text()) for p in out.glob("inline_*.json")
            if not p.name.endswith(".scene_graph.json")}
    assert len(docs) == 2
    pairs = sorted(tuple(e["text"] for e in d["entities"]) for d in docs.values())
    assert pairs == [("Angela Merkel", "Berlin"), ("Barack Obama", "Berlin")]
    assert all(d["meta"]["pairs_scored"] == 1 for d in docs.values())
    # ... and in one run, with or without a caption
    out2 = tmp_path / "out2"
    rep = nlp.extract(first + second + [dict(first[0], caption="A press conference.")], out2, progress=False)
    assert rep.to_dict()["ok"] == 3
    assert len({Path(f).name for d in rep.done for f in d["files"] if f.endswith(".scene_graph.json")}) == 3


def test_extract_real_mnre_image_with_detections_api(nlp, tmp_path):
    img = shared("mnre", "images", "train", "twitter_stream_2018_05_07_14_0_2_173.jpg")
    det = shared("mnre", "boxes", "train_detect_boxes.json")
    post = {"text": "Taylor Swift and Ed Sheeran performing at Wembley Stadium in London .", "image": str(img),
            "detections": str(det), "caption": "Two people singing on a stage in front of a crowd."}
    res = nlp.run(post)
    assert res.name.startswith("inline:") and set(res.artifacts) == {"scene_graph", "crossmodal"}
    doc = res.doc
    assert doc.meta["visual_evidence"] == ["image crops", "detections", "caption"]
    assert {e.text for e in doc.entities} >= {"Taylor Swift", "Ed Sheeran", "London"}
    # the post's entities are grounded in its regions, with provenance
    assert len(doc.groundings) == len(doc.entities)
    region_ids = {r.id for r in doc.regions}
    for g in doc.groundings:
        assert g.region is None or g.region in region_ids
        assert g.provenance.model and g.provenance.source == doc.source
    files = PostTask(nlp.task.method).render(res)
    assert set(files) == {".scene_graph.json", ".png"} and files[".png"][:4] == b"\x89PNG"


def test_extract_real_mnre_image_with_detections(tmp_path):
    from graphmie.cli import main

    img = shared("mnre", "images", "train", "twitter_stream_2018_05_07_14_0_2_173.jpg")
    det = shared("mnre", "boxes", "train_detect_boxes.json")
    out = tmp_path / "out"
    rc = main(["extract", "--task", "post", "--out", str(out), "--quiet", "--checkpoint", MULTIMODAL,
               # task options use --opt=value (the CLI's first pass would take a detached value as an input)
               "--text=Taylor Swift and Ed Sheeran performing at Wembley Stadium in London .",
               f"--image={img}", f"--detections={det}",
               "--caption=Two people singing on a stage in front of a crowd."])
    assert rc == 0
    files = {p.name for p in out.iterdir()}
    stem = next(f[:-len(".scene_graph.json")] for f in files if f.endswith(".scene_graph.json"))
    assert {f"{stem}.json", f"{stem}.ttl", f"{stem}.cypher", f"{stem}.png", "report.json"} <= files
    doc = json.loads((out / f"{stem}.json").read_text())
    assert doc["meta"]["visual_evidence"] == ["image crops", "detections", "caption"]
    assert {e["text"] for e in doc["entities"]} >= {"Taylor Swift", "Ed Sheeran", "London"}
    assert doc["meta"]["pairs_scored"] == len(doc["entities"]) * (len(doc["entities"]) - 1)
    for r in doc["relations"]:
        assert r["label"].startswith("/") and 0 < r["provenance"]["score"] <= 1
        assert "evidence: image crops+detections+caption" in r["provenance"]["model"]
    sg = json.loads((out / f"{stem}.scene_graph.json").read_text())
    kinds = {n["kind"] for n in sg["crossmodal"]["nodes"]}
    assert kinds == {"object", "attribute", "relation", "image", "region"}
    assert len([n for n in sg["visual"]["nodes"] if n["kind"] == "region"]) >= 1
    assert all(0 <= v <= 1 for v in sg["gib_node_keep"].values())


def test_extract_example_post_and_raw_image_proposals_api(nlp, tmp_path):
    img = shared("mnre", "images", "val", "twitter_stream_2018_08_07_22_0_2_129.jpg")
    post = tmp_path / "p.json"
    post.write_text(json.dumps({"text": "Barack Obama visited Berlin with Angela Merkel .", "image": str(img),
                                "pairs": [["Barack Obama", "Berlin"]]}))
    out = tmp_path / "out"
    rep = nlp.extract([post, REPO / "examples" / "posts" / "concert.json"], out, progress=False)
    assert rep.to_dict()["ok"] == 2
    doc = json.loads((out / "p.json").read_text())
    assert doc["meta"]["visual_evidence"] == ["image crops", "region proposals"]
    assert doc["meta"]["pairs_scored"] == 1 and len(doc["regions"]) >= 1
    assert len(doc["groundings"]) == 2
    ex = json.loads((out / "concert.json").read_text())
    assert ex["meta"]["pairs_scored"] == 3 and "caption" in ex["meta"]["visual_evidence"]
    assert {r["label"] for r in ex["regions"]} == {"person", "stage"}
    # max_regions bounds the proposals for a raw image
    few = nlp.run(post, max_regions=2).doc
    assert 1 <= len(few.regions) <= 2


def test_extract_example_post_and_raw_image_proposals(tmp_path):
    from graphmie.cli import main

    img = shared("mnre", "images", "val", "twitter_stream_2018_08_07_22_0_2_129.jpg")
    post = tmp_path / "p.json"
    post.write_text(json.dumps({"text": "Barack Obama visited Berlin with Angela Merkel .", "image": str(img),
                                "pairs": [["Barack Obama", "Berlin"]]}))
    out = tmp_path / "out"
    assert main(["extract", "--task", "post", str(post), str(REPO / "examples" / "posts" / "concert.json"),
                 "--out", str(out), "--quiet", "--checkpoint", MULTIMODAL]) == 0
    doc = json.loads((out / "p.json").read_text())
    assert doc["meta"]["visual_evidence"] == ["image crops", "region proposals"]
    assert doc["meta"]["pairs_scored"] == 1 and len(doc["regions"]) >= 1
    ex = json.loads((out / "concert.json").read_text())
    assert ex["meta"]["pairs_scored"] == 3 and "caption" in ex["meta"]["visual_evidence"]


def write_bad_inputs(tmp_path):
    (tmp_path / "missing_image.json").write_text(json.dumps({"text": "Hi Bob", "image": "nope.jpg"}))
    (tmp_path / "bad_image.json").write_text(json.dumps({"text": "Hi Bob", "image": "bad_image.json"}))
    (tmp_path / "empty.json").write_text(json.dumps({"text": "  "}))
    (tmp_path / "span.json").write_text(json.dumps({"text": "Hi Bob", "entities": [{"start": 3, "end": 40}]}))
    (tmp_path / "pair.json").write_text(json.dumps({"text": "Hi Bob", "pairs": [["Bob", "Alice"]]}))
    (tmp_path / "ok.json").write_text(json.dumps({"text": "Lionel Messi signed for Inter Miami .",
                                                  "caption": "A football player in a pink shirt."}))
    return {"missing_image.json": "E001", "bad_image.json": "E005", "empty.json": "E007", "span.json": "E014",
            "pair.json": "E014"}


def check_bad_inputs_report(out, expected):
    rep = json.loads((out / "report.json").read_text())
    assert rep["ok"] == 1 and rep["failed"] == 5
    assert {Path(e["input"]).name: e["code"] for e in rep["errors"]} == expected
    ok = json.loads((out / "ok.json").read_text())
    assert ok["meta"]["visual_evidence"] == ["caption"]
    assert not ok.get("groundings") and not ok.get("regions")     # no image: nothing to ground in


def test_extract_bad_inputs_fail_alone_api(nlp, tmp_path):
    expected = write_bad_inputs(tmp_path)
    out = tmp_path / "out"
    nlp.extract([tmp_path], out, progress=False)
    check_bad_inputs_report(out, expected)


def test_extract_bad_inputs_fail_alone(tmp_path):
    from graphmie.cli import main

    expected = write_bad_inputs(tmp_path)
    out = tmp_path / "out"
    assert main(["extract", "--task", "post", str(tmp_path), "--out", str(out), "--quiet"]) == 1
    check_bad_inputs_report(out, expected)


def test_cli_takes_post_options_with_spaces_in_both_spellings():
    from graphmie.cli import build_parser

    for argv in (["extract", "--task", "post", "--out", "o", "--text", "Ann met Bob", "--head", "Ann", "--tail", "Bob"],
                 ["extract", "--task=post", "--out", "o", "--text=Ann met Bob", "--head=Ann", "--tail=Bob"]):
        args = build_parser("post").parse_args(argv)
        assert args.inputs == [] and args.text == "Ann met Bob" and (args.head, args.tail) == ("Ann", "Bob")


def test_the_default_averages_three_text_only_seeds():
    res = graphmie.load("post").run({"text": "Lionel Messi signed for Inter Miami .", "caption": "A football player.",
                                     "pairs": [["Lionel Messi", "Inter Miami"]]})
    doc = res.doc
    assert doc.meta["relation_model_members"] == ["post_mre_ise_text_trio", "post_mre_ise_text",
                                                  "post_mre_ise_text_s14"]
    assert doc.meta["pairs_scored"] == 1 and "consistency_gate" not in doc.meta   # no gate: the caption is not read
    assert [r.label for r in doc.relations] == ["/per/org/member_of"]
    for r in doc.relations:
        assert r.provenance.model.endswith("(evidence: text)") and r.provenance.evidence == ("text",)
