"""The learned OCR word segmenter: its pairs, alignment, targets, decoding and a short training."""
import pytest
import torch

from conftest import shared
from graphmie.document import Box
from graphmie.methods.re2 import segment as S
from re2_pages import W, gold_of, two_field_page


def test_structural_pairs_join_line_neighbours_and_the_row_below():
    words = two_field_page()
    g = S.word_graph(words, 200, 100, torch.zeros(len(words), 384))
    pairs = {tuple(p) for p in g.pairs.tolist()}
    assert {(0, 1), (1, 2), (3, 4), (4, 5)} <= pairs           # consecutive words of each OCR line
    assert (4, 6) in pairs                                      # "12" over "Street": the wrapped line
    assert (0, 6) not in pairs                                  # two rows and far left: not a candidate
    # pair p's two directions are edge rows p and p + P; context edges follow
    P = len(g.pairs)
    assert torch.equal(g.edge_index[:, :P].flip(0), g.edge_index[:, P:2 * P])
    assert g.edge_attr.shape == (g.edge_index.shape[1], S.edge_dim())


def test_align_words_and_pair_targets():
    words = two_field_page()
    gold = gold_of(words, [[0], [1, 2], [3], [4, 5, 6]], ["question", "answer", "question", "answer"])
    # OCR words whose boxes are slightly off still align; a word on empty paper aligns to nothing
    ocr = [w._replace(box=Box(w.box.x0 + 1, w.box.y0 + 1, w.box.x1 + 1, w.box.y1 + 1)) for w in words]
    ocr.append(W("noise", 150, 80, 180, 90, 3))
    owner = S.align_words(ocr, gold)
    assert owner == [0, 1, 1, 2, 3, 3, 3, -1]
    g = S.word_graph(ocr, 200, 100, torch.zeros(len(ocr), 384))
    t = S.gold_pair_targets(g, owner)
    target = {tuple(p): float(v) for p, v in zip(g.pairs.tolist(), t.tolist())}
    assert target[(0, 1)] == 0.0 and target[(1, 2)] == 1.0 and target[(4, 6)] == 1.0 and target[(3, 4)] == 0.0


