"""Reversed-pair augmentation: the implied labels, the share, and no pair a post already has."""
from graphmie.data.mnre import MNRESample
from graphmie.methods.mre_ise.train import with_reversed_pairs
from graphmie.methods.mre_ise.types import reverse_label


def sample(head, tail, relation, tokens="Alice and Bob met in Paris".split()):
    return MNRESample(tokens=tokens, head=head, tail=tail, head_name=" ".join(tokens[slice(*head)]),
                      tail_name=" ".join(tokens[slice(*tail)]), img_id="x.jpg", relation=relation)


def test_reverse_labels_follow_mnre_convention():
    assert reverse_label("/per/per/peer") == "/per/per/peer"
    assert reverse_label("/per/loc/place_of_residence") == "None" and reverse_label("None") == "None"


def test_reversed_pairs_are_added_with_implied_labels_and_never_duplicate_a_post_pair():
    rows = [sample((0, 1), (2, 3), "/per/per/peer"), sample((0, 1), (5, 6), "/per/loc/place_of_residence"),
            sample((2, 3), (5, 6), "None"), sample((5, 6), (2, 3), "None")]   # both directions already there
    out, n = with_reversed_pairs(rows, 1.0, seed=0)
    assert out[:4] == rows and n == 2 == len(out) - 4
    got = {(s.head, s.tail): s for s in out[4:]}
    assert got[((2, 3), (0, 1))].relation == "/per/per/peer" and got[((2, 3), (0, 1))].head_name == "Bob"
    assert got[((5, 6), (0, 1))].relation == "None" and got[((5, 6), (0, 1))].tail_name == "Alice"
    assert with_reversed_pairs(rows, 0.0, seed=0)[1] == 0
    many = [sample((0, 1), (k, k + 1), "None", tokens=["w"] * 400) for k in range(1, 399)]
    share = with_reversed_pairs(many, 0.3, seed=1)[1] / len(many)
    assert 0.22 < share < 0.38 and with_reversed_pairs(many, 0.3, seed=1)[1] == with_reversed_pairs(many, 0.3, 1)[1]
