"""GIB masks and the Gaussian bottleneck on hand-made cases."""
import math

import pytest
import torch

from graphmie.nn.gib import GaussianBottleneck, GIBMasks, bernoulli_kl, relaxed_bernoulli


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
