"""The SeqGMPER network: shared initial weights of the ablation, the pointer head's loss and
decoding, the attention features and prior."""
from __future__ import annotations

import pytest
import torch

from graphmie.errors import GraphmieError
from graphmie.methods.seqgmper.graph import build_step_graph, candidate_pairs
from graphmie.methods.seqgmper.model import EntityInputs, FlowScores, SeqGMPER
from graphmie.methods.seqgmper.train import build_model

N_LABELS = 13


def test_model_variants_share_their_initial_weights():
    torch.manual_seed(3)
    full = build_model({"seq_attention": True}).state_dict()
    torch.manual_seed(3)
    ablation = build_model({"seq_attention": False}).state_dict()
    assert set(ablation) < set(full) and any(k.startswith("seq.") for k in full)
    assert all(torch.equal(full[k], ablation[k]) for k in ablation)   # only the attention differs


def test_unknown_flow_head():
    with pytest.raises(GraphmieError) as e:
        SeqGMPER(hidden=16, heads=2, flow_head="greedy")
    assert e.value.code == "E022" and "pointer" in str(e.value)


def _pointer_case():
    torch.manual_seed(0)
    model = SeqGMPER(hidden=16, heads=2, flow_head="pointer").eval()
    reps, types = torch.randn(3, 16), torch.tensor([0, 3, 3])
    pairs = [(0, 1), (0, 2), (1, 2)]
    logits = torch.zeros(3, N_LABELS + 1)
    logits[1, 4] = 12.0                                        # head 0 -> tail 2, label 4
    with torch.no_grad():
        no_flow = model.no_flow(torch.cat([reps, model.type_emb(types)], -1)).squeeze(-1)
    return model, FlowScores(pairs, logits, reps, types), no_flow


def test_pointer_head_loss_and_choice():
    model, s, nf = _pointer_case()
    with torch.no_grad():
        flows = model.decode_flows(s)
    # one choice per head entity (0 and 1); head 0 chooses (tail 2, label 4) among 2 pairs x 13 labels + none
    assert [f[:3] for f in flows if f[0] == 0] == [(0, 2, 4)] and {f[0] for f in flows} <= {0, 1}
    first = FlowScores(s.pairs[:2], s.logits[:2], s.reps, s.types)
    good = model.flow_loss(first, {(0, 2): 4}, 1.0)
    bad = model.flow_loss(first, {(0, 1): 0}, 1.0)
    assert good.item() < 0.01 < 5.0 < bad.item()
    # head 0 without gold flow: -log p(no flow) over its 2 * 13 + 1 choices
    sc0 = torch.cat([s.logits[0, :N_LABELS], s.logits[1, :N_LABELS], nf[0:1]])
    assert torch.allclose(model.flow_loss(first, {}, 1.0), torch.logsumexp(sc0, 0) - nf[0], atol=1e-5)
    # a head without gold flow is scored on "no flow" (the last choice), weighted by none_weight
    sc = torch.cat([s.logits[2, :N_LABELS], nf[1:2]])
    expect = torch.logsumexp(sc, 0) - sc[-1]
    got = model.flow_loss(FlowScores(s.pairs[2:], s.logits[2:], s.reps, s.types), {}, 0.5)
    assert torch.allclose(got, expect, atol=1e-5)
    # two heads: the one with gold weighs 1, the one without none_weight
    both = model.flow_loss(s, {(0, 2): 4}, 0.5)
    assert torch.allclose(both, (good + 0.5 * expect) / 1.5, atol=1e-5)


def test_pointer_decoding_of_no_flow_and_probability():
    model, s, nf = _pointer_case()
    s.logits[2, :N_LABELS] = -30.0                             # head 1: "no flow" wins
    with torch.no_grad():
        flows = model.decode_flows(s)
    assert [f[:3] for f in flows] == [(0, 2, 4)]
    p = torch.softmax(torch.cat([s.logits[0, :N_LABELS], s.logits[1, :N_LABELS], nf[0:1]]), 0)[N_LABELS + 4]
    assert flows[0][3] == pytest.approx(float(p))
    assert model.decode_flows(None) == []


def test_pairwise_head_loss_and_choice():
    torch.manual_seed(0)
    model = SeqGMPER(hidden=16, heads=2, flow_head="pairwise").eval()
    pairs = [(0, 1), (0, 2), (1, 2)]
    logits = torch.zeros(3, N_LABELS + 1)
    logits[:, N_LABELS] = 5.0                                  # none everywhere ...
    logits[0, 2], logits[1, 7] = 8.0, 9.0                      # ... except head 0: tail 1 / label 2, tail 2 / label 7
    s = FlowScores(pairs, logits, torch.zeros(3, 16), torch.tensor([0, 3, 3]))
    assert [f[:3] for f in model.decode_flows(s)] == [(0, 2, 7)]   # the best pair that beats none
    y = torch.tensor([2, N_LABELS, N_LABELS])
    w = torch.ones(N_LABELS + 1)
    w[N_LABELS] = 0.5
    assert torch.allclose(model.flow_loss(s, {(0, 1): 2}, 0.5), torch.nn.functional.cross_entropy(logits, y, weight=w))


