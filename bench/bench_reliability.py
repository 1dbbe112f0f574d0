"""Reliability benchmark: hostile inputs per task through ``graphmie extract``, the fuzz corpus, kills.

For every case (the hostile inputs of issue 14 plus the worst inputs *within* the documented
limits, :mod:`graphmie.limits`) one ``graphmie extract`` runs in its own subprocess; its wall
time and peak memory (``ru_maxrss`` of that child, as ``/usr/bin/time`` reports it) are taken,
and the case is *handled cleanly* when the process ends by itself, writes its report, no input
is an internal error (``E999``) and the outcome is the expected one (outputs, or the expected
code). Each run first reads a small warm-up input, so ``input_s``, the time the case's input
takes (reading, predicting, rendering its files), is measured warm; ``wall_s`` is the whole
process's (start, model load, both inputs).
Then the fuzz suite runs with hypothesis statistics (examples tried per
reader) and a re-extract into a full Oxigraph store is SIGKILLed at several points, every
document's state checked against the before and after states.

    python3 bench/bench_reliability.py [--tasks form,post,entity,procedure] [--no-fuzz] [--no-kill]

Prints the figures and writes ``bench/results/reliability.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from graphmie.limits import describe  # noqa: E402

S = "Cut the onion into small pieces with a sharp knife ."
WORDS = " ".join(f"word{i}" for i in range(159))
FUNSD = ROOT.parent / "shared" / "data" / "funsd" / "training_data" / "annotations"


def _form(boxes, labels=("question", "answer")):
    return {"form": [{"id": i, "label": labels[i % len(labels)], "box": b, "text": f"field {i}",
                      "words": [{"box": b, "text": f"field{i}"}], "linking": [[i, i + 1]] if i % 2 == 0 else []}
                     for i, b in enumerate(boxes)]}


def _grid(n):
    return [[(i % 10) * 100, (i // 10) * 20, (i % 10) * 100 + 90, (i // 10) * 20 + 15] for i in range(n)]


FIRST = ["Ann", "Bob", "Cara", "Dan", "Eve", "Finn", "Gus", "Hal", "Ida", "Jon", "Kim", "Lea", "Max", "Ned", "Olga"]


def _pairs_post(n):
    """A post with ``n`` given entities: n x (n - 1) pairs to score."""
    return {"text": " and ".join(FIRST[:n]) + " met in Rome .", "entities": FIRST[:n]}


#: task -> [(case, input JSON or None, extra argv, expected: "ok" or a code)]; the first is the baseline
CASES = {
    "form": [
        ("baseline (FUNSD form)", "FUNSD", [], "ok"),
        ("huge box x=29,990, no image", _form([[29_990, 10, 30_000, 20], [0, 0, 10, 10]]), [], "ok"),
        ("box at 1e7", _form([[1e7, 10, 1e7 + 10, 20]]), [], "E032"),
        ("negative coordinates", _form([[-50, -50, -10, -10]]), [], "E009"),
        ("400 entities (limit)", _form(_grid(400)), [], "ok"),
        ("401 entities", _form(_grid(401)), [], "E032"),
        ("NaN box", '{"form": [{"id": 0, "label": "answer", "box": [NaN, 0, 1, 1]}]}', [], "E009"),
        ("entity id a list", {"form": [{"id": [1], "label": "answer", "box": [0, 0, 1, 1]}]}, [], "E019"),
        ("ids 3 and \"3\"", {"form": [{"id": 3, "label": "answer", "box": [0, 0, 1, 1]},
                                      {"id": "3", "label": "question", "box": [0, 0, 1, 1]}]}, [], "E012"),
        ("\"label\": 5", {"form": [{"id": 0, "label": 5, "box": [0, 0, 1, 1]}]}, [], "E019"),
        ("lone surrogate", '{"form": [{"id": 0, "label": "answer", "box": [0, 0, 9, 9], "text": "a\\ud800"}]}',
         [], "ok"),
    ],
    "post": [
        ("baseline (short post)", {"text": "Taylor Swift and Ed Sheeran at Wembley ."}, [], "ok"),
        ("1 MB post", {"text": ("The weather was cold . " * 50_000)[:1_000_000]}, [], "E032"),
        ("over 1,000,000 characters", {"text": "x" * 1_000_001}, [], "E032"),
        ("10,000 characters (limit), one pair", {"text": ("The weather in the north was cold and rainy all "
                                                          "week , so we stayed inside . " * 200)[:10_000],
                                                 "pairs": [["weather", "north"]]}, [], "ok"),
        ("14 entities = 182 pairs (limit 200)", _pairs_post(14), [], "ok"),
        ("15 entities = 210 pairs", _pairs_post(15), [], "E032"),
        ("lone surrogate", {"text": "Taylor Swift \ud800 in London .", "pairs": [["Taylor Swift", "London"]]},
         [], "ok"),
        ("non-UTF-8 --text", None, ["--text", b"Taylor Swift \xff\xfe in London ."], "ok"),
        ("159-word post with caption", {"text": WORDS + " Ann met Bob", "caption": "Two people on a stage.",
                                        "pairs": [["Ann", "Bob"]]}, [], "ok"),
        ("entity span on whitespace", {"text": "Ann  met Bob", "entities": [{"start": 3, "end": 5}]}, [], "E007"),
        ("NaN detection box", '{"text": "Ann met Bob", "detections": [{"box": [NaN, 0, 0.5, 0.5]}]}', [], "E009"),
        ("detections outside the image", {"text": "Ann met Bob .", "pairs": [["Ann", "Bob"]], "image": "pic.png",
                                          "detections": [{"box": [2, 2, 20, 20]}, {"box": [50, 50, 60, 60]}]},
         [], "ok"),
        ("missing image", {"text": "Ann met Bob .", "image": "nope.png"}, [], "E001"),
    ],
    "entity": [
        ("baseline (short post)", {"text": "Taylor Swift and Ed Sheeran at Wembley ."}, [], "ok"),
        ("1 MB post", {"text": "x " * 500_000}, [], "E032"),
        ("10,000 characters (limit)", {"text": ("Taylor Swift sang in London . " * 400)[:10_000]}, [], "ok"),
        ("lone surrogate", {"text": "Taylor Swift \ud800 in London ."}, [], "ok"),
        ("non-UTF-8 --text", None, ["--text", b"Taylor Swift \xff in London ."], "ok"),
        ("159-word post with caption", {"text": WORDS + " Ann met Bob", "caption": "Two people."}, [], "ok"),
    ],
    "procedure": [
        ("baseline (3 steps)", {"steps": [S] * 3}, [], "ok"),
        ("one 1 MB step", {"steps": [(S + " ") * 19_000]}, [], "E032"),
        ("500 short steps", {"steps": [S] * 500}, [], "E032"),
        ("100 short steps (limit)", {"steps": [S] * 100}, [], "ok"),
        ("one 1,000-character step (limit)", {"steps": [((S + " ") * 20)[:1000]]}, [], "ok"),
        ("3 steps of 500 characters", {"steps": [((S + " ") * 10)[:500]] * 3}, [], "ok"),
        ("10 steps of 1,000 characters", {"steps": [((S + " ") * 20)[:1000]] * 10}, [], "E032"),
        ("lone surrogate", {"steps": ["Cut the \ud800 onion ."]}, [], "ok"),
        ("\"index\": true", {"steps": [{"text": S, "index": True}]}, [], "E019"),
    ],
}


def run_case(task: str, name: str, content, argv: list, work: Path, timeout: float) -> dict:
    """One ``graphmie extract`` in a subprocess: outcome, wall time, peak memory."""
    case_dir = Path(tempfile.mkdtemp(dir=work))
    inputs = [str(_warmup(task, case_dir))]
    if content == "FUNSD":
        inputs.append(str(sorted(FUNSD.glob("*.json"))[0]))
    elif content is not None:
        p = case_dir / "case.json"
        p.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
        inputs.append(str(p))
    from PIL import Image

    Image.new("RGB", (40, 30), "white").save(case_dir / "pic.png")
    out = case_dir / "out"
    cmd = [sys.executable, "-c", DRIVER, str(case_dir / "timing.json"), "extract", "--task", task, *inputs,
           "--out", str(out), "--quiet", *argv]
    t0 = time.time()
    p = subprocess.Popen([os.fsencode(c) if isinstance(c, str) else c for c in cmd], cwd=case_dir,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed = False
    try:
        stdout, stderr = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        killed = True
        stdout, stderr = p.communicate()
    wall = time.time() - t0
    rss = _child_peak_kb(p)
    rep = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None
    timing = json.loads((case_dir / "timing.json").read_text()) if (case_dir / "timing.json").exists() else {}
    input_s = max((t for n, t in timing.items() if not n.endswith("warmup.json")), default=None)
    codes = [e["code"] for e in rep["errors"] if not e["input"].endswith("warmup.json")] if rep else []
    outcome = "killed (timeout)" if killed else ("ok" if rep and rep["ok"] >= 2 and not codes else
                                                 (codes[0] if codes else f"no report (rc {p.returncode})"))
    clean = (not killed and rep is not None and "E999" not in codes and outcome == _expected(task, name))
    return {"task": task, "case": name, "expected": _expected(task, name), "outcome": outcome, "clean": clean,
            "wall_s": round(wall, 2), "input_s": None if input_s is None else round(input_s, 3), "peak_mib": round(rss / 1024, 1), "rc": p.returncode,
            "error": (rep["errors"][0]["error"][:300] if codes else None),
            "stderr_tail": None if rep else stderr.decode("utf-8", "replace")[-500:]}


#: ``graphmie extract`` (``graphmie.cli.main``) recording the time each input takes (``Pipeline.run``:
#: read + predict, plus ``render_outputs``: files in memory), so a case is timed warm, after a first
#: small input (``warmup.json``) has loaded what is loaded on first use
DRIVER = r"""
import json, sys, time
import graphmie.api, graphmie.pipeline
times = {}
def timed(fn, key):
    def wrapper(*a, **kw):
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            name = key(a)
            times[name] = times.get(name, 0.0) + time.perf_counter() - t0
            open(sys.argv[1], "w").write(json.dumps(times))
    return wrapper
