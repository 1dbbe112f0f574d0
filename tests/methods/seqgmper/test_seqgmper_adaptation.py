"""Recipe adaptation and the tuned encoder: pre-training is used (weights change, the wikiHow-FG
heads of the separate-heads model untouched by it), a floor on a wikiHow-FG fold, joint training,
the LoRA word encoder, and ``graphmie train`` with the recipes config end to end."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import REPO, shared
from graphmie.data.wikihow_fg import read_folder
from graphmie.errors import GraphmieError
from graphmie.evaluation.procedure import score
from graphmie.methods.seqgmper.samples import Featurizer, predict_example, prepare, word_features
from graphmie.methods.seqgmper.train import build_model, pretrain, recipe_examples, train_model

FIXTURE = REPO / "tests" / "fixtures" / "wikihow_fg"
SMALL = {"hidden": 32}


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    feat = Featurizer()
    exs = [prepare(d, feat) for d in read_folder(shared("wikihow_fg", "data"))]
    dev = shared("recipe_fg_en", "Parser", "dev.conllu")                  # 30 recipes
    recipes = {labels: recipe_examples(dev, {"labels": labels}, feat) for labels in ("mapped", "separate")}
    feat.save()
    return exs, recipes


def _equal(a: dict, b: dict, prefix: str = "") -> bool:
    return all(torch.equal(a[k], b[k]) for k in a if k.startswith(prefix))


def test_pretraining_is_used_and_floor_on_a_fold(data):
    exs, recipes = data
    ad = {"mode": "pretrain", "labels": "mapped", "epochs": 1}
    torch.manual_seed(0)
    fresh = build_model(SMALL, ad).state_dict()
    state = pretrain(recipes["mapped"][:15], SMALL, {"seed": 0}, ad)
    assert set(state) == set(fresh) and not _equal(state, fresh)          # pre-training moved the weights
    tiny = {"epochs": 1, "seed": 0}
    adapted, _ = train_model(exs[:3], SMALL, tiny, adaptation=ad, pretrained=state)
    plain, _ = train_model(exs[:3], SMALL, tiny)
    assert not _equal(adapted.state_dict(), plain.state_dict())           # ... and fine-tuning starts from them
    small = recipes["mapped"][:3]
    again, _ = train_model(exs[:3], SMALL, tiny, adaptation=ad, recipes=small)
    given, _ = train_model(exs[:3], SMALL, tiny, adaptation=ad, pretrained=pretrain(small, SMALL, tiny, ad))
    assert _equal(again.state_dict(), given.state_dict())                 # pre-training in place = the given state
    train, test = exs[::4], exs[1::8][:8]                                 # 24 / 8 articles, disjoint
    model, _ = train_model(train, SMALL, {"epochs": 6, "lr": 3e-3, "seed": 0}, adaptation=ad, pretrained=state)
    r = score([predict_example(model, e) for e in test], [e.doc for e in test])
    assert r["entity_f1"] > 0.45 and r["flow_f1"] > 0.1, r


def test_separate_heads(data):
    exs, recipes = data
    ad = {"mode": "pretrain", "labels": "separate", "epochs": 1}
    torch.manual_seed(0)
    fresh = build_model(SMALL, ad).state_dict()
    torch.manual_seed(0)
    plain = build_model(SMALL).state_dict()
    assert set(plain) < set(fresh) and _equal(plain, fresh)                # the shared part starts the same
    state = pretrain(recipes["separate"][:8], SMALL, {"seed": 0}, ad)
    for prefix in ("tagger.", "type_emb.", "pair.", "no_flow."):          # the wikiHow-FG heads: untouched
        assert _equal({k: v for k, v in fresh.items() if k.startswith(prefix)}, state)
    assert not _equal(fresh, state, "src.") and not _equal(fresh, state, "gats.")
    model, losses = train_model(exs[:6], SMALL, {"epochs": 1, "seed": 0}, adaptation=ad, pretrained=state)
    assert len(losses) == 1 and model.src is not None


def test_joint_training_draws_recipes(data):
    exs, recipes = data
    ad = {"mode": "joint", "labels": "separate", "recipes_per_epoch": 3, "recipe_weight": 0.5}
    model, losses = train_model(exs[:4], SMALL, {"epochs": 2, "seed": 1}, adaptation=ad, recipes=recipes["separate"])
    plain, _ = train_model(exs[:4], SMALL, {"epochs": 2, "seed": 1})
    assert len(losses) == 2 and not _equal(plain.state_dict(), model.state_dict())
    with pytest.raises(ValueError):
        train_model(exs[:4], SMALL, {"epochs": 1}, adaptation={"mode": "joint"})
    with pytest.raises(GraphmieError) as e:
        build_model(SMALL, {"mode": "finetune"})
    assert e.value.code == "E022"


def test_lora_encoder_starts_frozen_and_trains_only_adapters(data):
    exs, _ = data
    torch.manual_seed(0)
    model = build_model(SMALL, encoder={"tune": "lora", "rank": 2}).eval()
    ex = exs[0]
    with torch.no_grad():
        x = word_features(model, ex)
    assert x.shape == ex.text_x.shape and torch.allclose(x, ex.text_x, atol=2e-2)   # B = 0: the frozen features
    state = model.trainable_state()
    assert all(not k.startswith("word_encoder.") or "lora_" in k for k in state)
    assert sum(v.numel() for k, v in state.items() if "lora_" in k) == 2 * 41472
    tuned, losses = train_model(exs[:2], SMALL, {"epochs": 1, "seed": 0}, encoder={"tune": "lora", "rank": 2,
                                                                                  "epochs": 1})
    assert len(losses) == 2
    lora_b = [v for k, v in tuned.trainable_state().items() if k.endswith("lora_b")]
    assert lora_b and any(float(v.abs().sum()) > 0 for v in lora_b)


def test_train_recipes_config_end_to_end(tmp_path):
    from graphmie.config import load_config
    from graphmie.tasks.procedure import ProcedureTask

    cfg = load_config(REPO / "configs" / "procedure_seqgmper_recipes.toml", {
        "data.path": str(shared("wikihow_fg", "data")), "data.dev_fraction": 0.85, "training.epochs": 1,
        "model.hidden": 32, "adaptation.recipes": str(shared("recipe_fg_en", "Parser", "dev.conllu")),
        "adaptation.epochs": 1, "adaptation.limit": 6, "adaptation.labels": "separate", "encoder.epochs": 1})
    metrics = ProcedureTask.train(cfg, tmp_path)
    assert metrics["train_documents"] == 14 and metrics["recipe_documents"] == 6
    side = json.loads((tmp_path / "model.json").read_text())
    assert side["config"]["adaptation"]["mode"] == "pretrain" and side["record"]["recipes_skipped"] == []
    assert side["config"]["encoder"]["tune"] == "lora"                    # the shipped recipe tunes MiniLM
    m = ProcedureTask.evaluate(FIXTURE, None, tmp_path)                   # reloads with the recipe heads
    assert m["documents"] == 1 and m["gold_flows"] == 5