@torch.no_grad()
def test_attention_features_and_prior():
    torch.manual_seed(0)
    model = SeqGMPER(hidden=16, heads=2).eval()
    graph = build_step_graph([[0, 1, 2], [3, 4]], [[1, -1, 1], [-1, 0]])
    h, att = model.encode(torch.randn(5, 384), None, graph)
    assert h.shape == (5, 32) and att.shape == (2, 5, 5)
    spans, steps = [[0], [1, 2], [3], [4]], [0, 0, 1, 1]
    pairs = candidate_pairs(steps)
    pa = model.pair_attention(att, spans, pairs)
    assert pa.shape == (len(pairs), 3)
    for (a, b), row in zip(pairs, pa):
        if steps[a] == steps[b]:
            assert torch.all(row == 0)                         # same step: no attention features, no prior
        else:
            assert row[0] > 0
    for tail in (2, 3):                                        # a tail's mass over all of step 0 is 1
        total = sum(float(pa[k, 0]) for k, (a, b) in enumerate(pairs) if b == tail)
        assert abs(total - 1.0) < 1e-5
    types = torch.tensor([0, 3, 3, 0])
    logits = model.pair_logits(model.span_reps(h, spans), types, steps, [0, 1, 3, 4], pairs, spans, att)
    model.att_prior.data.fill_(0.0)
    plain = model.pair_logits(model.span_reps(h, spans), types, steps, [0, 1, 3, 4], pairs, spans, att)
    cross = torch.tensor([steps[a] != steps[b] for a, b in pairs])
    assert torch.allclose(logits[~cross], plain[~cross])
    assert not torch.allclose(logits[cross, :-1], plain[cross, :-1]) and torch.allclose(logits[:, -1], plain[:, -1])
    # the flow scores of the entities are these logits
    s = model.flow_scores(h, att, EntityInputs(spans, types, steps, [0, 1, 3, 4]))
    assert s.pairs == pairs and torch.allclose(s.logits, plain)
    assert model.flow_scores(h, att, EntityInputs([[0]], types[:1], [0], [0])) is None


def test_ablation_has_no_attention():
    torch.manual_seed(0)
    model = SeqGMPER(hidden=16, heads=2, seq_attention=False).eval()
    h, att = model.encode(torch.randn(3, 384), None, build_step_graph([[0], [1, 2]], [[-1], [-1, 0]]))
    assert att is None and torch.equal(h[:, :16], h[:, 16:])   # both halves are the local state
    assert torch.all(model.pair_attention(None, [[0], [1]], [(0, 1)]) == 0)
    assert model.attention_loss(None, [[0], [1]], [(0, 1)]).item() == 0.0


def test_bio_tag_decode_repairs_orphan_inside_tags_within_each_step():
    from graphmie.data.wikihow_fg import BIO_TAGS

    tag = {t: i for i, t in enumerate(BIO_TAGS)}
    typ = BIO_TAGS[1][2:]                              # the first entity type (B-typ is tag 1)
    # step 0: words "O I-typ I-typ" by argmax, B-typ a close second on word 1; step 1: one word whose argmax
    # is I-typ although the previous step ended inside a typ entity (steps are decoded apart)
    logits = torch.full((4, len(BIO_TAGS)), -5.0)
    logits[0, tag["O"]] = 3.0
    logits[1, tag[f"I-{typ}"]], logits[1, tag[f"B-{typ}"]] = 2.0, 1.8
    logits[2, tag[f"I-{typ}"]] = 3.0
    logits[3, tag[f"I-{typ}"]], logits[3, tag["O"]] = 2.0, 1.0
    graph = build_step_graph([[0, 1, 2], [3]], [[-1, 0, 0], [-1]])
    model = SeqGMPER(hidden=16, heads=2).eval()
    model.tag_logits = lambda h, x: logits
    h = torch.zeros(4, 32)
    pred, conf = model.decode_tags(h, None, graph)
    assert [BIO_TAGS[i] for i in pred] == ["O", f"I-{typ}", f"I-{typ}", f"I-{typ}"]    # argmax: orphans
    model.tag_decode = "bio"
    pred, conf = model.decode_tags(h, None, graph)
    assert [BIO_TAGS[i] for i in pred] == ["O", f"B-{typ}", f"I-{typ}", "O"]
    probs = torch.softmax(logits, -1)
    assert torch.allclose(conf, probs[torch.arange(4), pred])          # the chosen tag's own probability
    with pytest.raises(GraphmieError) as e:
        SeqGMPER(hidden=16, heads=2, tag_decode="crf")
    assert e.value.code == "E022" and "bio" in str(e.value)
