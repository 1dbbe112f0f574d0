"""The one training loop every method uses.

A method hands the :class:`Trainer` its network, its parameter groups, a function that makes one
epoch's batches and a function that turns a batch into a loss; the Trainer owns the rest: seeding,
threads and device, AdamW over the parameter groups, the learning-rate schedule (warm-up then
linear decay, or one-cycle), gradient clipping, epochs, per-epoch dev scoring, keeping the best
epoch, the progress bar and the training history. ``run.json`` (resolved config, package versions,
figures) is written by :func:`write_run_record`.

    trainer = Trainer(epochs=30, seed=13, schedule="onecycle", clip=5.0)
    trainer.seed_everything()                  # before building the network: same init for a seed
    net = build(...)
    result = trainer.fit(net, [{"params": net.parameters(), "lr": 2e-3}], batches=make_batches,
                         step=loss_of, steps_per_epoch=len(train))
"""
from __future__ import annotations

import copy
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch

from ..config import package_versions
from ..errors import GraphmieError
from ..io import atomic_write_text

SCHEDULES = ("linear", "onecycle", "constant")


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)   # one record per epoch: loss, seconds, dev figures
    best_epoch: int | None = None                       # 1-based, when the Trainer selects on dev figures
    seconds: float = 0.0


def set_threads(threads: int) -> None:
    torch.set_num_threads(max(int(threads), 1))


class Trainer:
    """Epoch loop with AdamW. ``schedule``: ``linear`` (``warmup`` fraction of the steps rising
    linearly, then linear decay to 0), ``onecycle`` (PyTorch's one-cycle, ``warmup`` = its
    ``pct_start``) or ``constant``. ``clip``: max gradient norm (0 = none). ``eval_every``: score
    the dev data every that many epochs (and after the last). ``select``: ``last`` keeps the
    final weights, ``best`` the epoch whose ``score(figures)`` is highest (``on_best`` is called
    with its trained state each time a better epoch comes)."""

    def __init__(self, epochs: int, seed: int = 0, threads: int | None = 1, device: str = "cpu",
                 schedule: str = "linear", warmup: float = 0.06, weight_decay: float = 0.01, clip: float = 1.0,
                 eval_every: int = 1, select: str = "last", progress: bool = True, log: Callable | None = None,
                 desc: str = "train"):
        if schedule not in SCHEDULES:
            raise GraphmieError("E022", None, name="training schedule", value=schedule, choices=", ".join(SCHEDULES))
        if select not in ("last", "best"):
            raise GraphmieError("E022", None, name="epoch selection", value=select, choices="last, best")
        self.epochs, self.seed, self.threads, self.device = int(epochs), int(seed), threads, device
        self.schedule, self.warmup, self.weight_decay, self.clip = schedule, float(warmup), float(weight_decay), clip
        self.eval_every, self.select, self.progress, self.desc = max(int(eval_every), 1), select, progress, desc
        self.log = log if log is not None else (lambda s: print(s, file=sys.stderr, flush=True))
        self.rng = random.Random(self.seed)

    def seed_everything(self) -> None:
        """Seed torch and this trainer's ``rng`` (and set the thread count)."""
        if self.threads:
            set_threads(self.threads)
        torch.manual_seed(self.seed)
        random.seed(self.seed)
        self.rng = random.Random(self.seed)

    def _scheduler(self, opt, total: int):
        total = max(total, 1)
        if self.schedule == "onecycle":
            return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups],
                                                       total_steps=total, pct_start=self.warmup)
        if self.schedule == "constant":
            return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        warm = max(int(total * self.warmup), 1)
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(total - warm, 1))))

    def fit(self, model: torch.nn.Module, groups: list[dict], batches: Callable[[random.Random, int], Iterable],
            step: Callable[[object], torch.Tensor], steps_per_epoch: int,
            evaluate: Callable[[], dict] | None = None, score: Callable[[dict], float] | None = None,
            on_best: Callable[[dict, dict], None] | None = None,
            state: Callable[[], dict] | None = None) -> TrainResult:
        """Train ``model``. ``batches(rng, epoch)`` gives one epoch's batches (its shuffling draws
        from ``rng``); ``step(batch)`` returns the batch's loss. ``evaluate()`` returns dev figures;
        ``score`` ranks them for ``select="best"``; ``state()`` is what is kept of the best epoch
        (default: the full state dict)."""
        groups = [dict(g, params=list(g["params"])) for g in groups]
        opt = torch.optim.AdamW(groups, weight_decay=self.weight_decay)
        sched = self._scheduler(opt, self.epochs * steps_per_epoch)
        params = [p for g in groups for p in g["params"]]
        state = state or model.state_dict
        res, best, best_state = TrainResult(), -math.inf, None
        t0 = time.time()
        for ep in range(self.epochs):
            model.train()
            items = list(batches(self.rng, ep))
            bar = items
            if self.progress:
                from tqdm import tqdm

                bar = tqdm(items, desc=f"{self.desc} epoch {ep + 1}/{self.epochs}", unit="batch", file=sys.stderr,
                           leave=False)
            total = 0.0
            for k, b in enumerate(bar):
                loss = step(b)
                opt.zero_grad()
                loss.backward()
                if self.clip:
                    torch.nn.utils.clip_grad_norm_(params, self.clip)
                opt.step()
                sched.step()
                total += float(loss.detach())
                if self.progress and k % 20 == 0:
                    bar.set_postfix(loss=f"{total / (k + 1):.4f}")
            rec = {"epoch": ep + 1, "loss": total / max(len(items), 1), "seconds": round(time.time() - t0, 1)}
            if evaluate is not None and ((ep + 1) % self.eval_every == 0 or ep + 1 == self.epochs):
                model.eval()
                with torch.no_grad():
                    figures = evaluate()
                rec.update(figures)
                if self.select == "best":
                    s = score(figures) if score else next(iter(figures.values()))
                    if s > best:
                        best, res.best_epoch = s, ep + 1
                        best_state = {k: v.detach().clone() for k, v in state().items()}
                        if on_best is not None:
                            on_best(best_state, figures)
            res.history.append(rec)
            self.log(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items()}))
        if self.select == "best" and best_state is not None:
            model.load_state_dict(best_state, strict=False)
        model.eval()
        res.seconds = round(time.time() - t0, 1)
        return res


def write_run_record(out_dir: str | Path, config: dict, metrics: dict, extra: dict | None = None) -> Path:
    """``run.json`` beside a run's checkpoint: resolved config, package versions, dev figures."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"config": copy.deepcopy(config), "versions": package_versions(), "metrics": metrics}
    if extra:
        record.update(extra)
    path = out_dir / "run.json"
    atomic_write_text(path, json.dumps(record, indent=2, default=str))
    return path


def command_line() -> str:
    """The command that is running, as a training record states it."""
    return " ".join(["graphmie"] + sys.argv[1:]) if Path(sys.argv[0]).name in ("graphmie", "__main__.py") \
        else " ".join(["python3"] + sys.argv)
