"""The Ray engine gives the local engine's files, byte for byte, names included; a killed worker
is restarted and its batch retried with every output exactly once; a bad input fails alone with
the local error; the store fed through Ray equals the local one. One local Ray instance (2 CPUs)
serves the whole module."""
import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import REPO, SHARED_DATA

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'graphmie[ray]')")
pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'graphmie[ray]')")

import graphmie  # noqa: E402
from graphmie.api import Pipeline  # noqa: E402
from graphmie.cli import main  # noqa: E402
from graphmie.scale import ray_extract, start_local, stop_local  # noqa: E402

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def local_ray():
    if ray.is_initialized():
        pytest.skip("a Ray instance is already connected in this process")
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    start_local(num_cpus=2, runtime_env={"env_vars": {"PYTHONPATH": path}})   # workers import ray_crash_task
    node = ray.nodes()[0]
    assert node["NodeManagerAddress"] == "127.0.0.1"
    yield
    stop_local()


def files_of(folder: Path) -> dict[str, bytes]:
    """Every output file but report.json (its paths name the folder); no leftover parts."""
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "report.json"}


def report_of(folder: Path) -> dict:
    rep = json.loads((folder / "report.json").read_text())
    for d in rep["outputs"]:
        d["files"] = [Path(f).name for f in d["files"]]
    for d in rep["errors"]:
        d.pop("traceback", None)
    return rep


def assert_same(local: Path, other: Path) -> None:
    a, b = files_of(local), files_of(other)
    assert sorted(a) == sorted(b)
    assert [n for n in a if a[n] != b[n]] == []
    assert report_of(local) == report_of(other)


@pytest.fixture(scope="module")
def post_nlp():
    return graphmie.load("post")


@pytest.fixture(scope="module")
def post_inputs(tmp_path_factory):
    """Posts: a file, a copy with the same stem, inline posts, and bad ones among them (one of them
    with the stem a later good input gets: a failure takes no name)."""
    root = tmp_path_factory.mktemp("posts")
    post = json.loads((REPO / "examples/posts/concert.json").read_text())
    post["image"] = str(REPO / "examples/posts/concert.png")
    (root / "bad").mkdir()
    (root / "bad" / "concert.json").write_text('{"text": "broken')
    (root / "copy").mkdir()
    (root / "copy" / "concert.json").write_text(json.dumps(post))
    return [str(root / "bad" / "concert.json"), str(REPO / "examples/posts/concert.json"),
            {"text": 5}, str(root / "copy" / "concert.json"),
            {"text": "Taylor Swift met Ed Sheeran in London ."},
            str(root / "missing.json"),
            {"text": "Ed Sheeran played Wembley Stadium .", "pairs": [["Ed Sheeran", "Wembley Stadium"]]}]


@pytest.fixture(scope="module")
def post_runs(local_ray, post_nlp, post_inputs, tmp_path_factory):
    from kg_export.store import OxigraphStore

    root = tmp_path_factory.mktemp("post_runs")
    nlp, out = post_nlp, {}
    for engine in ("local", "ray"):
        with OxigraphStore(root / f"store_{engine}") as store:
            if engine == "ray":
                ray_extract(nlp, post_inputs, root / engine, store=store, progress=False, workers=2, batch_size=2)
            else:
                nlp.extract(post_inputs, root / engine, store=store, progress=False)
        out[engine] = root / engine
        out[f"store_{engine}"] = root / f"store_{engine}"
    return out


def test_posts_ray_equals_local(post_runs):
    assert_same(post_runs["local"], post_runs["ray"])
    rep = report_of(post_runs["ray"])
    assert [d["files"][0] for d in rep["outputs"]][:2] == ["concert.json", "concert_2.json"]


def test_bad_input_fails_alone(post_runs, post_inputs):
    local, remote = report_of(post_runs["local"]), report_of(post_runs["ray"])
    assert remote["ok"] == 4 and remote["failed"] == 3
    assert [e["code"] for e in remote["errors"]] == ["E003", "E019", "E001"]
    assert remote["errors"] == local["errors"]   # the same coded error and message as locally


def test_store_through_ray_equals_local(post_runs):
    from kg_export.store import OxigraphStore

    quads = {}
    for engine in ("local", "ray"):
        with OxigraphStore(post_runs[f"store_{engine}"], read_only=True) as store:
            quads[engine] = sorted(str(q) for q in store.store)
    assert quads["local"] and quads["local"] == quads["ray"]


def test_forms_ray_equals_local_cli(local_ray, tmp_path, capsys):
    """Through the command line, the Ray run reading its inputs from a listing file."""
    forms = [REPO / "examples/forms/registration_form.json"]
    funsd = SHARED_DATA / "funsd/training_data/annotations"
    if funsd.is_dir():
        forms += sorted(funsd.glob("*.json"))[:3]
    (tmp_path / "again").mkdir()
    forms.append(shutil.copy(forms[0], tmp_path / "again" / "registration_form.json"))
    listing = tmp_path / "inputs.txt"
    listing.write_text("# forms\n" + "".join(f"{p}\n" for p in forms))
    base = ["extract", "--task", "form", "--quiet"]
    assert main(base + [str(p) for p in forms] + ["--out", str(tmp_path / "local")]) == 0
    assert main(base + [str(listing), "--out", str(tmp_path / "ray"), "--engine", "ray", "--workers", "2",
                        "--batch-size", "2"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["ok"] == len(forms)
    assert_same(tmp_path / "local", tmp_path / "ray")
    assert (tmp_path / "ray" / "registration_form_2.png").exists()


def test_killed_worker_every_output_once(local_ray, post_nlp, tmp_path):
    from ray_crash_task import CrashOncePostTask

    post = json.loads((REPO / "examples/posts/concert.json").read_text())
    post["image"] = str(REPO / "examples/posts/concert.png")
    text, inputs = post["text"], []
    for i in range(5):
        post["text"] = text.replace("last night", f"on night {i}")
        name = "crash_post.json" if i == 2 else f"post_{i}.json"
        (tmp_path / "in" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_text(json.dumps(post))
        inputs.append(str(tmp_path / "in" / name))
    post_nlp.extract(inputs, tmp_path / "local", progress=False)
    nlp = Pipeline(CrashOncePostTask(post_nlp.task.method))     # its workers load it themselves
    rep = ray_extract(nlp, inputs, tmp_path / "ray", progress=False, workers=2, batch_size=2)
    assert (tmp_path / "in" / "crash_post.killed").exists()      # the worker really was killed once
    assert rep.failed == [] and [d["input"] for d in rep.done] == inputs   # each input once, in order
    assert_same(tmp_path / "local", tmp_path / "ray")              # no duplicate, none missing, no leftovers


def test_engine_options_need_ray_engine(tmp_path, capsys):
    assert main(["extract", "--task", "post", "--text", "A post .", "--out", str(tmp_path), "--workers", "2"]) == 2
    assert "E030" in capsys.readouterr().err
