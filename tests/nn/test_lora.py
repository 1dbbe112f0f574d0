"""LoRA adapters (graphmie.nn.lora): small tensor tests."""
import pytest
import torch
from torch import nn

from graphmie.nn.lora import LoRALinear, add_lora, merge_lora


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.query = nn.Linear(8, 8)
        self.value = nn.Linear(8, 8)
        self.dense = nn.Linear(8, 4)
        self.other = nn.Linear(4, 4)      # not a target name: left alone

    def forward(self, x):
        return self.other(self.dense(self.query(x) + self.value(x)))


def test_add_lora_starts_as_the_base_model_and_trains_only_adapters():
    torch.manual_seed(0)
    m = Block()
    x = torch.randn(3, 8)
    before = m(x)
    names = add_lora(m, rank=2, alpha=4)
    assert sorted(names) == ["dense", "query", "value"]
    assert isinstance(m.query, LoRALinear) and isinstance(m.other, nn.Linear)
    assert torch.allclose(m(x), before)                   # B = 0 at start
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable == {f"{k}.lora_{ab}" for k in ("query", "value", "dense") for ab in "ab"} | \
        {"other.weight", "other.bias"}
    assert m.query.lora_a.shape == (2, 8) and m.query.lora_b.shape == (8, 2) and m.query.scale == 2.0


def test_lora_update_changes_output_and_merge_preserves_it():
    torch.manual_seed(0)
    m = Block()
    add_lora(m, rank=2)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, LoRALinear):
                mod.lora_b.normal_()
    x = torch.randn(5, 8)
    adapted = m(x)
    assert torch.allclose(m.query(x), m.query.base(x) + x @ m.query.delta().t(), atol=1e-5)
    assert merge_lora(m) == 3
    assert isinstance(m.query, nn.Linear) and not any(isinstance(s, LoRALinear) for s in m.modules())
    assert torch.allclose(m(x), adapted, atol=1e-5)


def test_lora_rejects_rank_zero():
    with pytest.raises(ValueError):
        LoRALinear(nn.Linear(2, 2), rank=0)
