"""Resource limits: one place, documented defaults, raised through GRAPHMIE_MAX_*; text repair."""
import pytest

from graphmie import limits
from graphmie.data.text import Repairs, repair
from graphmie.errors import GraphmieError


def test_limit_refusal_names_the_limit_and_how_to_raise_it(monkeypatch):
    with pytest.raises(GraphmieError) as e:
        limits.check("post_chars", 10_001, "p.json", "the post's text (characters)")
    assert e.value.code == "E032" and "10,001" in str(e.value) and "GRAPHMIE_MAX_POST_CHARS=N" in str(e.value)
    monkeypatch.setenv("GRAPHMIE_MAX_POST_CHARS", "20_000")
    limits.check("post_chars", 10_001, "p.json", "text")
    assert limits.get("post_chars") == 20_000
    monkeypatch.setenv("GRAPHMIE_MAX_POST_CHARS", "lots")
    with pytest.raises(GraphmieError, match="E021"):
        limits.get("post_chars")


def test_every_limit_is_documented():
    rows = limits.describe()
    assert {n for n, *_ in rows} == {f for f in limits.Limits.__dataclass_fields__}
    assert all(v.startswith("GRAPHMIE_MAX_") and d > 0 and what for _, v, d, what in rows)
    from conftest import REPO

    doc = (REPO / "docs" / "limits.md").read_text(encoding="utf-8")
    assert all(v in doc and f"{d:,}" in doc for _, v, d, _ in rows)


def test_repair_decodes_escaped_bytes_and_lone_surrogates():
    raw = b"caf\xc3\xa9 \xff end".decode("utf-8", "surrogateescape")
    assert repair(raw) == ("café \ufffd end", 1)
    assert repair("a\ud800b\ufffd") == ("a\ufffdb\ufffd", 1)
    assert repair("plain") == ("plain", 0)
    fix, meta = Repairs(), {}
    assert fix.json({"k\ud800": ["x\udcff", 1]}, "detections") == {"k\ufffd": ["x\ufffd", 1]}
    fix.report(meta)
    assert meta["text_repairs"]["replaced"] == {"detections": 2}
