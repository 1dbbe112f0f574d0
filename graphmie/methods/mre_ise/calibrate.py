"""Calibrated "no relation" for automatic entity pairs (pairs the user did not give).

When a post comes without ``pairs``, :meth:`graphmie.methods.mre_ise.MREISE.predict` scores every
ordered pair of its entities, a population MNRE's rows do not look like: MNRE annotates each
unordered pair once, its ``None`` rows almost always with the head first in the text (train:
7,708 of 7,744), so a head *after* its tail is positive 97 % of the time in training and the model
calls many reversed automatic pairs a relation. The decision for automatic pairs is therefore:

1. **temperature** ``T`` (one scalar fit by NLL on held-out logits): probabilities ``softmax(z / T)``;
2. **type filter** (:mod:`.types`; spaCy types, ``None`` = unknown = compatible with everything):
   ``mask`` lets only labels the pair's types can hold compete, ``drop`` proposes nothing when the
   best label is incompatible, ``none`` ignores types;
3. **per-label thresholds**: the best remaining positive label ``k`` is kept iff its calibrated
   probability ``>= thresholds[k]`` (``default_threshold`` for labels with too little support when
   fitting; ``None``: plain argmax, i.e. ``>= p(None)``), else ``None``; a pair whose head follows its
   tail in the text must also reach ``reversed_threshold`` when set (order-aware; fit by
   :func:`fit_reversed_threshold` on the reverses of annotated pairs, labelled by MNRE's convention);
4. **one direction** (optional): of the two directions of an unordered pair both called positive,
   only the more probable is proposed (MNRE's convention: one relation per unordered pair).

``Calibration()`` decides exactly as the uncalibrated argmax. :func:`fit_calibration` fits 1 and
3 (3 for micro-F1 as in :mod:`graphmie.evaluation.mre`, ``None`` the negative class). Only the
decision of automatic pairs changes: pairs the user gives are decoded by plain argmax;
:func:`write_calibration` stores the result in a checkpoint's sidecar ``meta["calibration"]``.
Measured in ``bench/bench_post_pairs.py`` (docs/post.md, "Automatic pairs").
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from ...errors import GraphmieError
from .types import compatible

NONE = "None"
FILTERS = ("none", "mask", "drop")
#: threshold grid of the fit (calibrated probabilities)
GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))


@dataclass
class Calibration:
    temperature: float = 1.0
    thresholds: dict = field(default_factory=dict)      # label -> minimum calibrated probability
    default_threshold: float | None = None              # labels not in ``thresholds``; None = argmax
    type_filter: str = "none"                           # one of FILTERS
    one_direction: bool = False
    reversed_threshold: float | None = None             # also required when the head follows the tail
    fit_on: str = ""                                    # what it was fit on (free text)

    def describe(self) -> str:
        """One line for ``doc.meta`` (what was applied)."""
        thr = (f"per-label thresholds ({len(self.thresholds)} labels, others {self.default_threshold})"
               if self.thresholds else f"threshold {self.default_threshold}" if self.default_threshold is not None
               else "argmax")
        parts = [f"temperature {self.temperature:.3g}", thr, f"type filter {self.type_filter}"]
        if self.reversed_threshold is not None:
            parts.append(f"threshold {self.reversed_threshold} when the head follows the tail")
        if self.one_direction:
            parts.append("one direction per pair")
        return ", ".join(parts) + (f"; fit on {self.fit_on}" if self.fit_on else "")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d, source=None, labels: list[str] | None = None) -> "Calibration":
        """Checked: a bad dict is a coded error naming ``source`` (the sidecar)."""
        if not isinstance(d, dict):
            raise GraphmieError("E004", source, detail="'calibration' must be a JSON object")
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise GraphmieError("E004", source, detail=f"unknown calibration keys {sorted(unknown)}")

        def prob(v, what):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise GraphmieError("E019", source, detail=f"calibration {what} must be a number, not {v!r}")
            if not 0.0 <= v <= 1.0:
                raise GraphmieError("E009", source, detail=f"calibration {what} {v} outside [0, 1]")
            return float(v)

        t = d.get("temperature", 1.0)
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise GraphmieError("E009", source, detail=f"calibration temperature must be a number > 0, not {t!r}")
        thr = d.get("thresholds", {})
        if not isinstance(thr, dict):
            raise GraphmieError("E019", source, detail="calibration thresholds must be an object label -> number")
        bad = [k for k in thr if k == NONE or (labels is not None and k not in labels)]
        if bad:
            raise GraphmieError("E013", source, detail=f"calibration thresholds for {bad[:3]} (not positive labels "
                                "of these weights)")
        default, rev = d.get("default_threshold"), d.get("reversed_threshold")
        filt = d.get("type_filter", "none")
        if filt not in FILTERS:
            raise GraphmieError("E022", source, name="calibration type_filter", value=filt, choices=", ".join(FILTERS))
        if not isinstance(d.get("one_direction", False), bool) or not isinstance(d.get("fit_on", ""), str):
            raise GraphmieError("E019", source, detail="calibration one_direction must be a bool, fit_on a string")
        return cls(float(t), {k: prob(v, f"threshold of {k}") for k, v in thr.items()},
                   None if default is None else prob(default, "default_threshold"), filt,
                   d.get("one_direction", False), None if rev is None else prob(rev, "reversed_threshold"),
                   d.get("fit_on", ""))


# --- deciding ----------------------------------------------------------------------------
def _choose(probs: torch.Tensor, labels: list[str], cal: Calibration, types) -> tuple[list, list, list]:
    """Per row: the best positive label index allowed by the type filter (-1: none), its probability,
    and whether the type filter changed the row's argmax label (masked / dropped)."""
    none = labels.index(NONE)
    pos = probs.clone()
    pos[:, none] = -1.0
    raw = pos.argmax(-1)
    if cal.type_filter == "mask" and types is not None:
        allowed = torch.tensor([[compatible(lab, ht, tt) for lab in labels] for ht, tt in types], dtype=torch.bool)
        pos = pos.masked_fill(~allowed, -1.0)
    best = pos.argmax(-1)
    p = pos.gather(1, best[:, None])[:, 0]
    k = torch.where(p >= 0, best, torch.full_like(best, -1))
    changed = [False] * len(k)
    if types is not None and cal.type_filter in ("mask", "drop"):
        for i, (ht, tt) in enumerate(types):
            if cal.type_filter == "drop" and not compatible(labels[int(best[i])], ht, tt):
                k[i], changed[i] = -1, True
            elif cal.type_filter == "mask" and int(best[i]) != int(raw[i]):
                changed[i] = True
    return k.tolist(), p.tolist(), changed


