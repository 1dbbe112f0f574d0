"""The consistency gate: its range, a post without a caption, and learning consistency from shifted captions."""
import torch

from graphmie.nn.consistency_gate import ConsistencyGate


def test_gate_range_and_missing_caption():
    torch.manual_seed(0)
    gate = ConsistencyGate(dim=8)
    t, c = torch.randn(5, 8), torch.randn(5, 8)
    c[2] = 0                                              # post 2 has no caption
    g = gate(t, c)
    assert g.shape == (5,) and float(g[2]) == 1.0                # no caption: not gated
    others = g[[0, 1, 3, 4]]
    assert bool(((others > 0) & (others < 1)).all())
    assert float(others.mean()) > 0.8                     # starts mostly open (sigmoid(2) ~ 0.88 at the bias)


def test_consistency_loss_teaches_own_caption_over_another_posts():
    torch.manual_seed(0)
    gate = ConsistencyGate(dim=16, hidden=32)
    topics = torch.randn(40, 16)
    text = topics + 0.3 * torch.randn(40, 16)             # a post and its caption share a topic
    caption = topics + 0.3 * torch.randn(40, 16)
    caption[7] = 0                                        # a post without a caption is left out
    opt = torch.optim.Adam(gate.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        loss = gate.consistency_loss(text, caption)
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.5 * first
    new_topics = torch.randn(10, 16)                      # unseen posts
    t, own = new_topics + 0.3 * torch.randn(10, 16), new_topics + 0.3 * torch.randn(10, 16)
    with torch.no_grad():
        related, unrelated = gate(t, own), gate(t, own.roll(1, 0))
    assert float(related.mean()) > 0.7 > 0.3 > float(unrelated.mean())
    assert float(gate.consistency_loss(text[:1], caption[:1])) == 0.0       # one post: nothing to contrast
