"""The neural topic model and its vocabulary."""
import torch

from graphmie.nn.topic import NeuralTopicModel


def test_topic_model_loss_and_empty_docs():
    ntm = NeuralTopicModel(vocab_size=30, n_topics=4, dim_out=8)
    x = ntm.bow([[1, 2, 2, 5], [], [29]])
    assert x[0, 2] == 2 and x[1].sum() == 0
    feat, theta, loss = ntm(x)
    assert feat.shape == (3, 12) and torch.allclose(theta.sum(-1), torch.ones(3), atol=1e-5)
    assert float(loss) > 0 and torch.all(feat[1] == 0)     # an empty bag of words gives no topic feature


def test_topic_vocabulary_is_independent_of_hash_seed():
    import subprocess
    import sys

    code = ("from graphmie.nn.topic import build_vocab;"
            "print(build_vocab(['bread milk cheese', 'cheese milk bread wine', 'apple pear plum', 'plum pear apple'] * 3,"
            " ['river lake', 'lake river'] * 3, 4, 1, 1))")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**__import__("os").environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in (1, 2, 3)}
    assert len(outs) == 1 and outs.pop().strip() == "['apple', 'bread', 'cheese', 'milk', 'v:lake']"
