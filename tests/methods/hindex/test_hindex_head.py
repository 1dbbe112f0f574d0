"""The H-Index grounding head (graphmie.methods.hindex): soft targets, shapes, masking, learning."""
import pytest
import torch

from graphmie.document import Box
from graphmie.methods.hindex.model import GroundingHead, box_geometry, normalise_boxes, soft_targets


# --- soft targets and head -------------------------------------------------------------------
def test_soft_targets_iou_threshold_and_normalisation():
    gold = [Box(0, 0, 10, 10)]
    cands = [Box(0, 0, 10, 3), Box(0, 0, 10, 6), Box(0, 0, 10, 9), Box(50, 50, 60, 60)]   # IoU .3 .6 .9 0
    t = soft_targets(cands, gold)
    assert t.tolist() == pytest.approx([0.0, 0.6 / 1.5, 0.9 / 1.5, 0.0])
    assert float(t.sum()) == pytest.approx(1.0)
    assert soft_targets([Box(0, 0, 10, 3)], gold).sum() == 0          # nothing reaches 0.5
    # max over several gold boxes
    t2 = soft_targets([Box(50, 50, 60, 60)], gold + [Box(50, 50, 60, 60)])
    assert t2.tolist() == [1.0]


def test_head_shapes_mask_loss_and_learning():
    torch.manual_seed(0)
    B, R = 3, 5
    head = GroundingHead(entity_dim=16, region_dim=8, hidden=32, dropout=0.0)
    ent, feats = torch.randn(B, 16), torch.randn(B, R, 8)
    boxes = torch.rand(B, R, 2).sort(-1).values.repeat_interleave(2, -1)[..., [0, 2, 1, 3]]
    mask = torch.ones(B, R, dtype=torch.bool)
    mask[2, 3:] = False
    out = head(ent, boxes, feats, mask)
    assert out.region_logits.shape == (B, R) and out.ground_logit.shape == (B,)
    assert torch.isinf(out.region_logits[2, 3:]).all() and torch.isfinite(out.region_logits[:2]).all()
    targets = torch.zeros(B, R)
    targets[0, 1] = 1.0
    targets[1, 2:4] = 0.5
    g = torch.tensor([1.0, 1.0, 0.0])
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    first = float(head.loss(out, targets, g).detach())
    assert first > 0
    for _ in range(60):
        loss = head.loss(head(ent, boxes, feats, mask), targets, g)
        opt.zero_grad(); loss.backward(); opt.step()
    assert float(loss.detach()) < 0.2 * first
    out = head(ent, boxes, feats, mask)
    pred = head.predict(out)
    assert pred[0][0] == 1 and pred[1][0] in (2, 3) and pred[2][0] is None
    # geometry-only mode (no visual features) and an empty candidate set
    geo = GroundingHead(entity_dim=16, use_visual=False)
    o = geo(ent, torch.zeros(B, 0, 4))
    assert o.region_logits.shape == (B, 0) and all(p[0] is None for p in geo.predict(o, threshold=0.0))
    assert box_geometry(normalise_boxes([Box(0, 0, 50, 100)], 100, 100)).shape == (1, 8)
