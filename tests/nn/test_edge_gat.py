"""The edge-aware GAT block: shapes, edge features steering the attention, gradients to edge_attr,
self loops added once for a stack of layers."""
import pytest
import torch

from torch_geometric.nn import GATv2Conv

from graphmie.nn.edge_gat import EdgeGATLayer, with_self_loops


def _graph(n=6, e=14, edge_dim=5, hidden=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, hidden, generator=g)
    src = torch.randint(0, n, (e,), generator=g)
    dst = (src + 1 + torch.randint(0, n - 1, (e,), generator=g)) % n        # no self loops in the input
    return x, torch.stack([src, dst]), torch.randn(e, edge_dim, generator=g)


def test_shapes_and_divisibility():
    torch.manual_seed(0)
    layer = EdgeGATLayer(hidden=8, edge_dim=5, heads=2, dropout=0.0).eval()
    x, ei, ea = _graph()
    assert layer(x, ei, ea).shape == (6, 8)
    assert layer(x, ei[:, :0], ea[:0]).shape == (6, 8)               # no edges: self loops only
    with pytest.raises(ValueError):
        EdgeGATLayer(hidden=10, edge_dim=5, heads=4)


def test_edge_features_change_attention_and_output():
    torch.manual_seed(0)
    layer = EdgeGATLayer(hidden=8, edge_dim=5, heads=2, dropout=0.0).eval()
    x, ei, ea = _graph()
    other = ea.flip(0)
    with torch.no_grad():
        _, (_, a1) = layer.conv(x, *with_self_loops(ei, ea, 6), return_attention_weights=True)
        _, (_, a2) = layer.conv(x, *with_self_loops(ei, other, 6), return_attention_weights=True)
        y1, y2 = layer(x, ei, ea), layer(x, ei, other)
    assert a1.shape == (ei.shape[1] + 6, 2)                          # every edge + a self loop per node, per head
    assert not torch.allclose(a1, a2) and not torch.allclose(y1, y2)
    with torch.no_grad():                                            # the same edges, in another order: same output
        perm = torch.randperm(ei.shape[1])
        assert torch.allclose(layer(x, ei[:, perm], ea[perm]), y1, atol=1e-5)


def test_gradient_reaches_edge_attr_and_nodes():
    torch.manual_seed(0)
    layer = EdgeGATLayer(hidden=8, edge_dim=5, heads=2, dropout=0.0)
    x, ei, ea = _graph()
    x.requires_grad_(True)
    ea.requires_grad_(True)
    layer(x, ei, ea).square().sum().backward()
    assert ea.grad is not None and ea.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0 and layer.conv.lin_edge.weight.grad.abs().sum() > 0


def test_self_loops_once_equal_pyg_self_loops_per_call():
    torch.manual_seed(0)
    layer = EdgeGATLayer(hidden=8, edge_dim=5, heads=2, dropout=0.0).eval()
    x, ei, ea = _graph()
    ei = torch.cat([ei, torch.tensor([[2], [2]])], 1)                 # an input self loop is replaced
    ea = torch.cat([ea, torch.full((1, 5), 3.0)])
    ref = GATv2Conv(8, 4, heads=2, edge_dim=5, add_self_loops=True, fill_value=0.0).eval()
    ref.load_state_dict(layer.conv.state_dict())
    loops, loop_attr = with_self_loops(ei, ea, 6)
    assert loops.shape[1] == ei.shape[1] - 1 + 6 and (loop_attr[-6:] == 0).all()
    with torch.no_grad():
        assert torch.allclose(layer.conv(x, loops, loop_attr), ref(x, ei, ea), atol=1e-6)
        assert torch.allclose(layer(x, ei, ea), layer(x, loops, loop_attr, self_loops=False), atol=1e-6)