def calibrated_decode(logits: torch.Tensor, labels: list[str], calibration: Calibration, types=None,
                      pairs=None, reversed_=None) -> tuple[list[tuple[str, float]], dict]:
    """(label, calibrated probability) of every row of ``logits`` [N, C] and counts of what was done.

    ``types``: (head type, tail type) per row (:func:`.types.span_type`; ``None`` = unknown);
    ``pairs``: (head id, tail id) per row, needed for ``one_direction``; ``reversed_``: per row, whether
    the head starts after the tail in the text (for ``reversed_threshold``). The counts, against the
    uncalibrated argmax: ``filtered`` (relations it proposes that come out ``None``), of them
    ``by_type`` (the pair's types cannot hold the label, nor any compatible label passes), ``by_threshold``
    and ``by_direction``; ``relabelled`` (another relation) and ``added`` (a relation where it said ``None``)."""
    cal = calibration
    probs = torch.softmax(logits.float() / cal.temperature, -1)
    none = labels.index(NONE)
    k, p, changed = _choose(probs, labels, cal, types)
    out, why = [], [None] * len(k)
    for i, (j, sc) in enumerate(zip(k, p)):
        p_none = probs[i, none].item()
        if j >= 0:
            thr = cal.thresholds.get(labels[j], cal.default_threshold)
            rev = cal.reversed_threshold is not None and reversed_ is not None and reversed_[i]
            if sc >= (p_none if thr is None else thr) and not (rev and sc < cal.reversed_threshold):
                out.append((labels[j], sc))
                continue
        why[i] = "by_type" if changed[i] else "by_threshold"
        out.append((NONE, p_none))
    if cal.one_direction and pairs is not None:
        where = {tuple(pr): i for i, pr in enumerate(pairs)}
        for i, (h, t) in enumerate(pairs):
            r = where.get((t, h))
            if r is not None and out[i][0] != NONE and out[r][0] != NONE and (out[r][1], -r) > (out[i][1], -i):
                out[i], why[i] = (NONE, probs[i, none].item()), "by_direction"
    stats = dict.fromkeys(("filtered", "by_type", "by_threshold", "by_direction", "relabelled", "added"), 0)
    for a, (lab, _), w in zip(logits.argmax(-1).tolist(), out, why):
        if a != none and lab == NONE:
            stats["filtered"] += 1
            stats[w] += 1
        elif lab != NONE and a == none:
            stats["added"] += 1
        elif lab != NONE and labels[a] != lab:
            stats["relabelled"] += 1
    return out, stats