graphmie.api.Pipeline.run = timed(graphmie.api.Pipeline.run, lambda a: graphmie.api.input_name(a[1]))
graphmie.pipeline.render_outputs = timed(graphmie.pipeline.render_outputs, lambda a: a[1].name)
from graphmie.cli import main
sys.exit(main(sys.argv[2:]))
"""


WARMUP = {"form": _form([[10, 10, 90, 20], [100, 10, 190, 20]]), "post": {"text": "Ann met Bob in Rome ."},
          "entity": {"text": "Ann met Bob in Rome ."}, "procedure": {"steps": [S]}}


def _warmup(task: str, folder: Path) -> Path:
    p = folder / "warmup.json"
    p.write_text(json.dumps(WARMUP[task]), encoding="utf-8")
    return p


def _expected(task: str, name: str) -> str:
    return next(exp for n, _, _, exp in CASES[task] if n == name)


_RUSAGE: dict = {}


def _child_peak_kb(p: subprocess.Popen) -> int:
    return _RUSAGE.pop(p.pid, 0)


def _reap_with_rusage():
    """Collect each finished child's rusage (``os.wait4``) before ``subprocess`` reaps it."""
    orig = subprocess.Popen._try_wait

    def _try_wait(self, wait_flags):
        pid, status, ru = os.wait4(self.pid, wait_flags)
        if pid == self.pid:
            _RUSAGE[pid] = ru.ru_maxrss
        return pid, status

    subprocess.Popen._try_wait = _try_wait
    return orig


