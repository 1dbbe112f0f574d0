"""Benchmark: the local extract engine against Ray Data with 1 and 2 workers, same inputs, one run.

    python3 bench/bench_ray.py                   # 60 FUNSD forms + 200 MNRE val posts; writes bench/results/ray.json
    python3 bench/bench_ray.py --quick           # a few inputs: does it all work (writes nothing unless --out)
    python3 -m bench.bench_ray --tasks form --forms 149 --small-forms 30 --repeat 3   # key form_149
    python3 -m bench.bench_ray --cores-probe --forms 149 --repeat 2   # the two cores without Ray

Forms are FUNSD training JSON files (gold words, labels and links predicted); posts are MNRE val
rows made into post objects (text, caption, the row's head/tail pair, the image where the data
has it). Each engine runs twice, on the first ``--small-*`` inputs and on all of them; a line
through the two times gives its throughput after start-up (``(n_big - n_small) / (t_big -
t_small)``) and its fixed cost per run (``t_small - n_small / throughput``: for Ray, the actors
starting, loading their model and warming it up; Ray's own start, timed once, is added to it as
Ray's fixed start-up cost; the local engine's model is loaded and warmed up on one input before
its runs are timed). Every output file of the big runs is compared byte for byte across the engines
(the outputs carry no timestamps, so nothing is excluded; ``report.json`` is compared with its
folder names removed). Each run also records the CPU it cost: machine-wide busy CPU seconds (``/proc/stat``: every
process, Ray's own included) and the driver's, per input beyond the small run, and how many cores
were busy on average: on a machine with as many cores as workers, that says whether the workers
or the rest (driver, Ray's services) are what is left to scale. Also timed: the driver's single-writer store step (documents per second
into an Oxigraph store), the step the Ray engine does not spread over the workers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DATA = REPO.parent / "shared" / "data"
ENGINES = [("local", 1), ("ray", 1), ("ray", 2)]
TARGETS = {"ray2_over_ray1_min": 1.6, "ray1_over_local_min": 0.85}


def form_inputs(n: int) -> list[str]:
    folder = DATA / "funsd" / "training_data" / "annotations"
    files = sorted(folder.glob("*.json"))[:n]
    if len(files) < n:
        sys.exit(f"need {n} FUNSD annotation files in {folder}, found {len(files)}")
    return [str(f) for f in files]


def post_inputs(n: int) -> list[dict]:
    from graphmie.data.mnre import load_split

    samples, _ = load_split(DATA / "mnre", "val", limit=n)
    posts = []
    for s in samples:
        post = {"text": s.text, "caption": s.caption, "pairs": [[s.head_name, s.tail_name]]}
        if s.image_path:
            post["image"] = s.image_path
        posts.append(post)
    return posts


def machine_cpu_s() -> float:
    """CPU seconds this machine has spent busy (all processes, all cores) since boot (/proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq = (int(x) for x in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def driver_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def run(nlp, items, out: Path, engine: str, workers: int, batch_size: int, cpus: float, cpu: dict | None = None):
    """Seconds for one run; ``cpu`` gets the run's machine-wide and driver CPU seconds."""
    shutil.rmtree(out, ignore_errors=True)
    from graphmie.scale import ray_extract

    m0, d0 = machine_cpu_s(), driver_cpu_s()
    t = time.perf_counter()
    if engine == "local":
        rep = nlp.extract(items, out, progress=False)
    else:
        rep = ray_extract(nlp, items, out, progress=False, workers=workers, batch_size=batch_size, cpus_per_worker=cpus)
    dt = time.perf_counter() - t
    if cpu is not None:
        cpu.update(machine=machine_cpu_s() - m0, driver=driver_cpu_s() - d0, wall=dt)
    if rep.failed:
        sys.exit(f"{engine}: {len(rep.failed)} inputs failed, e.g. {rep.failed[0]['error']}")
    return dt


def outputs(folder: Path) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name != "report.json"}
    rep = json.loads((folder / "report.json").read_text())
    for d in rep["outputs"]:
        d["files"] = [Path(f).name for f in d["files"]]
    files["report.json (paths without the folder)"] = json.dumps(rep, sort_keys=True).encode()
    return files


def store_rate(folder: Path, tmp: Path) -> float:
    """Documents per second through the store's one writer (one transaction a document)."""
    from graphmie.document import Document
    from kg_export.store import OxigraphStore

    docs = [Document.from_dict(json.loads(p.read_bytes())) for p in sorted(folder.glob("*.json"))
            if not p.name.endswith(".scene_graph.json") and p.name != "report.json"]
    shutil.rmtree(tmp, ignore_errors=True)
    with OxigraphStore(tmp) as store:
        t = time.perf_counter()
        for d in docs:
            store.add_document(d)
        dt = time.perf_counter() - t
    shutil.rmtree(tmp, ignore_errors=True)
    return len(docs) / dt


def median(values: list):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def measure(nlp, items, task: str, n_small: int, n_big: int, args) -> dict:
    """One repetition: each engine on the first ``n_small`` inputs and on all ``n_big`` of them."""
    engines = {}
    for engine, workers in ENGINES:
        key = engine if engine == "local" else f"ray{workers}"
        cpu = {n: {} for n in (n_small, n_big)}
        times = {n: run(nlp, items[:n], args.work / task / f"{key}_{n}", engine, workers, args.batch_size,
                        args.cpus_per_worker, cpu[n]) for n in (n_small, n_big)}
        extra = n_big - n_small       # the inputs the big run has beyond the small one: CPU per input
        cpu_doc = {k: (cpu[n_big][k] - cpu[n_small][k]) / extra for k in ("machine", "driver")}
        thr = (n_big - n_small) / (times[n_big] - times[n_small]) if times[n_big] > times[n_small] else None
        fixed = times[n_small] - n_small / thr if thr else None
        engines[key] = {"t_small_s": round(times[n_small], 2), "t_big_s": round(times[n_big], 2),
                        "docs_per_s_after_startup": round(thr, 3) if thr else None,
                        "fixed_s_per_run": round(fixed, 2) if fixed is not None else None,
                        "cpu_s_per_doc_machine": round(cpu_doc["machine"], 4),
                        "cpu_s_per_doc_driver": round(cpu_doc["driver"], 4),
                        "cores_busy_big_run": round(cpu[n_big]["machine"] / cpu[n_big]["wall"], 2)}
        print(f"{task:5s} {key:6s} {n_small:4d} in {times[n_small]:7.1f}s  {n_big:4d} in {times[n_big]:7.1f}s  "
              f"-> {thr or float('nan'):6.2f} docs/s after start-up, fixed {fixed or float('nan'):5.1f}s; "
              f"CPU s/doc {cpu_doc['machine']:.3f} (driver {cpu_doc['driver']:.3f}), "
              f"{cpu[n_big]['machine'] / cpu[n_big]['wall']:.2f} cores busy", flush=True)

    def ratio(a, b):
        x, y = engines[a]["docs_per_s_after_startup"], engines[b]["docs_per_s_after_startup"]
        return round(x / y, 3) if x and y else None

    return {"engines": engines, "ray2_over_ray1": ratio("ray2", "ray1"), "ray1_over_local": ratio("ray1", "local"),
            "ray2_over_local": ratio("ray2", "local")}


def probe_child(n: int) -> None:
    """One plain process (no Ray): the form pipeline, one torch thread, over the first ``n`` forms."""
    import tempfile

    import torch

    import graphmie

    torch.set_num_threads(1)
    items = form_inputs(n)
    nlp = graphmie.load("form")
    with tempfile.TemporaryDirectory() as d:
        nlp.extract(items[:1], Path(d) / "warm", progress=False)
        t = time.perf_counter()
        nlp.extract(items, Path(d) / "out", progress=False)
        print(json.dumps({"forms_per_s": n / (time.perf_counter() - t)}))


def cores_probe(n: int) -> dict:
    """What this machine allows two workers, Ray aside: the form pipeline in one process alone, then in
    two processes at once (each over the same ``n`` forms)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--probe-child", str(n)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def rates(k: int) -> list[float]:
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) for _ in range(k)]
        return [round(json.loads(p.communicate()[0].strip().splitlines()[-1])["forms_per_s"], 3) for p in procs]

    alone, two = rates(1)[0], rates(2)
    row = {"forms": n, "alone_forms_per_s": alone, "two_at_once_forms_per_s": two,
           "two_over_one": round(sum(two) / alone, 3)}
    print(f"cores probe ({n} forms, one thread, no Ray): alone {alone:.2f} forms/s, two at once "
          f"{' + '.join(f'{r:.2f}' for r in two)} -> {row['two_over_one']:.2f}x", flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--forms", type=int, default=60)
    ap.add_argument("--posts", type=int, default=200)
    ap.add_argument("--small-forms", type=int, default=16, help="inputs of the short run (for the fit)")
    ap.add_argument("--small-posts", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--cpus-per-worker", type=float, default=1)
    ap.add_argument("--tasks", default="form,post")
    ap.add_argument("--repeat", type=int, default=1, help="repetitions of every engine's runs; figures are medians")
    ap.add_argument("--work", type=Path, default=Path("/tmp/graphmie_bench_ray"))
    ap.add_argument("--out", type=Path, help="results JSON (default bench/results/ray.json; none with --quick)")
    ap.add_argument("--quick", action="store_true", help="6 forms, 12 posts: a smoke test")
    ap.add_argument("--cores-probe", action="store_true",
                    help="only time the form pipeline in one process, then in two at once (no Ray)")
    ap.add_argument("--probe-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe_child:
        probe_child(args.probe_child)
        return 0
    if args.cores_probe:
        out_file = args.out or REPO / "bench" / "results" / "ray.json"
        results = json.loads(out_file.read_text()) if out_file.exists() else {}
        results["cores_probe"] = [cores_probe(args.forms) for _ in range(args.repeat)]
        out_file.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {out_file}")
        return 0
    if args.quick:
        args.forms, args.small_forms, args.posts, args.small_posts = 6, 2, 12, 4
    out_file = args.out or (None if args.quick else REPO / "bench" / "results" / "ray.json")

    import ray
    import torch

    import graphmie
    from graphmie.scale import start_local, stop_local

    t = time.perf_counter()
    start_local(num_cpus=os.cpu_count() or 2)
    ray_init_s = time.perf_counter() - t
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                           "torch_threads_local": torch.get_num_threads(), "ray": ray.__version__},
               "settings": {"batch_size": args.batch_size, "cpus_per_worker": args.cpus_per_worker,
                            "ray_worker_threads": "OMP_NUM_THREADS = cpus_per_worker (set by Ray)"},
               "ray_init_s": round(ray_init_s, 2), "targets": TARGETS, "tasks": {}}
    try:
        for task in args.tasks.split(","):
            n_big, n_small = (args.forms, args.small_forms) if task == "form" else (args.posts, args.small_posts)
            items = form_inputs(n_big) if task == "form" else post_inputs(n_big)
            n_big = len(items)
            t = time.perf_counter()
            nlp = graphmie.load(task)
            row = {"inputs": n_big, "small_inputs": n_small, "model_load_s": round(time.perf_counter() - t, 2),
                   "engines": {}}
            # the local runs time a warm model (each Ray run's fixed cost holds its workers' warm-up)
            run(nlp, items[:1], args.work / task / "warm_up", "local", 1, 1, 1)
            reps = [measure(nlp, items, task, n_small, n_big, args) for _ in range(args.repeat)]
            # each figure is the median over the repetitions (the machine's speed drifts by about 10 %
            # from minute to minute and one fit spans 10-20 s); every repetition is kept in the row
            row["engines"] = {k: {f: median([r["engines"][k][f] for r in reps]) for f in reps[0]["engines"][k]}
                              for k in reps[0]["engines"]}
            for k in ("ray1", "ray2"):
                if row["engines"][k]["fixed_s_per_run"] is not None:
                    row["engines"][k]["startup_s"] = round(ray_init_s + row["engines"][k]["fixed_s_per_run"], 2)
            for k in ("ray2_over_ray1", "ray1_over_local", "ray2_over_local"):
                row[k] = median([r[k] for r in reps])
            if args.repeat > 1:
                row["repetitions"] = reps
                row["ratio_ranges"] = {k: [min(r[k] for r in reps), max(r[k] for r in reps)]
                                       for k in ("ray2_over_ray1", "ray1_over_local")}
            row["targets_met"] = {"ray2_over_ray1": (row["ray2_over_ray1"] or 0) >= TARGETS["ray2_over_ray1_min"],
                                  "ray1_over_local": (row["ray1_over_local"] or 0) >= TARGETS["ray1_over_local_min"]}
            ref = outputs(args.work / task / f"local_{n_big}")
            diff = {}
            for k in ("ray1", "ray2"):
                got = outputs(args.work / task / f"{k}_{n_big}")
                diff[k] = sorted(set(ref) ^ set(got)) + [n for n in ref if n in got and ref[n] != got[n]]
            row["outputs_compared"] = len(ref)
            row["byte_identical"] = not any(diff.values())
            row["differing"] = {k: v[:10] for k, v in diff.items() if v}
            row["store_docs_per_s"] = round(store_rate(args.work / task / f"local_{n_big}", args.work / "store"), 1)
            print(f"{task:5s} ray2/ray1 {row['ray2_over_ray1']}  ray1/local {row['ray1_over_local']}  "
                  f"ray2/local {row['ray2_over_local']}  byte-identical {row['byte_identical']} "
                  f"({len(ref)} files)  store {row['store_docs_per_s']} docs/s", flush=True)
            row["command"] = "python3 -m bench.bench_ray " + " ".join(sys.argv[1:])
            # the default sizes keep the task's name as key; other sizes get their own (form_149)
            default = ap.get_default("forms" if task == "form" else "posts")
            results["tasks"][task if n_big == default else f"{task}_{n_big}"] = row
    finally:
        stop_local()
    print(f"Ray start (once per run of the command): {ray_init_s:.1f}s")
    if out_file:
        if out_file.exists():      # rows this command did not rerun are kept
            kept = json.loads(out_file.read_text()).get("tasks", {})
            results["tasks"] = {**{k: v for k, v in kept.items() if k not in results["tasks"]}, **results["tasks"]}
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {out_file}")
    return 0 if all(r["byte_identical"] for r in results["tasks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