# --- fitting -----------------------------------------------------------------------------
def fit_temperature(logits: torch.Tensor, gold: torch.Tensor, lo: float = 0.05, hi: float = 20.0,
                    steps: int = 60) -> float:
    """The temperature minimising the mean NLL of ``softmax(logits / T)`` for the gold indices
    (golden-section search over ``1 / T``, in which the NLL is convex; ``T`` in [lo, hi])."""
    z = logits.double()
    gold = gold.long()

    def nll(a: float) -> float:
        return float((torch.logsumexp(z * a, -1) - z.gather(1, gold[:, None])[:, 0] * a).mean())

    g = (math.sqrt(5) - 1) / 2
    a, b = 1.0 / hi, 1.0 / lo
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(c), nll(d)
    for _ in range(steps):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(d)
    return 1.0 / ((a + b) / 2)


def nll(logits: torch.Tensor, gold: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the gold indices under ``softmax(logits / temperature)``."""
    return float(torch.nn.functional.cross_entropy(logits.double() / temperature, gold.long()))


def _f1(tp: int, n_pred: int, n_gold: int) -> float:
    return 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0


def fit_thresholds(best: list[str], score: list[float], gold: list[str], grid=GRID, min_support: int = 20,
                   passes: int = 2) -> tuple[dict, float]:
    """Per-label thresholds and the shared one maximising micro-F1 (``None`` negative) of the rule "row i
    is ``best[i]`` iff ``score[i] >= threshold[best[i]]``, else None" (``best[i]`` None: never positive).
    The shared threshold first; then, by coordinate ascent (``passes`` rounds), one per label with at
    least ``min_support`` gold rows. Of tied thresholds the middle one (the upper middle)."""
    n_gold = sum(g != NONE for g in gold)
    rows = [(b, s, b == g) for b, s, g in zip(best, score, gold) if b not in (None, NONE)]

    def f1(thr: dict, shared: float) -> float:
        kept = [ok for b, s, ok in rows if s >= thr.get(b, shared)]
        return _f1(sum(kept), len(kept), n_gold)

    def best_of(f) -> float:
        scores = [f(t) for t in grid]
        tied = [t for t, v in zip(grid, scores) if v == max(scores)]
        return tied[len(tied) // 2]

    shared = best_of(lambda t: f1({}, t))
    support = {}
    for g in gold:
        support[g] = support.get(g, 0) + 1
    labels = sorted(lab for lab, n in support.items() if lab != NONE and n >= min_support)
    thr: dict = {}
    for _ in range(passes):
        for lab in labels:
            thr[lab] = best_of(lambda t: f1({**thr, lab: t}, shared))
    return thr, shared


def fit_calibration(logits: torch.Tensor, gold: list[str], labels: list[str], types=None, type_filter: str = "none",
                    per_label: bool = True, grid=GRID, min_support: int = 20, fit_on: str = "") -> Calibration:
    """Temperature by NLL, then thresholds (per label, or only the shared one) for micro-F1 under
    ``type_filter`` on held-out rows (``logits`` [N, C], ``gold`` their labels, ``types`` their pairs' types)."""
    idx = torch.tensor([labels.index(g) for g in gold])
    cal = Calibration(temperature=fit_temperature(logits, idx), type_filter=type_filter, fit_on=fit_on)
    k, p, _ = _choose(torch.softmax(logits.float() / cal.temperature, -1), labels, cal, types)
    thr, shared = fit_thresholds([labels[j] if j >= 0 else None for j in k], p, gold, grid, min_support)
    cal.thresholds, cal.default_threshold = (thr if per_label else {}), shared
    return cal


def fit_reversed_threshold(cal: Calibration, logits: torch.Tensor, gold: list[str], labels: list[str], reversed_,
                           types=None, grid=GRID) -> float:
    """The ``reversed_threshold`` maximising micro-F1 of ``cal``'s decisions on rows ``logits`` / ``gold``
    (with ``reversed_`` flags; they must hold pairs whose head follows the tail, with negatives among them:
    MNRE's annotated rows alone hardly have any). Of tied values the middle one."""
    from ...evaluation.mre import mre_scores

    scores = []
    for t in grid:
        out, _ = calibrated_decode(logits, labels, replace(cal, reversed_threshold=t), types, None, reversed_)
        scores.append(mre_scores([lab for lab, _ in out], gold)["f1"])
    tied = [t for t, v in zip(grid, scores) if v == max(scores)]
    return tied[len(tied) // 2]


# --- storing ------------------------------------------------------------------------------
def write_calibration(checkpoint_path: str | Path, calibration: Calibration, type_source: str | None = None) -> Path:
    """Store ``calibration`` in the sidecar of ``checkpoint_path`` (a ``.safetensors`` file or a run folder)
    under ``meta["calibration"]``, atomically; the weights are untouched and must still match the
    sidecar's SHA-256 (``E028`` otherwise). ``type_source``: the argument types the calibration's type filter
    was fit on, written as the config's ``model.type_source`` (the model's markers must then be untyped:
    typed markers were trained on the checkpoint's own types). Returns the sidecar's path."""
    from ...engine.checkpoint import _sha256, read_sidecar, resolve_checkpoint, sidecar_path
    from ...io import atomic_write_text

    weights = resolve_checkpoint(checkpoint_path, "post_mre_ise")
    side = read_sidecar(weights)
    if side["method"] != "mre_ise":
        raise GraphmieError("E027", weights, detail=f"weights of method {side['method']!r}, expected 'mre_ise'")
    if side.get("weights_sha256") != _sha256(weights.read_bytes()):
        raise GraphmieError("E028", weights, detail=f"the SHA-256 in {sidecar_path(weights).name} is not the weights'")
    d = calibration.to_dict()
    Calibration.from_dict(d, sidecar_path(weights), side["meta"].get("labels"))
    model = side["config"].setdefault("model", {})
    if type_source and type_source != model.get("type_source", "spacy"):
        if model.get("typed_markers"):
            raise GraphmieError("E025", weights, detail=f"its typed markers were trained on {model.get('type_source', 'spacy')} "
                                f"types; a calibration fit on {type_source} types cannot be stored in it")
        model["type_source"] = type_source
    side["meta"]["calibration"] = d
    atomic_write_text(sidecar_path(weights), json.dumps(side, indent=2, default=str))
    return sidecar_path(weights)
