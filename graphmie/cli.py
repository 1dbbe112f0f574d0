"""The ``graphmie`` command line: train, evaluate, extract, export, index, query.

Built on the Python API (:func:`graphmie.load`): ``extract`` is ``graphmie.load(task,
checkpoint, **options).extract(inputs, out)``, so both give the same results. ``evaluate``
prints its metrics as one JSON object on the last stdout line; progress bars and messages go
to stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .errors import GraphmieError
from .registry import tasks


def _add_task(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--task", choices=tasks.names(), required=required,
                   help="form (scanned forms), post (text+image relations), entity (grounded NER), "
                        "procedure (step graphs)")


def _extract_task(argv: list[str]) -> str | None:
    """The ``--task`` of an ``extract`` command line, so its own options can join the parser."""
    if "extract" not in argv:
        return None
    for i, a in enumerate(argv):
        if a == "--task" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--task="):
            return a.split("=", 1)[1]
    return None


def build_parser(extract_task: str | None = None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="graphmie", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from a config file")
    p.add_argument("config", type=Path, help="a TOML file in configs/")
    p.add_argument("--out", type=Path, help="output folder (default: runs/<config name>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set training.epochs=3 (repeatable)")

    p = sub.add_parser("evaluate", help="score a model on a dataset folder; last stdout line is JSON")
    _add_task(p)
    p.add_argument("--data", type=Path, required=True, help="dataset folder")
    p.add_argument("--split", help="split name, for datasets with several (e.g. val, dev)")
    p.add_argument("--checkpoint", help="weights to score: a shipped name, a .safetensors file or a run folder "
                                        "(default: the shipped weights)")
    p.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="task-specific evaluation option (repeatable)")

    p = sub.add_parser("extract", help="extract entities, relations and groundings from inputs")
    _add_task(p)
    p.add_argument("inputs", nargs="*", type=Path, help="input files or folders of them (forms: images, PDFs or "
                   "FUNSD JSON; posts: post JSON; procedures: procedure JSON)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--checkpoint", help="weights: a shipped name, a .safetensors file or a run folder")
    p.add_argument("--format", dest="formats", action="append",
                   choices=["ttl", "nt", "nq", "trig", "jsonld", "cypher"],
                   help="KG formats written beside the JSON (repeatable; default: ttl and cypher)")
    p.add_argument("--store", type=Path, help="also load the results into this Oxigraph store folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="local: this process (default); ray: Ray Data workers, one model each (pip install "
                        "'graphmie[ray]'; see docs/scale-out.md)")
    p.add_argument("--address", help="with --engine ray: join this Ray cluster (auto, ray://HOST:10001) instead of "
                                     "starting a local one on 127.0.0.1")
    p.add_argument("--workers", type=int, help="with --engine ray: worker actors, one model each (default 1)")
    p.add_argument("--batch-size", dest="batch_size", type=int,
                   help="with --engine ray: inputs per worker batch (default 8)")
    if extract_task in tasks:
        tasks.get(extract_task).add_cli_args(p.add_argument_group(f"options of --task {extract_task}"))

    p = sub.add_parser("export", help="export saved results (extract's .json files) to a KG format or store")
    p.add_argument("results", nargs="+", type=Path, help="result JSON files or folders of them")
    p.add_argument("--format", choices=["ttl", "nt", "nq", "trig", "jsonld", "cypher", "neo4j-csv"],
                   help="write one file (or, for neo4j-csv, a folder) to --out")
    p.add_argument("--out", type=Path, help="output file or folder")
    p.add_argument("--store", type=Path, help="load into this Oxigraph store folder")
    p.add_argument("--ladybug", type=Path, help="load into this LadybugDB database (embedded Cypher)")
    p.add_argument("--bolt", help="load into a Neo4j server, e.g. bolt://localhost:7687")
    p.add_argument("--user", default="neo4j")
    p.add_argument("--password", help="Neo4j password (or NEO4J_PASSWORD)")

    p = sub.add_parser("index", help="build a FAISS index of image-region embeddings over a folder of images")
    p.add_argument("images", type=Path, help="folder of images (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="index folder to write")
    p.add_argument("--detections", type=Path, help="detections file (see docs); default: offline proposer")
    p.add_argument("--kind", default="auto", help="index kind: flat, ivf, hnsw or auto")

    p = sub.add_parser("query", help="SPARQL over a store (--store), or nearest regions in an index (--index)")
    p.add_argument("query", nargs="?", help="SPARQL text (with --store), or '-' to read it from stdin")
    p.add_argument("--store", type=Path, help="Oxigraph store folder")
    p.add_argument("--index", type=Path, help="FAISS index folder from 'graphmie index'")
    p.add_argument("--image", type=Path, help="query image (with --index)")
    p.add_argument("--box", help="x0,y0,x1,y1 region of the query image (with --index)")
    p.add_argument("--text", help="query text (with --index, matched through the text side)")
    p.add_argument("-k", type=int, default=10, help="neighbours to return (with --index)")
    p.add_argument("--format", dest="out_format", default="table", choices=["table", "json", "csv"])
    return ap


def _cmd_train(args) -> int:
    from .config import load_config, parse_override

    cfg = load_config(args.config, dict(parse_override(o) for o in args.overrides))
    task_name = cfg.get("task")
    if task_name not in tasks:
        raise GraphmieError("E022", args.config, name="'task'", value=task_name, choices=", ".join(tasks.names()))
    out = args.out or Path("runs") / args.config.stem
    metrics = tasks.get(task_name).train(cfg, out)
    print(json.dumps(metrics, default=str))
    return 0


def _cmd_evaluate(args) -> int:
    from .config import parse_override

    opts = dict(parse_override(o) for o in args.options)
    split = opts.pop("split", args.split)
    metrics = tasks.get(args.task).evaluate(args.data, split=split, checkpoint=args.checkpoint, **opts)
    print(json.dumps(metrics, default=str))
    return 0


def _cmd_extract(args) -> int:
    from .api import Pipeline
    from .pipeline import DEFAULT_FORMATS

    task_cls = tasks.get(args.task)
    items = task_cls.cli_inputs(args) + list(args.inputs)
    if not items:
        raise GraphmieError("E007", None, detail="no inputs given")
    if args.out.exists() and not args.out.is_dir():
        raise GraphmieError("E030", args.out, detail="--out must be a folder, and this is a file")
    engine = {k: getattr(args, k) for k in ("address", "workers", "batch_size") if getattr(args, k) is not None}
    if engine and args.engine != "ray":
        raise GraphmieError("E030", None, detail=f"--{', --'.join(k.replace('_', '-') for k in engine)} "
                            f"only with --engine ray")
    nlp = Pipeline(task_cls.load(args.checkpoint), task_cls.cli_options(args))
    store = None
    if args.store:
        from kg_export.store import OxigraphStore

        store = OxigraphStore(args.store)
    try:
        if args.engine == "ray":
            from .scale import ray_extract

            report = ray_extract(nlp, items, args.out, formats=tuple(args.formats or DEFAULT_FORMATS), store=store,
                                 progress=not args.quiet, **engine)
        else:
            report = nlp.extract(items, args.out, formats=args.formats, store=store, progress=not args.quiet)
    finally:
        if store is not None:
            store.close()
    for f in report.failed:
        print(f"error: {f['error']}", file=sys.stderr)
    print(json.dumps({"ok": len(report.done), "failed": len(report.failed),
                      "report": str(Path(args.out) / "report.json")}))
    return 0 if not report.failed else 1


def _dispatch(parser, args) -> int:
    if args.command == "train":
        return _cmd_train(args)
    if args.command == "evaluate":
        return _cmd_evaluate(args)
    if args.command == "extract":
        return _cmd_extract(args)
    if args.command == "export":
        from kg_export.cli import export_command

        return export_command(args)
    if args.command == "index":
        from .retrieval.cli import index_command

        return index_command(args)
    if args.store and not args.index:
        from kg_export.cli import query_command

        return query_command(args)
    if args.index and not args.store:
        from .retrieval.cli import query_command

        return query_command(args)
    parser.error("query needs exactly one of --store (SPARQL) or --index (FAISS)")
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_extract_task(argv))
    args = parser.parse_args(argv)
    try:
        rc = _dispatch(parser, args)
        sys.stdout.flush()           # inside the try: a closed pipe shows up here, not at exit
        return rc
    except GraphmieError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader of our output went away (``graphmie query ... | head``): stop quietly,
        # and keep Python from complaining again when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
