"""The static word-piece embedder: normalised means of MiniLM's input embeddings."""
import torch

from graphmie.engine.embedder import get_static_embedder


def test_static_embedder():
    emb = get_static_embedder(4)
    v = emb(["red onion", "", "red onion", "a b c d e f g"])
    assert v.shape == (4, emb.dim) and torch.equal(v[0], v[2]) and torch.all(v[1] == 0)
    assert torch.allclose(v[0].norm(), torch.tensor(1.0))
    ids = emb.tokenizer("a b c d", add_special_tokens=False)["input_ids"]
    expect = torch.nn.functional.normalize(emb.table[ids].mean(0), dim=0)
    assert torch.allclose(v[3], expect)                            # only the first max_pieces pieces count
    assert get_static_embedder(4) is emb and emb(["x"]).shape == (1, emb.dim)
