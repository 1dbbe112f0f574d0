"""SequentialElementAttention: the previous-step mask, its own random stream, stopped gradients."""
from __future__ import annotations

import torch

from graphmie.nn.seq_attention import SequentialElementAttention, previous_step_mask


def test_seq_attention_shapes_and_mask():
    torch.manual_seed(0)
    layer = SequentialElementAttention(16, heads=4, dropout=0.0).eval()
    step = torch.tensor([0, 0, 1, 1, 1, 2, 0, 1])
    batch = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1])
    x = torch.randn(8, 16)
    y, att = layer(x, step, batch, return_attention=True)
    assert y.shape == (8, 16) and att.shape == (4, 8, 8)
    mask = previous_step_mask(step, batch)
    assert torch.all(att[:, ~mask] == 0)                       # only the previous step of the same document
    assert torch.allclose(att.sum(-1)[:, [2, 3, 4, 5, 7]], torch.ones(4, 5), atol=1e-5)
    assert torch.all(att.sum(-1)[:, [0, 1, 6]] == 0)           # first steps attend to nothing
    # perturbing a step-0 node changes step-1 nodes only (not step 2, not the other document)
    x2 = x.clone()
    x2[0] += 5.0
    y2 = layer(x2, step, batch)
    changed = (y2 - y).abs().sum(-1) > 1e-6
    assert changed.tolist() == [True, False, True, True, True, False, False, False]


def test_seq_attention_leaves_global_rng_and_can_stop_gradients():
    torch.manual_seed(0)
    layer = SequentialElementAttention(16, heads=4, dropout=0.5, detach_context=True).train()
    step = torch.tensor([0, 0, 1, 1, 2])
    x = torch.randn(5, 16, requires_grad=True)
    torch.manual_seed(1)
    y1 = layer(x, step)
    after = torch.rand(3)
    torch.manual_seed(1)
    assert torch.equal(torch.rand(3), after)                   # its dropout drew nothing from the global stream
    assert not torch.allclose(layer(x, step), y1)              # ... yet it is active (own generator)
    # detach_context: gradients reach x only through the residual path, never through the attention
    layer.eval()
    y = layer(x, step)
    (g_full,) = torch.autograd.grad(y[2:].sum(), x)
    assert torch.all(g_full[:2] == 0)                          # step-0 nodes feed step 1 only as keys/values
    layer.detach_context = False
    (g_att,) = torch.autograd.grad(layer(x, step)[2:].sum(), x)
    assert g_att[:2].abs().sum() > 0
