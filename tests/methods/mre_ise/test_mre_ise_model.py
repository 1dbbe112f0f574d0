"""The MRE-ISE network on a tiny random encoder: LoRA saving, graph path, loss and decoding."""
import torch
from transformers import BertConfig, BertModel

from graphmie.methods.mre_ise.graphs import collate_graphs
from graphmie.methods.mre_ise.model import PostREModel, decode, loss


def tiny_bert(layers=3):
    return BertModel(BertConfig(hidden_size=32, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=64,
                                vocab_size=50))


def test_lora_post_model_saves_adapters_not_frozen_layers():
    bert = tiny_bert()
    m = PostREModel(8, 16, top_layers=bert.encoder.layer, hidden=32, n_labels=3, use_graph=False, use_topics=False,
                    lora_layers=2, lora_rank=4)
    state = m.trainable_state()
    assert any(k.startswith("top.0.") and ".lora_a" in k for k in state)
    assert not any(k.startswith(("top.0.", "top.1.")) and ".lora_" not in k for k in state)   # frozen: not saved
    assert any(k.startswith("top.2.") for k in state)                                         # fully tuned
    frozen = [n for n, p in m.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith(("top.0.", "top.1.")) for n in frozen)
    h = torch.randn(2, 5, 32)
    logits, _, _ = m(h, torch.ones(2, 5, dtype=torch.long), torch.tensor([0, 1]), torch.tensor([2, 3]))
    assert logits.shape == (2, 3)


def graph(n, e, seed):
    g = torch.Generator().manual_seed(seed)
    return {"node_type": torch.randint(0, 8, (n,), generator=g), "role": torch.eye(n, 2),
            "emb": torch.randn(n, 32, generator=g).half(), "geo": torch.rand(n, 9, generator=g),
            "edge_index": torch.randint(0, n, (2, e), generator=g),
            "edge_type": torch.randint(0, 32, (e,), generator=g)}


def test_graph_path_type_counts_masks_and_loss():
    torch.manual_seed(0)
    m = PostREModel(8, 16, top_layers=tiny_bert(1).encoder.layer, hidden=32, n_labels=4, gnn_dim=16, z_dim=8,
                    vocab_size=20, n_topics=3)
    assert m.type_emb.num_embeddings == 8 and m.edge_emb.num_embeddings == 32
    g = collate_graphs([graph(5, 7, 1), graph(3, 4, 2)])
    assert g["batch"].tolist() == [0] * 5 + [1] * 3 and int(g["edge_index"][:, 7:].min()) >= 5
    h, mask = torch.randn(2, 6, 32), torch.ones(2, 6, dtype=torch.long)
    logits, aux, (node_mask, edge_mask) = m(h, mask, torch.tensor([0, 1]), torch.tensor([2, 3]), g,
                                            m.ntm.bow([[1, 2], [3]]))
    assert logits.shape == (2, 4) and set(aux) == {"gib", "topic"}
    assert node_mask.shape == (8,) and edge_mask.shape == (11,)
    y = torch.tensor([1, 3])
    total = loss(logits, aux, y, 0.5, 0.25)
    expected = torch.nn.functional.cross_entropy(logits, y) + 0.5 * aux["gib"] + 0.25 * aux["topic"]
    assert torch.allclose(total, expected)
    total.backward()
    assert m.gnn[0].att.grad is not None and m.gib.node_mlp[0].weight.grad is not None
    out = decode(torch.tensor([[0.0, 2.0, 0.0], [5.0, 0.0, 0.0]]), ["None", "a", "b"])
    assert [lab for lab, _ in out] == ["a", "None"] and 0.7 < out[0][1] < 0.8


def test_ensemble_averages_member_distributions_and_keeps_branches_apart():
    from graphmie.methods.mre_ise.model import PostEnsemble

    torch.manual_seed(1)
    members = [PostREModel(8, 16, top_layers=tiny_bert(1).encoder.layer, hidden=32, n_labels=4, gnn_dim=16, z_dim=8,
                           vocab_size=20, n_topics=3).eval() for _ in range(2)]
    ens = PostEnsemble(members).eval()
    g = collate_graphs([graph(5, 7, 1), graph(3, 4, 2)])
    b = {"hidden": torch.randn(2, 6, 32), "mask": torch.ones(2, 6, dtype=torch.long),
         "head_pos": torch.tensor([0, 1]), "tail_pos": torch.tensor([2, 3]), "graph": g,
         "bow": members[0].ntm.bow([[1, 2], [3]])}
    with torch.no_grad():
        probs = [torch.softmax(m(**b)[0], -1) for m in members]
        logits, _, (node_mask, _) = ens(**b)
        feats = ens.features(**b)[0]
        no_graph = ens.classify(feats, drop="graph")
        expected_no_graph = torch.stack([torch.softmax(m.classify(m.features(**b)[0], drop="graph"), -1)
                                         for m in members]).mean(0)
    assert not torch.allclose(probs[0], probs[1])                 # two different models
    assert torch.allclose(logits.exp(), (probs[0] + probs[1]) / 2, atol=1e-6)
    assert torch.allclose(logits.exp().sum(-1), torch.ones(2), atol=1e-6)   # log-probabilities: decode reads them
    assert set(feats) == {"pair", "graph", "topics"} and all(len(v) == 2 for v in feats.values())
    assert torch.allclose(no_graph.exp(), expected_no_graph, atol=1e-6)
    assert node_mask.shape == (8,)                                # the first member's GIB masks
    assert ens.use_graph and ens.use_topics and ens.ntm is members[0].ntm and ens.gate is None
