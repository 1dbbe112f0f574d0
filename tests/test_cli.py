"""The command line: config errors name the key, a closed pipe is no traceback, folders as inputs."""
import json
import subprocess
import sys

from conftest import REPO

from graphmie.cli import main


def _run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "graphmie", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=600, **kw)


def test_train_with_a_misspelt_key_names_it_and_the_closest_key(capsys):
    rc = main(["train", str(REPO / "configs" / "form_re2.toml"), "--set", "training.epohcs=1"])
    err = capsys.readouterr().err
    assert rc == 2 and "[E020]" in err and "'epohcs'" in err and "did you mean 'epochs'" in err
    assert "form_re2.toml" in err


def test_train_unknown_task_and_evaluate_unknown_option(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('task = "nonsense"\n')
    assert main(["train", str(cfg)]) == 2
    assert "[E022]" in capsys.readouterr().err
    assert main(["evaluate", "--task", "form", "--data", str(tmp_path), "--set", "limt=3"]) == 2
    err = capsys.readouterr().err
    assert "[E020]" in err and "'limt'" in err and "did you mean 'limit'" in err


def test_query_into_a_closed_pipe_is_quiet(tmp_path):
    from kg_export.store import OxigraphStore

    import pyoxigraph as ox

    st = OxigraphStore(tmp_path / "st")
    st.store.extend([ox.Quad(ox.NamedNode(f"http://x/{i}"), ox.NamedNode("http://x/p"), ox.Literal(str(i)))
                     for i in range(20000)])
    st.close()
    p = subprocess.Popen([sys.executable, "-m", "graphmie", "query", "--store", str(tmp_path / "st"),
                          "SELECT ?s ?o WHERE { ?s ?p ?o }"], cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    first = p.stdout.readline()
    p.stdout.close()                                              # what `| head -1` does
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 0 and first.startswith(b"s")
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_sparql_syntax_error_reports_the_users_line(tmp_path, capsys):
    from kg_export.store import OxigraphStore

    OxigraphStore(tmp_path / "st").close()
    rc = main(["query", "--store", str(tmp_path / "st"), "SELECT ?x WHERE {\n  ?x ?y\n}}"])
    err = capsys.readouterr().err
    assert rc == 2 and "[E023]" in err and "at 3:" in err


def test_extract_refuses_an_out_file(tmp_path, capsys):
    f = tmp_path / "out.txt"
    f.write_text("x")
    rc = main(["extract", str(REPO / "examples" / "procedures" / "fried_egg.json"), "--task", "procedure",
               "--out", str(f), "--quiet"])
    assert rc == 2 and "[E030]" in capsys.readouterr().err and f.read_text() == "x"


def test_export_names_the_files_it_skips(tmp_path):
    res = tmp_path / "res"
    res.mkdir()
    (res / "other.json").write_text(json.dumps({"not": "a document"}))
    (res / "d.json").write_text(json.dumps({"id": "d", "kind": "post", "source": "s", "text": "Hi",
                                            "entities": [], "relations": []}))
    r = _run("export", res, "--format", "nt", "--out", tmp_path / "kg.nt")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["skipped"] == 1 and summary["skipped_files"] == [str(res / "other.json")]
    assert "skipped: " + str(res / "other.json") in r.stderr
