"""GIB masks, topic model and the MNRE metric on hand-made cases."""
import math

import pytest
import torch

from graphmie.evaluation.mre import mre_scores
from graphmie.nn.gib import GaussianBottleneck, GIBMasks, bernoulli_kl, relaxed_bernoulli
from graphmie.nn.topic import NeuralTopicModel


def test_relaxed_bernoulli_range_and_temperature():
    torch.manual_seed(0)
    logits = torch.randn(2000) * 2
    for tau in (0.1, 0.5, 2.0):
        m = relaxed_bernoulli(logits, tau, training=True)
        assert float(m.min()) >= 0.0 and float(m.max()) <= 1.0
    # a low temperature gives near-binary masks, a high one soft masks
    hard = relaxed_bernoulli(logits, 0.05, training=True)
    soft = relaxed_bernoulli(logits, 5.0, training=True)
    near_binary = lambda m: float(((m < 0.05) | (m > 0.95)).float().mean())
    assert near_binary(hard) > 0.9 > near_binary(soft)
    # at evaluation the mask is the keep-probability itself (deterministic)
    assert torch.equal(relaxed_bernoulli(logits, 0.5, training=False), torch.sigmoid(logits))
    # the sample mean follows the Bernoulli probability
    big = torch.full((20000,), 1.0)
    assert abs(float((relaxed_bernoulli(big, 0.1) > 0.5).float().mean()) - 1 / (1 + math.exp(-1))) < 0.02


def test_bernoulli_kl_sign_and_zero():
    assert float(bernoulli_kl(torch.full((5,), 0.7), 0.7)) == pytest.approx(0.0, abs=1e-6)
    assert float(bernoulli_kl(torch.tensor([0.1, 0.9]), 0.5)) > 0
    assert float(bernoulli_kl(torch.tensor([]), 0.5)) == 0.0
    # further from the prior -> larger
    assert float(bernoulli_kl(torch.tensor([0.99]), 0.5)) > float(bernoulli_kl(torch.tensor([0.6]), 0.5))


def test_gib_masks_shapes_pair_conditioning_and_gradients():
    torch.manual_seed(0)
    gib = GIBMasks(dim=8, edge_dim=4, tau=0.5, prior=0.7)
    x = torch.randn(5, 8, requires_grad=True)
    ei = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    ea = torch.randn(4, 4)
    batch = torch.tensor([0, 0, 0, 1, 1])
    pair = torch.randn(2, 8)
    nm, em, kl = gib(x, ei, ea, pair, batch)
    assert nm.shape == (5,) and em.shape == (4,)
    assert float(nm.min()) >= 0 and float(nm.max()) <= 1 and float(kl) >= 0
    (nm.sum() + em.sum() + kl).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    gib.eval()
    nm1, em1, _ = gib(x, ei, ea, pair, batch)
    nm2, em2, _ = gib(x, ei, ea, pair * -3, batch)          # another entity pair -> other masks
    assert not torch.allclose(nm1, nm2) and not torch.allclose(em1, em2)
    assert torch.equal(nm1, gib(x, ei, ea, pair, batch)[0])  # deterministic at eval


def test_gaussian_bottleneck_kl():
    gb = GaussianBottleneck(4, 3)
    torch.nn.init.zeros_(gb.mu.weight); torch.nn.init.zeros_(gb.mu.bias)
    torch.nn.init.zeros_(gb.logvar.weight); torch.nn.init.zeros_(gb.logvar.bias)
    z, kl = gb(torch.randn(6, 4))
    assert float(kl) == pytest.approx(0.0, abs=1e-6)        # q == prior
    torch.nn.init.constant_(gb.mu.bias, 1.0)
    gb.eval()
    z, kl = gb(torch.randn(6, 4))
    assert float(kl) == pytest.approx(1.5, abs=1e-5) and torch.allclose(z, torch.ones(6, 3))


def test_topic_model_loss_and_empty_docs():
    ntm = NeuralTopicModel(vocab_size=30, n_topics=4, dim_out=8)
    x = ntm.bow([[1, 2, 2, 5], [], [29]])
    assert x[0, 2] == 2 and x[1].sum() == 0
    feat, theta, loss = ntm(x)
    assert feat.shape == (3, 12) and torch.allclose(theta.sum(-1), torch.ones(3), atol=1e-5)
    assert float(loss) > 0 and torch.all(feat[1] == 0)     # an empty bag of words gives no topic feature


def test_mre_metric_hand_cases():
    gold = ["None", "/per/loc/place_of_birth", "/per/per/peer", "None", "/org/loc/locate_at"]
    pred = ["None", "/per/loc/place_of_birth", "/per/org/member_of", "/per/per/peer", "None"]
    s = mre_scores(pred, gold)
    # tp=1; predicted positives=3; gold positives=3
    assert s["precision"] == pytest.approx(1 / 3) and s["recall"] == pytest.approx(1 / 3)
    assert s["f1"] == pytest.approx(1 / 3) and s["accuracy"] == pytest.approx(2 / 5)
    assert mre_scores(["None"] * 3, ["None"] * 3) == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 1.0,
                                                      "tp": 0, "n_pred": 0, "n_gold": 0, "n": 3}
    perfect = mre_scores(gold, gold)
    assert perfect["f1"] == 1.0 and perfect["accuracy"] == 1.0
    with pytest.raises(ValueError):
        mre_scores(["None"], [])


def test_topic_vocabulary_is_independent_of_hash_seed():
    import subprocess
    import sys

    code = ("from graphmie.nn.topic import build_vocab;"
            "print(build_vocab(['bread milk cheese', 'cheese milk bread wine', 'apple pear plum', 'plum pear apple'] * 3,"
            " ['river lake', 'lake river'] * 3, 4, 1, 1))")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**__import__("os").environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in (1, 2, 3)}
    assert len(outs) == 1 and outs.pop().strip() == "['apple', 'bread', 'cheese', 'milk', 'v:lake']"


def test_lora_post_model_saves_adapters_not_frozen_layers():
    from transformers import BertConfig, BertModel

    from graphmie.nn.mre_ise import PostREModel

    bert = BertModel(BertConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
                                vocab_size=50))
    m = PostREModel(top_layers=bert.encoder.layer, hidden=32, n_labels=3, use_graph=False, use_topics=False,
                    lora_layers=2, lora_rank=4)
    state = m.trainable_state()
    assert any(k.startswith("top.0.") and ".lora_a" in k for k in state)
    assert not any(k.startswith(("top.0.", "top.1.")) and ".lora_" not in k for k in state)   # frozen: not saved
    assert any(k.startswith("top.2.") for k in state)                                         # fully tuned
    frozen = [n for n, p in m.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith(("top.0.", "top.1.")) for n in frozen)
    h = torch.randn(2, 5, 32)
    logits, _, _ = m(h, torch.ones(2, 5, dtype=torch.long), torch.tensor([0, 1]), torch.tensor([2, 3]))
    assert logits.shape == (2, 3)
