"""The extract loop and the Python API on a minimal task: failures stay alone, names never collide."""
import json

import pytest

from graphmie.api import Pipeline, input_name
from graphmie.document import Document, Entity, Provenance
from graphmie.engine.method import Result
from graphmie.errors import GraphmieError
from graphmie.io import read_json
from graphmie.tasks.base import Task


class EchoTask(Task):
    """Reads JSON {"text": ...} (or a dict), tags capitalised words as entities, renders a .txt."""

    name = "echo"
    options = {"upper_only": False}
    predict_options = ("upper_only",)

    def __init__(self):
        self.seen_options = []

    def read(self, item, options):
        d = item if isinstance(item, dict) else read_json(item)
        src = input_name(item)
        return Document(id=src.rsplit("/", 1)[-1], kind="post", source=src, text=d["text"])

    def predict(self, doc, options):
        self.seen_options.append(dict(options))
        for i, w in enumerate(doc.text.split()):
            if w[:1].isupper() and (not options["upper_only"] or w.isupper()):
                doc.entities.append(Entity(f"e{i}", w, "X", provenance=Provenance(doc.source, model="echo")))
        return Result(doc, artifacts={"words": len(doc.text.split())})

    def render(self, result):
        return {".txt": result.doc.text.encode(), ".words.json": json.dumps(result.artifacts).encode()}


def test_extract_loop_isolates_failures_and_reports(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"text": "Ann met Bob"}))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    rep = Pipeline(EchoTask()).extract([broken, tmp_path / "absent.json", good], tmp_path / "out", progress=False)
    assert len(rep.done) == 1 and [f["code"] for f in rep.failed] == ["E003", "E001"]
    out = json.loads((tmp_path / "out" / "good.json").read_text())
    assert [e["text"] for e in out["entities"]] == ["Ann", "Bob"] and out["meta"]["task"] == "echo"
    assert (tmp_path / "out" / "good.txt").read_text() == "Ann met Bob"
    assert not (tmp_path / "out" / "broken.json").exists()
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["ok"] == 1 and report["failed"] == 2 and "broken.json" in report["errors"][0]["error"]


def test_no_output_overwrites_another_inputs(tmp_path):
    """An input named like another input's extra file, or like the report, gets its own names."""
    names = ["x.json", "x.words.json", "report.json", "sub/x.json"]
    for n in names:
        (tmp_path / "in" / n).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / n).write_text(json.dumps({"text": f"Input {n}"}))
    nlp = Pipeline(EchoTask())
    assert len(nlp.inputs([tmp_path / "in"])) == 3               # a folder's report.json is never an input
    rep = nlp.extract([tmp_path / "in", tmp_path / "in" / "report.json"], tmp_path / "out", progress=False)
    assert rep.to_dict()["ok"] == 4
    written = [f for d in rep.done for f in d["files"]]
    assert len(written) == len(set(written))                       # every file written once
    texts = {json.loads(open(f).read())["source"] for f in written if f.endswith(".json") and
             not f.endswith(".words.json")}
    assert texts == {str(tmp_path / "in" / n) for n in names}
    assert json.loads((tmp_path / "out" / "report.json").read_text())["ok"] == 4
    assert {(tmp_path / "out" / f).read_text() for f in ("x.txt", "x_2.txt")} == {"Input sub/x.json", "Input x.json"}


def test_folder_inputs_are_expanded_recursively_in_sorted_order(tmp_path):
    for n in ["b.json", "a/c.json", "a/ignored.txt", ".hidden.json"]:
        (tmp_path / n).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / n).write_text(json.dumps({"text": "Hi"}))
    nlp = Pipeline(EchoTask())
    assert nlp.inputs([tmp_path]) == [tmp_path / "a" / "c.json", tmp_path / "b.json"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(GraphmieError, match=r"\[E007\].*empty"):
        nlp.inputs([tmp_path / "empty"])


def test_api_call_pipe_options_and_inline_inputs(tmp_path):
    task = EchoTask()
    nlp = Pipeline(task, {"upper_only": True})
    doc = nlp({"text": "NASA and Ann"})
    assert [e.text for e in doc.entities] == ["NASA"] and doc.source.startswith("inline:")
    assert [e.text for e in nlp({"text": "NASA and Ann"}, upper_only=False).entities] == ["NASA", "Ann"]
    assert nlp.options == {"upper_only": True}                   # a call's options do not stick
    # distinct inline inputs get distinct stable names; the same input the same name
    a, b = {"text": "Ann", "pairs": [["A", "B"]]}, {"text": "Ann", "pairs": [["B", "A"]]}
    assert input_name(a) != input_name(b) and input_name(a) == input_name(dict(a))
    docs = list(nlp.pipe([{"text": "A B"}, {"text": "C"}, {"text": "D E F"}], batch_size=2))
    assert [len(d.entities) for d in docs] == [2, 1, 3]
    res = list(nlp.pipe([{"text": "A"}, tmp_path / "missing.json"], errors="return", artifacts=True))
    assert res[0].artifacts == {"words": 1} and isinstance(res[1].error, GraphmieError)
    with pytest.raises(GraphmieError, match="E001"):
        list(nlp.pipe([tmp_path / "missing.json"]))
    with pytest.raises(GraphmieError, match=r"\[E020\].*'upper'.*did you mean 'upper_only'"):
        Pipeline(task, {"upper": True})
    with pytest.raises(GraphmieError, match=r"\[E021\]"):
        nlp({"text": "x"}, upper_only="yes")
