"""BIO decoding under the scheme's constraints (graphmie.nn.bio)."""
import itertools

import torch

from graphmie.nn.bio import allowed_transitions, bio_viterbi

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def valid(path):
    prev = "O"
    for lab in path:
        if lab.startswith("I-") and prev[2:] != lab[2:]:
            return False
        prev = lab
    return True


def test_allowed_transitions():
    ok = allowed_transitions(LABELS)
    assert ok[1, 2] and ok[2, 2] and not ok[0, 2] and not ok[3, 2] and not ok[2, 4]
    assert ok[:, [0, 1, 3]].all()                      # O and B- may follow anything


def test_viterbi_is_the_best_valid_path_by_brute_force():
    g = torch.Generator().manual_seed(0)
    for n in (1, 2, 4):
        for _ in range(20):
            emis = torch.log_softmax(torch.randn(n, len(LABELS), generator=g) * 3, -1)
            path = bio_viterbi(emis, LABELS)
            best = max((p for p in itertools.product(range(len(LABELS)), repeat=n)
                        if valid([LABELS[i] for i in p])), key=lambda p: float(emis[torch.arange(n), list(p)].sum()))
            assert valid([LABELS[i] for i in path])
            assert float(emis[torch.arange(n), path].sum()) == float(emis[torch.arange(n), list(best)].sum())
    assert bio_viterbi(torch.zeros(0, 5), LABELS) == []
