"""The frozen-encoder cache: per-item states in input order, computed once, kept on disk."""
import torch

from graphmie.engine.cache import FeatureStore, content_key, frozen_states


def test_frozen_states_order_lengths_and_disk_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHMIE_CACHE", str(tmp_path))
    items = [{"input_ids": list(range(n))} for n in (3, 1, 5, 2)]
    calls = []

    def run(batch):
        calls.append([len(b["input_ids"]) for b in batch])
        L = max(len(b["input_ids"]) for b in batch)
        h = torch.zeros(len(batch), L, 2)
        for i, b in enumerate(batch):
            h[i, :len(b["input_ids"]), 0] = torch.tensor(b["input_ids"], dtype=torch.float)
        return h, [len(b["input_ids"]) for b in batch]

    out = frozen_states(items, run, cache="t", key=("k",), batch_size=2, progress=False)
    assert calls == [[1, 2], [3, 5]]                               # batched by length
    assert [o.shape[0] for o in out] == [3, 1, 5, 2] and all(o.dtype == torch.float16 for o in out)
    assert out[2][:, 0].tolist() == [0, 1, 2, 3, 4]
    again = frozen_states(items, run, cache="t", key=("k",), batch_size=2)
    assert len(calls) == 2 and all(torch.equal(a, b) for a, b in zip(out, again))   # read from disk
    frozen_states(items, run, cache="t", key=("other",), batch_size=2)
    assert len(calls) == 4                                         # another key computes again


def test_feature_store_persists(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHMIE_CACHE", str(tmp_path))
    st = FeatureStore("t", "vectors")
    assert st.get("a", lambda: torch.ones(2)).tolist() == [1.0, 1.0]
    st.save()
    st2 = FeatureStore("t", "vectors")
    assert "a" in st2 and st2.get("a", lambda: torch.zeros(2)).tolist() == [1.0, 1.0]
    assert FeatureStore(None, "mem").path is None
    assert content_key(1, "a") == content_key(1, "a") != content_key(2, "a")
