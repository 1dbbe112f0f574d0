"""Training the grounding head (graphmie.methods.hindex.train) with simulated candidates, through the Trainer."""
import json
import random
import subprocess
import sys

from conftest import REPO, shared
from graphmie.document import Box
from graphmie.engine.checkpoint import load_checkpoint
from graphmie.methods.hindex import HIndex
from graphmie.methods.hindex.train import N_CANDIDATES, simulate_candidates


def test_simulated_candidates_are_seeded_inside_the_image_and_hold_jittered_gold():
    gold = [Box(50, 40, 250, 200)]
    a = simulate_candidates((400, 300), gold, random.Random(3))
    b = simulate_candidates((400, 300), gold, random.Random(3))
    assert [c.to_list() for c in a] == [c.to_list() for c in b] and len(a) == N_CANDIDATES
    assert all(0 <= c.x0 <= c.x1 <= 400 and 0 <= c.y0 <= c.y1 <= 300 for c in a)
    assert sum(c.iou(gold[0]) >= 0.5 for c in a) >= 2


def test_shipped_head_loads_through_the_checkpoint():
    ck = load_checkpoint(None, "entity_grounding", method="hindex")
    m = HIndex.from_checkpoint(ck)
    assert not m.head.use_visual and m.head.vis is None and ck.config["training"]["epochs"] == 6
    assert ck.record["command"].startswith("graphmie train configs/entity_hindex.toml")
    assert "command_as_run" in ck.record and m.version == "2026-11-24"


def test_train_config_one_epoch_writes_a_loadable_checkpoint(tmp_path):
    root = shared("gmner")
    r = subprocess.run([sys.executable, "-m", "graphmie", "train", "configs/entity_hindex.toml", "--out",
                        str(tmp_path / "run"), "--set", "training.epochs=1", "--set", "data.limit=300",
                        "--set", f"data.root=\"{root}\""], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert 0.0 <= m["random_candidate"] <= 1.0 and m["candidates_per_entity"] == N_CANDIDATES
    assert m["top1_iou50"] > m["random_candidate"]                   # one epoch already beats chance
    ck = load_checkpoint(tmp_path / "run", "unused", method="hindex")
    assert ck.config["data"]["limit"] == 300 and ck.record["dev_metrics"] == m and len(ck.record["history"]) == 1
    assert (tmp_path / "run" / "run.json").exists()
    from graphmie.grounding import Grounder

    assert Grounder.load(tmp_path / "run").method.ckpt.path == tmp_path / "run" / "model.safetensors"
