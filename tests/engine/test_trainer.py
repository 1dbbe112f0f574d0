"""The one training loop: schedules, clipping, best-epoch selection, progress and history."""
import pytest
import torch

from graphmie.engine.trainer import Trainer
from graphmie.errors import GraphmieError


def _data(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    return x, x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3


def _fit(**kw):
    x, y = _data()
    tr = Trainer(progress=False, log=lambda s: None, **{"epochs": 20, "seed": 1, **kw})
    tr.seed_everything()
    net = torch.nn.Linear(3, 1)
    res = tr.fit(net, [{"params": net.parameters(), "lr": 0.05}],
                 batches=lambda rng, ep: [sorted(rng.sample(range(64), 16)) for _ in range(4)],
                 step=lambda idx: ((net(x[idx]).squeeze(-1) - y[idx]) ** 2).mean(), steps_per_epoch=4,
                 evaluate=lambda: {"mse": float(((net(x).squeeze(-1) - y) ** 2).mean())},
                 score=lambda m: -m["mse"])
    return net, res


def test_fit_learns_and_is_reproducible():
    net, res = _fit(schedule="linear", weight_decay=0.0)
    assert res.history[-1]["mse"] < 0.05 * res.history[0]["mse"] and len(res.history) == 20
    net2, res2 = _fit(schedule="linear", weight_decay=0.0)
    assert torch.equal(net.weight, net2.weight)                     # same seed, same result
    _, res3 = _fit(schedule="onecycle", warmup=0.1)
    assert res3.history[-1]["mse"] < res3.history[0]["mse"]


def test_linear_schedule_warms_up_then_decays_to_zero():
    tr = Trainer(epochs=1, warmup=0.1, progress=False)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = tr._scheduler(opt, 100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0) and max(lrs) == pytest.approx(1.0)
    assert lrs[50] == pytest.approx(50 / 90) and lrs[-1] == pytest.approx(1 / 90)


def test_best_epoch_selection_keeps_the_best_state():
    seen = []
    net, res = _fit(select="best", epochs=6, eval_every=2)
    assert [r["epoch"] for r in res.history if "mse" in r] == [2, 4, 6]
    best = min((r for r in res.history if "mse" in r), key=lambda r: r["mse"])
    assert res.best_epoch == best["epoch"]
    x, y = _data()
    assert float(((net(x).squeeze(-1) - y) ** 2).mean()) == pytest.approx(best["mse"], rel=1e-5)
    del seen


def test_clipping_and_bad_options(monkeypatch):
    norms = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm):
        params = list(params)
        out = real(params, max_norm)
        norms.append(float(torch.cat([p.grad.flatten() for p in params]).norm()))
        return out

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    x, y = _data()
    tr = Trainer(epochs=1, clip=0.5, schedule="constant", progress=False, log=lambda s: None)
    net = torch.nn.Linear(3, 1)
    tr.fit(net, [{"params": net.parameters(), "lr": 0.1}], batches=lambda rng, ep: [list(range(64))] * 3,
           step=lambda idx: ((net(x[idx]).squeeze(-1) - y[idx]) ** 2).mean() * 100, steps_per_epoch=3)
    assert len(norms) == 3 and all(n <= 0.5 + 1e-5 for n in norms)
    with pytest.raises(GraphmieError, match=r"\[E022\].*schedule"):
        Trainer(epochs=1, schedule="cosine")