def fuzz_counts() -> dict:
    """Examples hypothesis ran per fuzz test (ci profile), and whether the suite passed."""
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "fuzz"),
                        "--hypothesis-show-statistics"], cwd=ROOT, capture_output=True, text=True)
    counts, test = {}, None
    for line in r.stdout.splitlines():
        m = re.search(r"::(test_\w+):", line)
        if m:
            test = m.group(1)
        m = re.search(r"(\d+) passing examples?, (\d+) failing examples?, (\d+) invalid", line)
        if m and test:
            counts[test] = counts.get(test, 0) + int(m.group(1)) + int(m.group(2))
    tail = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-300:]
    return {"passed": r.returncode == 0, "summary": tail, "examples": counts, "seconds": round(time.time() - t0, 1)}


def kill_states(work: Path, delays=(0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)) -> dict:
    """SIGKILL a re-extract of 20 documents into a full store at each delay; count documents whose
    state is the before or the after one (the kill test's own procedure)."""
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "kg_export")]
    from test_store_kill import kill_states as run

    return run(work, delays)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="form,post,entity,procedure")
    ap.add_argument("--timeout", type=float, default=300, help="seconds before a case counts as hung")
    ap.add_argument("--no-fuzz", action="store_true")
    ap.add_argument("--no-kill", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "reliability.json")
    args = ap.parse_args()
    _reap_with_rusage()
    work = Path(tempfile.mkdtemp(prefix="graphmie_reliability_"))
    rows, summary = [], {}
    for task in args.tasks.split(","):
        for name, content, argv, _ in CASES[task]:
            r = run_case(task, name, content, argv, work, args.timeout)
            rows.append(r)
            print(f"{task:10s} {name:42s} {r['outcome']:17s} {'clean' if r['clean'] else 'NOT CLEAN':9s} "
                  f"input {r['input_s'] or 0:6.2f} s  wall {r['wall_s']:6.1f} s  peak {r['peak_mib']:5.0f} MiB",
                  flush=True)
        mine = [r for r in rows if r["task"] == task]
        within = [r for r in mine if r["expected"] == "ok"]
        worst_t = max(within, key=lambda r: r["input_s"] or 0)
        worst_m = max(mine, key=lambda r: r["peak_mib"])
        summary[task] = {"cases": len(mine), "clean": sum(r["clean"] for r in mine),
                         "worst_input_s": worst_t["input_s"], "worst_time_case": worst_t["case"],
                         "worst_peak_mib": worst_m["peak_mib"], "worst_memory_case": worst_m["case"],
                         "refused_max_input_s": max((r["input_s"] or 0 for r in mine if r["expected"] != "ok"), default=0)}
    res = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
           "limits": [{"name": n, "variable": v, "default": d, "bounds": w} for n, v, d, w in describe()],
           "summary": summary, "cases": rows}
    if not args.no_fuzz:
        res["fuzz"] = fuzz_counts()
    if not args.no_kill:
        res["kills"] = kill_states(work)
    print("\ncases tried / handled cleanly per task:")
    for task, s in summary.items():
        print(f"  {task:10s} {s['clean']}/{s['cases']}  worst within limits: {s['worst_input_s']} s "
              f"({s['worst_time_case']}), peak {s['worst_peak_mib']} MiB ({s['worst_memory_case']})")
    if "fuzz" in res:
        f = res["fuzz"]
        print(f"fuzz: {'passed' if f['passed'] else 'FAILED'} ({f['summary']}); examples per test: {f['examples']}")
    if "kills" in res:
        k = res["kills"]
        print(f"kills: {k['kills']}, store states checked {k['states_checked']}, consistent {k['consistent']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
