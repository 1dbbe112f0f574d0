"""The MNRE reader: good records, bad records skipped with their file:line and code, captions and boxes."""
import json

import pytest

from graphmie.data.mnre import load_boxes, load_captions, load_split, parse_record
from graphmie.errors import GraphmieError

GOOD = ("{'token': ['Messi', 'joins', 'Barcelona', 'today'], 'h': {'name': 'Messi', 'pos': [0, 1]}, "
        "'t': {'name': 'Barcelona', 'pos': [2, 3]}, 'img_id': 'a.jpg', 'relation': '/per/org/member_of'}")


def write_mnre(tmp_path, lines):
    (tmp_path / "rel2id.json").write_text(json.dumps({"None": 0, "/per/org/member_of": 9}))
    (tmp_path / "mnre_x.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "captions").mkdir()
    (tmp_path / "captions" / "llavanext_x.json").write_text(json.dumps({"a": "A footballer on a pitch."}))
    (tmp_path / "boxes").mkdir()
    (tmp_path / "boxes" / "x_detect_boxes.json").write_text(json.dumps({"a_crop_0.jpg": [0.5, 0.5, 0.4, 0.8, 0.32]}))
    return tmp_path


def test_mnre_reader_skips_bad_records_and_names_them(tmp_path):
    bad = [
        GOOD.replace("'pos': [2, 3]", "'pos': [2, 9]"),                      # span outside the text
        GOOD.replace("['Messi', 'joins', 'Barcelona', 'today']", "[]"),      # empty text
        GOOD.replace("/per/org/member_of", "/per/org/boss_of"),              # unknown label
        GOOD.replace("'a.jpg'", "'../../etc/passwd'"),                       # img_id not an image name
        GOOD.replace("'name': 'Barcelona'", "'name': 'Madrid'"),             # name does not match its span
        "__import__('os').system('echo pwned')",                             # never evaluated
        "{'token': ['x']",                                                   # truncated
    ]
    d = write_mnre(tmp_path, [GOOD] + bad + [GOOD])
    samples, skipped = load_split(d, "x")
    assert len(samples) == 2 and len(skipped) == 7
    assert samples[0].caption == "A footballer on a pitch." and samples[0].boxes == [[0.5, 0.5, 0.4, 0.8, 0.32]]
    codes = [e.code for e in skipped]
    assert codes == ["E014", "E007", "E013", "E012", "E012", "E004", "E004"]
    assert all(f"mnre_x.txt:{i}" in str(e) for i, e in zip(range(2, 9), skipped))
    with pytest.raises(GraphmieError, match="E016"):
        load_split(d, "nosuchsplit")


def test_record_field_errors_have_their_own_codes():
    rel2id = {"None": 0, "/per/org/member_of": 9}
    cases = {GOOD.replace("'relation': '/per/org/member_of'", "'rel': 1"): "E018",      # missing key
             GOOD.replace("['Messi', 'joins', 'Barcelona', 'today']", "'Messi joins'"): "E019",
             GOOD.replace("'pos': [0, 1]", "'pos': '0-1'"): "E019",
             GOOD.replace("'h': {'name': 'Messi', 'pos': [0, 1]}", "'h': {'name': 'Messi'}"): "E018",
             GOOD.replace("'h': {'name': 'Messi', 'pos': [0, 1]}", "'h': 'Messi'"): "E019"}
    for line, code in cases.items():
        with pytest.raises(GraphmieError, match=code):
            parse_record(line, rel2id, "x.txt:1")
    s = parse_record(GOOD, rel2id, "x.txt:1")
    assert (s.head, s.tail, s.head_name, s.text) == ((0, 1), (2, 3), "Messi", "Messi joins Barcelona today")


def test_captions_and_boxes(tmp_path):
    d = write_mnre(tmp_path, [GOOD])
    assert load_captions(d, "x") == {"a": "A footballer on a pitch."}
    assert load_captions(d, "nosplit") == {} and load_boxes(d, "nosplit") == {}
    assert load_boxes(d, "x") == {"a": [[0.5, 0.5, 0.4, 0.8, 0.32]]}
    with pytest.raises(GraphmieError, match="E022"):
        load_captions(d, "x", "gpt4")
