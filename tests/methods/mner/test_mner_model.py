"""The MNER tagger (graphmie.methods.mner.model) on a tiny random BERT: shapes, state keys, loss, decoding."""
import pytest
import torch

from graphmie.methods.mner.model import SHAPES, GroundabilityHead, MnerTagger, bio_labels, pad_batch, word_shape


def _tagger(lora_rank=0, n_frozen=1):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=32), add_pooling_layer=False)
    return MnerTagger(bert, ["PER", "LOC"], n_frozen=n_frozen, dropout=0.0, lora_rank=lora_rank)


def _batch(n=2, length=7):
    items = [{"input_ids": list(range(1, length - i + 1)), "token_type_ids": [0] * (length - i),
              "shapes": [SHAPES.index("title")] * (length - i)} for i in range(n)]
    return pad_batch(items)


def test_word_shapes_and_labels():
    assert [SHAPES[word_shape(w, p)] for w, p in [("obama", None), ("Obama", None), ("NASA", None), ("A", None),
                                                  ("iPhone", None), ("2024", None), ("NASA", "@"), ("tbt", "#"),
                                                  ("!!", None)]] == \
        ["lower", "title", "upper", "title", "mixed", "digit", "mention", "hashtag", "punct"]
    assert bio_labels(["PER", "LOC"]) == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_groundability_head_keeps_the_shipped_state_keys():
    m = _tagger()
    assert isinstance(m.ground_head, GroundabilityHead)
    keys = {k for k in m.state_dict() if k.startswith("ground_head.")}
    assert keys == {"ground_head.0.weight", "ground_head.0.bias", "ground_head.3.weight", "ground_head.3.bias"}
    assert m.ground_head[0].in_features == 2 * 16 + 2


@pytest.mark.parametrize("lora_rank", [0, 4])
def test_trainable_state_loss_and_backward(lora_rank):
    m = _tagger(lora_rank)
    assert m.n_cached == (0 if lora_rank else 1)
    state = m.trainable_state()
    assert all(m.is_trainable_key(k) for k in state)
    assert not any(k.startswith("backbone.encoder.layer.0.") and ".lora_" not in k for k in state)
    assert any(".lora_" in k for k in state) == bool(lora_rank)
    b = _batch()
    h_top = m.upper(m.lower(b["input_ids"], b["mask"], b["token_type_ids"]), b["mask"], b["shapes"])
    assert h_top.shape == (2, 7, 16)
    tgt = torch.full((2, 7), -100, dtype=torch.long)
    tgt[0, 1], tgt[0, 2], tgt[1, 1] = 1, 2, 3
    loss = m.loss(h_top, tgt, [(0, 1, 3, "PER"), (1, 1, 2, "LOC")], [1.0, 0.0], ground_weight=0.5)
    assert torch.isfinite(loss) and float(loss.detach()) > 0
    loss.backward()
    assert m.classifier.weight.grad is not None and m.ground_head[0].weight.grad is not None
    assert all(p.grad is None for p in m.backbone.embeddings.parameters())


def test_word_emissions_and_constrained_viterbi():
    m = _tagger()
    b = _batch(1)
    h_top = m.upper(m.lower(b["input_ids"], b["mask"], b["token_type_ids"]), b["mask"], b["shapes"])
    e = m.word_emissions(h_top, [[1, 2, -1]])[0]
    assert e.shape == (3, 5) and e[2, 0] == 0.0 and (e[2, 1:] == -1e4).all()     # a truncated word is 'O'
    # emissions that prefer an illegal O -> I-PER path: the decoder must not take it
    lp = torch.full((3, 5), -5.0)
    lp[0, 0], lp[1, 2], lp[2, 4] = 0.0, 0.0, 0.0
    path = [m.labels[k] for k in m.viterbi(lp)]
    assert path[0] == "O" or path[0].startswith("B-")
    for a, b_ in zip(path, path[1:]):
        assert not b_.startswith("I-") or a[2:] == b_[2:] and a != "O"
    assert m.viterbi(torch.zeros(0, 5)) == []


def test_ensemble_averages_the_members_probabilities():
    from graphmie.methods.mner.model import TaggerEnsemble

    a, b = _tagger().eval(), _tagger().eval()               # eval: no BERT dropout
    torch.manual_seed(1)
    for p in list(b.classifier.parameters()) + list(b.ground_head.parameters()):
        p.data.normal_()                                     # a second, different tagger on the same backbone
    batch = _batch()
    h = a.lower(batch["input_ids"], batch["mask"], batch["token_type_ids"])
    ens = TaggerEnsemble([a, b])
    tops = ens.upper(h, batch["mask"], batch["shapes"])
    ha, hb = (m.upper(h, batch["mask"], batch["shapes"]) for m in (a, b))
    want = ((a.emissions(ha).exp() + b.emissions(hb).exp()) / 2).log()
    assert torch.allclose(ens.emissions(tops), want, atol=1e-5)
    assert torch.allclose(ens.emissions(tops).exp().sum(-1), torch.ones(2, 7), atol=1e-5)
    spans = [(0, 1, 3, "PER"), (1, 2, 4, "LOC")]
    pg = (a.ground_logits(ha, spans).sigmoid() + b.ground_logits(hb, spans).sigmoid()) / 2
    assert torch.allclose(ens.ground_logits(tops, spans).sigmoid(), pg, atol=1e-5)
    em = ens.word_emissions(tops, [[1, 2, -1], [1, 2, 3]])
    assert em[0].shape == (3, 5) and len(ens.viterbi(em[1])) == 3
    one = TaggerEnsemble([a])                                 # one member: exactly the tagger
    assert torch.allclose(one.emissions(one.upper(h, batch["mask"], batch["shapes"])), a.emissions(ha), atol=1e-6)
    with pytest.raises(ValueError, match="differ"):
        from transformers import BertConfig, BertModel

        bert = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=32), add_pooling_layer=False)
        TaggerEnsemble([a, MnerTagger(bert, ["PER", "ORG"], n_frozen=1)])
