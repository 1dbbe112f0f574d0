"""The procedure task: the shipped weights through the API and the command line (evaluate, extract),
a step image, options."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

import graphmie
from conftest import REPO
from graphmie.data.wikihow_fg import FLOW_LABELS
from graphmie.errors import GraphmieError
from graphmie.methods.seqgmper.graph import StepGraph
from graphmie.tasks.procedure import ProcedureTask

FIXTURE = REPO / "tests" / "fixtures" / "wikihow_fg"
EXAMPLE = REPO / "examples" / "procedures" / "fried_egg.json"


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "graphmie", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def _check_fixture_figures(m):
    assert {"entity_f1", "flow_f1", "flow_f1_unlabelled"} <= set(m) and m["documents"] == 1
    assert m["gold_entities"] == 6 and m["gold_flows"] == 5
    assert m["entity_f1"] > 0.5                                  # trained weights read this easy article well


def test_evaluate_api_fixture():
    m = ProcedureTask.evaluate(FIXTURE)
    _check_fixture_figures(m)
    assert m["files_failed"] == 0


def test_evaluate_cli_fixture():
    r = _cli("evaluate", "--task", "procedure", "--data", str(FIXTURE))
    assert r.returncode == 0, r.stderr[-2000:]
    _check_fixture_figures(json.loads(r.stdout.strip().splitlines()[-1]))


def _check_example_output(out, extra_files):
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
    assert all(p.exists() for p in extra_files)


def test_extract_example_api(tmp_path):
    nlp = graphmie.load("procedure")
    report = nlp.extract([EXAMPLE], tmp_path)
    assert report.to_dict()["failed"] == 0
    _check_example_output(json.loads((tmp_path / "fried_egg.json").read_text()),
                          [tmp_path / "fried_egg.ttl", tmp_path / "fried_egg.cypher"])


def test_extract_example(tmp_path):
    r = _cli("extract", str(EXAMPLE), "--task", "procedure", "--out", str(tmp_path), "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    _check_example_output(json.loads((tmp_path / "fried_egg.json").read_text()),
                          [tmp_path / "fried_egg.ttl", tmp_path / "fried_egg.cypher"])


def test_image_path_with_generated_image(tmp_path):
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (120, 90), "white")
    ImageDraw.Draw(im).rectangle((20, 20, 70, 60), fill="red")
    im.save(tmp_path / "bowl.png")
    (tmp_path / "p.json").write_text(json.dumps({"steps": [{"text": "Pour the milk into a bowl."},
                                                           {"text": "Whisk the milk.", "image": "bowl.png"}]}))
    res = graphmie.load("procedure").run(tmp_path / "p.json", max_regions=4)
    doc = res.doc
    regs = [r for r in doc.regions if r.page == 1]
    assert regs and regs[0].box.to_list() == [0, 0, 120, 90] and all(r.provenance for r in regs)
    assert len(regs) <= 1 + 4
    assert doc.meta["step_graph"]["image_nodes"] == len(regs)
    assert doc.meta["step_graph"]["text_nodes"] == len(doc.tokens)
    g = res.artifacts["step_graph"]
    assert isinstance(g, StepGraph) and g.node_kind.count("image") == len(regs)
    for gr in doc.groundings:                          # only step-1 object/tool entities are grounded
        e = doc.entity(gr.entity)
        assert e.step == 1 and e.label in ("I", "T") and gr.provenance.page == 1
        assert gr.region is None or gr.region in {r.id for r in regs}


def test_missing_image_option(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"steps": [{"text": "Cut the bread.", "image": "gone.png"}]}))
    with pytest.raises(GraphmieError) as e:
        graphmie.load("procedure")(tmp_path / "p.json")
    assert e.value.code == "E001"
    doc = graphmie.load("procedure", missing_images="ignore")(tmp_path / "p.json")
    assert doc.meta["missing_images"][0]["image"] == "gone.png" and doc.entities
    with pytest.raises(GraphmieError) as e:
        graphmie.load("procedure", max_region=3)
    assert e.value.code == "E020" and "max_regions" in str(e.value)
    with pytest.raises(GraphmieError) as e:
        graphmie.load("procedure").run(tmp_path / "p.json", missing_images="ignore", max_regions=-1)
    assert e.value.code == "E009"


def test_cli_options():
    ap = argparse.ArgumentParser()
    ProcedureTask.add_cli_args(ap.add_argument_group("procedure"))
    assert ProcedureTask.cli_options(ap.parse_args([])) == {}
    args = ap.parse_args(["--missing-images", "ignore", "--max-regions", "3"])
    assert ProcedureTask.cli_options(args) == {"missing_images": "ignore", "max_regions": 3}