def test_line_cues_describe_the_two_words_lines():
    words = two_field_page()
    g = S.word_graph(words, 200, 100, torch.zeros(len(words), 384))
    P = len(g.pairs)
    cues = {tuple(p): g.edge_attr[r, -S.LINE_CUES:].tolist() for r, p in enumerate(g.pairs.tolist())}
    # "12" (line 1, starts at x=70 after "Address:") over "Street" (line 2, starts at x=70): the lines'
    # left edges 70 apart; line 1 does not end in ':' or '.', "Street" starts its line, "12" does not end its
    left, right, width, colon, stop, lower, digit, ends, starts = cues[(4, 6)]
    unit = g.unit
    assert left == pytest.approx(max(min((70 - 0) / unit, 10), -10) / 10)
    assert right == pytest.approx(max(min((110 - 115) / unit, 10), -10) / 10)
    assert (colon, stop, lower, digit, ends, starts) == (0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    # the reverse edge reads from "Street"'s line to "12"'s: "Street" ends its line; "12"'s line starts
    # with "Address:" (not a digit), so "12" does not start it
    rev = g.edge_attr[P + list(cues).index((4, 6)), -S.LINE_CUES:].tolist()
    assert rev[6:] == [0.0, 1.0, 0.0] and rev[0] == pytest.approx(-left)
    # without the cues the graph is the older segmenters' (fewer edge features, same pairs)
    old = S.word_graph(words, 200, 100, torch.zeros(len(words), 384), line_cues=False)
    assert old.edge_attr.shape[1] == S.edge_dim(False) == S.edge_dim() - S.LINE_CUES
    assert torch.equal(old.edge_attr, g.edge_attr[:, :S.edge_dim(False)]) and torch.equal(old.pairs, g.pairs)


def test_seg_sample_word_labels_follow_the_alignment():
    words = two_field_page() + [W("noise", 150, 80, 180, 90, 3)]
    gold = gold_of(words[:-1], [[0], [1, 2], [3], [4, 5, 6]], ["question", "answer", "question", "answer"])

    class Zero:
        def text_vectors(self, texts):
            return torch.zeros(len(texts), 384)

    s = S.seg_sample(words, gold, Zero())
    # question = 0, answer = 1; the stray word aligns to nothing and is left out of the loss
    assert s.word_labels.tolist() == [0, 1, 1, 0, 1, 1, 1, -100]


def test_components_and_reading_order():
    words = two_field_page()
    blocks = S.components(len(words), [(1, 2), (4, 5), (5, 6)])
    assert blocks == [[0], [1, 2], [3], [4, 5, 6]]
    shuffled = [6, 5, 4]
    assert S.reading_order(words, shuffled) == [4, 5, 6]


def test_project_gold_labels_and_links_through_blocks():
    words = two_field_page()
    gold = gold_of(words, [[0], [1, 2], [3], [4, 5, 6]], ["question", "answer", "question", "answer"],
                   links=[(0, 1), (2, 3)])
    # a segmentation that merged "Name: John Smith" and split the address into its two lines
    doc = S.project_gold(gold, words, [[0, 1, 2], [3], [4, 5], [6]])
    labels = [e.label for e in doc.entities]
    assert labels == ["answer", "question", "answer", "answer"]          # majority: 2 of 3 words are the answer
    links = {(r.head, r.tail) for r in doc.relations}
    assert links == {("e1", "e2"), ("e1", "e3")}                          # the address link reaches both halves


def test_a_segmenter_learns_line_splits_and_wraps():
    """Trained on synthetic pages, the segmenter must split "label: value" lines and join wrapped values."""
    import random

    rng = random.Random(0)

    def page():
        words, groups, y, line = [], [], 0.0, 0
        for _ in range(6):
            x = rng.uniform(0, 20)
            q = [W(f"Field{rng.randint(0, 9)}:", x, y, x + 50, y + 10, line)]
            vx = x + 50 + rng.uniform(8, 30)
            a = [W("val", vx, y, vx + 25, y + 10, line), W("ue", vx + 29, y, vx + 45, y + 10, line)]
            n0 = len(words)
            words += q + a
            groups += [[n0], [n0 + 1, n0 + 2]]
            if rng.random() < 0.5:          # the value wraps onto the next line
                words.append(W("more", vx, y + 13, vx + 30, y + 23, line + 1))
                groups[-1].append(len(words) - 1)
                y += 13
                line += 1
            y += rng.uniform(20, 30)
            line += 1
        return words, groups

    pages = [page() for _ in range(24)]
    feats_dim = torch.zeros
    samples = []
    for words, groups in pages:
        gold = gold_of(words, groups, ["question", "answer"] * (len(groups) // 2))
        g = S.word_graph(words, 200, 400, feats_dim(len(words), 384))
        owner = S.align_words(words, gold)
        samples.append(S.SegSample(g, S.gold_pair_targets(g, owner),
                                   torch.tensor([0 if words[i].text.startswith("Field") else 1 for i in range(len(words))])))
    for label_weight in (0.0, 1.0):
        net = S.train_segmenter(samples[:20], epochs=15, batch_size=1, seed=0, label_weight=label_weight)
        exact = total = right = seen = 0
        for (words, groups), s in zip(pages[20:], samples[20:]):
            blocks = S.segment_page(net, words, 200, 400, torch.zeros(len(words), 384), threshold=0.5)
            exact += len({tuple(b) for b in blocks} & {tuple(sorted(g)) for g in groups})
            total += len(groups)
            if net.num_labels:
                with torch.inference_mode():
                    pred = net.label_head(net.encode(s.graph.x, s.graph.edge_index, s.graph.edge_attr)).argmax(-1)
                right += int((pred == s.word_labels).sum())
                seen += len(pred)
        assert exact / total >= 0.9, (label_weight, exact, total)
        # with the label loss the words' labels are learnt too (question = "FieldN:", answer = the rest)
        assert (net.num_labels == 0) if label_weight == 0 else right / seen >= 0.95, (right, seen)


@pytest.mark.parametrize("cues,labels", [(True, 4), (False, 0)])
def test_segmenter_checkpoint_round_trip(tmp_path, cues, labels):
    net = S.WordSegmenter(edge_dim=S.edge_dim(cues), hidden=32, layers=1, num_labels=labels, line_cues=cues)
    seg = S.Segmenter(net, threshold=0.6, k=5)
    path = seg.save(tmp_path / "seg.safetensors", {"note": "test"})
    back = S.load_segmenter(path)
    assert back.threshold == 0.6 and back.k == 5 and back.net.hidden == 32
    assert back.net.line_cues is cues and back.net.num_labels == labels
    words = two_field_page()
    x = torch.randn(len(words), 384)
    g = S.word_graph(words, 200, 100, x, line_cues=cues)
    with torch.inference_mode():
        a = net.eval()(g.x, g.edge_index, g.edge_attr, len(g.pairs))
        b = back.net(g.x, g.edge_index, g.edge_attr, len(g.pairs))
    assert torch.allclose(a, b, atol=2e-2)                     # fp16 weights on disk
    assert back(words, 200, 100) == S.segment_page(net, words, 200, 100, back.feats.text_vectors(
        [w.text for w in words]), 0.6, 5)                       # the loaded one builds its own kind of graph


def test_segmenter_ensemble_averages_its_members_and_round_trips(tmp_path):
    torch.manual_seed(0)
    members = [S.WordSegmenter(edge_dim=S.edge_dim(), hidden=16, layers=1).eval() for _ in range(3)]
    ens = S.SegmenterEnsemble(members).eval()
    words = two_field_page()
    g = S.word_graph(words, 200, 100, torch.randn(len(words), 384))
    with torch.inference_mode():
        p = torch.sigmoid(ens(g.x, g.edge_index, g.edge_attr, len(g.pairs)))
        mean = torch.stack([torch.sigmoid(m(g.x, g.edge_index, g.edge_attr, len(g.pairs))) for m in members]).mean(0)
    assert torch.allclose(p, mean, atol=1e-5)
    assert all(k.startswith("members.") for k in ens.state_dict())         # one copy of each weight
    back = S.load_segmenter(S.Segmenter(ens, 0.7).save(tmp_path / "ens.safetensors"))
    assert isinstance(back.net, S.SegmenterEnsemble) and len(back.net.members) == 3
    with torch.inference_mode():
        q = torch.sigmoid(back.net(g.x, g.edge_index, g.edge_attr, len(g.pairs)))
    assert torch.allclose(p, q, atol=1e-2)
    with pytest.raises(ValueError):
        S.SegmenterEnsemble([members[0], S.WordSegmenter(edge_dim=S.edge_dim(False), line_cues=False)])


def test_train_segmenters_seeds_its_members_one_apart():
    words = two_field_page()
    gold = gold_of(words, [[0], [1, 2], [3], [4, 5, 6]], ["question", "answer", "question", "answer"])
    g = S.word_graph(words, 200, 100, torch.zeros(len(words), 384))
    samples = [S.SegSample(g, S.gold_pair_targets(g, S.align_words(words, gold)))]
    one = S.train_segmenters(samples, 1, seed=3, epochs=2, batch_size=1, hidden=16, layers=1)
    assert isinstance(one, S.WordSegmenter)
    ens = S.train_segmenters(samples, 2, seed=3, epochs=2, batch_size=1, hidden=16, layers=1)
    assert isinstance(ens, S.SegmenterEnsemble) and len(ens.members) == 2
    for k, member in enumerate(ens.members):
        alone = S.train_segmenter(samples, seed=3 + k, epochs=2, batch_size=1, hidden=16, layers=1)
        assert all(torch.equal(a, b) for a, b in zip(member.state_dict().values(), alone.state_dict().values()))


def test_segmenter_saved_before_the_line_cues_still_loads(tmp_path):
    """A checkpoint whose config has no ``features.line_cues`` (the earlier segmenters) reads its
    graphs without the cues; one whose edge size does not match its features is refused."""
    from graphmie.engine.checkpoint import save_checkpoint
    from graphmie.errors import GraphmieError

    net = S.WordSegmenter(edge_dim=S.edge_dim(False), hidden=16, layers=1, line_cues=False)
    cfg = {"model": {"hidden": 16, "layers": 1}, "decode": {"threshold": 0.7, "k": 6}}
    path = save_checkpoint(tmp_path / "old.safetensors", S.SEGMENTER_METHOD, net.state_dict(), cfg,
                           {"edge_dim": S.edge_dim(False)})
    back = S.load_segmenter(path)
    assert back.net.line_cues is False and back.net.num_labels == 0
    bad = save_checkpoint(tmp_path / "bad.safetensors", S.SEGMENTER_METHOD, net.state_dict(), cfg,
                          {"edge_dim": S.edge_dim(True)})
    with pytest.raises(GraphmieError) as e:
        S.load_segmenter(bad)
    assert e.value.code == "E025"


def test_segmenter_refuses_weights_of_another_method(tmp_path):
    from graphmie.engine.checkpoint import save_checkpoint
    from graphmie.errors import GraphmieError

    path = save_checkpoint(tmp_path / "x.safetensors", "re2", {"w": torch.zeros(1)}, {})
    with pytest.raises(GraphmieError) as e:
        S.load_segmenter(path)
    assert e.value.code == "E027"


def test_shipped_segmenter_on_real_ocr_beats_the_rule():
    """The shipped segmenter on the cached/computed OCR of 4 dev forms (not trained on): block F1
    above the row rule's (IoU ≥ 0.5, one to one)."""
    from graphmie.data.funsd import list_annotations, read_funsd
    from graphmie.engine.checkpoint import WEIGHTS_DIR, read_sidecar
    from graphmie.evaluation.form import match_boxes
    from graphmie.evaluation.prf import PRF
    from layout.ocr import cached_ocr_words, words_to_form

    folder = shared("funsd", "training_data")
    weights = WEIGHTS_DIR / f"{S.DEFAULT_WEIGHTS}.safetensors"
    dev = read_sidecar(weights)["record"]["dev_ids"][:4]
    files = {f.stem: f for f in list_annotations(folder)}
    seg = S.load_segmenter()
    f1 = {"rule": PRF(), "learned": PRF()}
    for i in dev:
        d = read_funsd(files[i])
        words, _ = cached_ocr_words(d.pages[0].image)
        pg = d.pages[0]
        gb = {e.id: e.box for e in d.entities}
        for name, blocks in (("rule", None), ("learned", seg(words, pg.width, pg.height))):
            od = words_to_form(words, d.source, pg.width, pg.height, blocks=blocks)
            n = len(match_boxes({e.id: e.box for e in od.entities}, gb, 0.5))
            f1[name].add(tp=n, fp=len(od.entities) - n, fn=len(gb) - n)
    assert f1["learned"].f1 > f1["rule"].f1, {k: v.f1 for k, v in f1.items()}
    assert f1["learned"].f1 >= 0.65, f1["learned"].f1
