"""Coded errors: one message template per code, naming the file and the problem."""
import re

import pytest

from graphmie.errors import Errors, GraphmieError, closest
from graphmie.io import read_json


def test_one_template_per_code_and_every_code_distinct():
    codes = {k: v for k, v in vars(Errors).items() if re.fullmatch(r"E\d{3}", k)}
    assert len(codes) >= 30
    fixed = [v.split("{")[0].split(":")[0].strip() for v in codes.values()]
    assert len(set(fixed)) == len(fixed), "two codes share a problem statement"
    e = GraphmieError("E020", "c.toml", key="epohcs", section="[training]", hint=closest("epohcs", ["epochs", "lr"]))
    assert str(e) == "[E020] c.toml: unknown configuration key 'epohcs' in [training]; did you mean 'epochs'?"
    assert e.code == "E020" and e.source == "c.toml" and e.fields["key"] == "epohcs"
    assert str(GraphmieError("E001", "x.json")) == "[E001] x.json: file not found"
    assert "known:" in closest("zzz", ["epochs", "lr"])


def test_coded_error_names_file_and_problem(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"form": [')
    with pytest.raises(GraphmieError) as ei:
        read_json(bad)
    assert ei.value.code == "E003" and str(bad) in str(ei.value) and "malformed JSON" in str(ei.value)
    with pytest.raises(GraphmieError, match=r"\[E001\].*missing.json"):
        read_json(tmp_path / "missing.json")
    empty = tmp_path / "empty.json"
    empty.write_text("  ")
    with pytest.raises(GraphmieError, match="E007"):
        read_json(empty)
