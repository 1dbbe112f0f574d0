"""``graphmie export`` on awkward destinations and contents: coded errors, nothing half-written."""
import json
import os

import pytest

from graphmie.cli import main
from graphmie.document import Document, Entity, Provenance, Relation


def _results(tmp_path, text="Ann met Bob"):
    res = tmp_path / "res"
    res.mkdir(exist_ok=True)
    d = Document(id="d", kind="post", source="s.json", text=text,
                 entities=[Entity("a", text[:3], "PER", span=(0, 3), provenance=Provenance("s.json", span=(0, 3))),
                           Entity("b", "Bob", "PER", span=(8, 11), provenance=Provenance("s.json", span=(8, 11)))],
                 relations=[Relation("r", "a", "b", "/per/per/peer", Provenance("s.json", model="m", score=0.7))])
    (res / "d.json").write_text(json.dumps(d.to_dict(), ensure_ascii=False))
    return res


@pytest.mark.parametrize("fmt,make,code", [
    ("ttl", "folder", "E030"), ("neo4j-csv", "file", "E030")])
def test_out_of_the_wrong_kind_is_a_coded_error(tmp_path, capsys, fmt, make, code):
    res = _results(tmp_path)
    out = tmp_path / "out"
    out.mkdir() if make == "folder" else out.write_text("keep me")
    assert main(["export", str(res), "--format", fmt, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"[{code}]" in err and "Traceback" not in err
    assert out.is_dir() if make == "folder" else out.read_text() == "keep me"


def test_ladybug_path_that_is_not_a_database(tmp_path, capsys):
    bogus = tmp_path / "db.lbug"
    bogus.write_text("not a database")
    assert main(["export", str(_results(tmp_path)), "--ladybug", str(bogus)]) == 2
    assert "[E002]" in capsys.readouterr().err and bogus.read_text() == "not a database"


def test_nothing_exported_writes_nothing_and_outputs_get_normal_permissions(tmp_path, capsys):
    out = tmp_path / "kg.ttl"
    assert main(["export", str(tmp_path / "missing.json"), "--format", "ttl", "--out", str(out)]) == 1
    assert "[E001]" in capsys.readouterr().err and not out.exists() and not list(tmp_path.glob(".*tmp"))
    assert main(["export", str(_results(tmp_path)), "--format", "ttl", "--out", str(out)]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert (out.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_cypher_script_with_line_separators_round_trips(tmp_path):
    from kg_export.cypher import LadybugStore

    text = "Ann\u2028met\u2029Bob\x85"
    res = _results(tmp_path, text=text)
    script = tmp_path / "kg.cypher"
    assert main(["export", str(res), "--format", "cypher", "--out", str(script)]) == 0
    assert "\u2028" not in script.read_text(encoding="utf-8")
    lb = LadybugStore(tmp_path / "lb" / "db")
    assert lb.load_script(script.read_text(encoding="utf-8")) > 0
    assert lb.query("MATCH (d:Document) RETURN d.text")[0][0] == text
    lb.close()
