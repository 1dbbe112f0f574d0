"""A re-extract killed at any point leaves every document in the store as it was before or after."""
import json
import os
import signal
import subprocess
import sys
import time

import pyoxigraph as ox

from conftest import REPO
from graphmie.document import Document, Entity, Provenance, Relation
from kg_export.store import OxigraphStore

WRITER = r"""
import json, sys
sys.path.insert(0, {repo!r})
from graphmie.document import Document
from kg_export.store import OxigraphStore
st = OxigraphStore({store!r})
docs = [Document.from_dict(d) for d in json.load(open({docs!r}))]
print("ready", flush=True)
for d in docs:
    st.add_document(d)
st.close()
print("done", flush=True)
"""


def _doc(i: int, version: int) -> Document:
    src = f"doc{i}.json"
    ents = [Entity(f"e{k}", f"thing {k} v{version}", "PER", span=(k, k + 1),
                   provenance=Provenance(src, span=(k, k + 1), model="m", score=0.5)) for k in range(30)]
    rels = [Relation(f"r{k}", f"e{k}", f"e{k + 1}", f"rel{version}", Provenance(src, model="m", score=0.9))
            for k in range(29)]
    return Document(id=f"d{i}", kind="post", source=src, text="x" * 40, entities=ents, relations=rels)


def _state(store, doc) -> set:
    """Every quad of the document: its graph and the assertion graphs derived from it."""
    from kg_export.rdf import document_iri

    g = document_iri(doc)
    graphs = [ox.NamedNode(g)] + [s["a"] for s in store.query(
        f"SELECT DISTINCT ?a WHERE {{ GRAPH <{g}> {{ ?a <http://www.w3.org/ns/prov#wasDerivedFrom> <{g}> }} }}")]
    return {str(q) for gr in graphs for q in store.store.quads_for_pattern(None, None, None, gr)}


def kill_states(work, delays, n: int = 20) -> dict:
    """SIGKILL a re-extract of ``n`` documents into a full store after each delay; count the
    documents whose state afterwards is the before or the after version (also used by
    bench/bench_reliability.py)."""
    old, new = [_doc(i, 1) for i in range(n)], [_doc(i, 2) for i in range(n)]
    ref_old, ref_new = OxigraphStore(work / "ref_old"), OxigraphStore(work / "ref_new")
    for a, b in zip(old, new):
        ref_old.add_document(a)
        ref_new.add_document(b)
    states = [(_state(ref_old, a), _state(ref_new, b)) for a, b in zip(old, new)]
    ref_old.close()
    ref_new.close()
    (work / "new.json").write_text(json.dumps([d.to_dict() for d in new]))
    checked = consistent = replaced = 0
    for k, delay in enumerate(delays):
        store_dir = work / f"st{k}"
        st = OxigraphStore(store_dir)
        for d in old:
            st.add_document(d)
        st.close()
        script = WRITER.format(repo=str(REPO), store=str(store_dir), docs=str(work / "new.json"))
        p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        assert p.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        st = OxigraphStore(store_dir)
        for doc, (before, after) in zip(new, states):
            got = _state(st, doc)
            checked += 1
            consistent += got in (before, after)
            replaced += got == after
        st.close()
    return {"kills": len(delays), "states_checked": checked, "consistent": consistent, "new_version": replaced}


def test_killed_reload_leaves_old_or_new_version(tmp_path):
    res = kill_states(tmp_path, (0.05, 0.2, 0.5, 1.0))
    assert res["states_checked"] == 4 * 20
    assert res["consistent"] == res["states_checked"], "a document in a state no run produced"
