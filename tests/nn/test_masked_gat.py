"""MaskedGATLayer (a PyG MessagePassing layer): shapes, masks, attention normalisation, a hand-computed case."""
import math

import torch

from graphmie.nn.masked_gat import MaskedGATLayer


def graph(n=5, e=9, dim=8, edge_dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    ei = torch.tensor([[0, 1, 2, 3, 4, 0, 2, 4, 1], [1, 2, 3, 4, 0, 2, 0, 1, 1]])[:, :e]
    return x, ei, torch.randn(ei.size(1), edge_dim, generator=g)


def test_is_message_passing_with_the_shipped_parameter_names():
    from torch_geometric.nn import MessagePassing

    layer = MaskedGATLayer(8, 3, heads=2)
    assert isinstance(layer, MessagePassing)
    assert set(layer.state_dict()) == {"w_src.weight", "w_src.bias", "w_dst.weight", "w_dst.bias", "w_edge.weight",
                                       "w_edge.bias", "att", "out.weight", "out.bias", "norm.weight", "norm.bias"}
    assert layer.att.shape == (2, 4)


def test_output_shape_and_gradients():
    x, ei, ea = graph()
    layer = MaskedGATLayer(8, 3, heads=2).eval()
    x.requires_grad_()
    mask = torch.rand(ei.size(1), requires_grad=True)
    y = layer(x, ei, ea, mask)
    assert y.shape == x.shape
    y.sum().backward()
    assert float(x.grad.abs().sum()) > 0 and float(mask.grad.abs().sum()) > 0
    assert layer(x, ei, ea).shape == x.shape                      # no mask
    empty = layer(x, torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, 3))
    assert empty.shape == x.shape


def test_zero_mask_leaves_only_the_residual_path():
    x, ei, ea = graph()
    layer = MaskedGATLayer(8, 3, heads=2).eval()
    y = layer(x, ei, ea, torch.zeros(ei.size(1)))
    # no message gets through: gelu(0) = 0, so the update is the output layer's bias
    assert torch.allclose(y, layer.norm(x + layer.out.bias), atol=1e-6)
    # a node without incoming edges gets the same whatever the mask
    x2, ei2 = x, ei[:, ei[1] != 3]
    assert torch.allclose(layer(x2, ei2, ea[ei[1] != 3])[3], layer.norm(x + layer.out.bias)[3], atol=1e-6)


def test_attention_is_normalised_over_incoming_edges():
    x, ei, ea = graph()
    layer = MaskedGATLayer(8, 3, heads=2).eval()
    seen = {}

    def hook(module, inputs, out):
        kw = inputs[0]
        seen["alpha"] = out / (kw["x_j"] + kw["e"])               # message = (x_j + e) * alpha
        seen["index"] = kw["index"]

    layer.register_message_forward_hook(hook)
    layer(x, ei, ea)
    alpha = seen["alpha"][..., 0]                                  # [E, heads], the same over a head's channels
    assert torch.allclose(seen["alpha"], alpha.unsqueeze(-1).expand_as(seen["alpha"]), atol=1e-4)
    for node in range(x.size(0)):
        incoming = seen["index"] == node
        assert torch.allclose(alpha[incoming].sum(0), torch.ones(2), atol=1e-5)
    assert bool((alpha > 0).all())


def test_hand_computed_example():
    # 3 nodes, 1 head of width 2, edges 0->2 and 1->2 (node 2's inbox), edge features 1-d
    layer = MaskedGATLayer(2, 1, heads=1, dropout=0.0).eval()
    with torch.no_grad():
        layer.w_src.weight.copy_(torch.eye(2)); layer.w_src.bias.zero_()
        layer.w_dst.weight.copy_(torch.eye(2) * 0.5); layer.w_dst.bias.zero_()
        layer.w_edge.weight.copy_(torch.tensor([[1.0], [0.0]])); layer.w_edge.bias.zero_()
        layer.att.copy_(torch.tensor([[1.0, -1.0]]))
        layer.out.weight.copy_(torch.eye(2)); layer.out.bias.zero_()
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-2.0, 0.0]])
    ei = torch.tensor([[0, 1], [2, 2]])
    ea = torch.tensor([[1.0], [-1.0]])
    mask = torch.tensor([1.0, 0.5])
    # by hand: xs = x, xd = x / 2 = [-1, 0] for node 2, e = [[1, 0], [-1, 0]]
    # edge 0->2: h = leaky([1, 0] + [-1, 0] + [1, 0]) = [1, 0]        -> logit 1
    # edge 1->2: h = leaky([0, 2] + [-1, 0] + [-1, 0]) = [-0.4, 2]    -> logit -0.4 - 2 = -2.4
    a0 = 1 / (1 + math.exp(-2.4 - 1))
    a1 = 1 - a0
    # messages (xs_j + e) * alpha * mask: [2, 0] * a0 and [-1, 2] * a1 * 0.5
    agg = torch.tensor([2 * a0 - 0.5 * a1, a1])
    gelu = torch.nn.functional.gelu
    expected = torch.stack([layer.norm(x[0]), layer.norm(x[1]), layer.norm(x[2] + gelu(agg))])
    assert torch.allclose(layer(x, ei, ea, mask), expected, atol=1e-6)
