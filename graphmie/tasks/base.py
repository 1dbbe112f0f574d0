"""The task interface: the thin adapter from a kind of input to a method and back to outputs.

A task knows its inputs (which files a folder holds, how to read one into a
:class:`~graphmie.document.Document`), its options (a schema with defaults, validated like a
config), its extra output files (pictures, scene graphs) and its command-line options. The
model is a :class:`~graphmie.engine.method.Method`, picked by the checkpoint's sidecar. A task
holds nothing per input: ``predict`` takes its options explicitly and returns a
:class:`~graphmie.engine.method.Result` (the document plus its artifacts).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import resolve
from ..document import Document
from ..engine.checkpoint import load_checkpoint
from ..engine.method import Method, Result
from ..errors import GraphmieError


class Task:
    name: str = ""
    #: the method trained by ``graphmie train`` when a config names none
    default_method: str = ""
    #: methods whose checkpoints this task can run
    methods: tuple[str, ...] = ()
    #: the shipped checkpoint loaded when none is given
    default_weights: str = ""
    #: the files of a folder input that are this task's inputs (lower-case suffixes)
    input_suffixes: tuple[str, ...] = (".json",)
    #: the options of ``read`` / ``predict`` with their defaults (``graphmie.load(task, **options)``)
    options: dict = {}

    def __init__(self, method: Method):
        self.method = method

    # --- loading ------------------------------------------------------------------------
    @classmethod
    def method_class(cls, name: str) -> type[Method]:
        from ..registry import methods

        if name not in cls.methods:
            raise GraphmieError("E027", None, detail=f"method {name!r} does not serve --task {cls.name} "
                                f"(its methods: {', '.join(cls.methods)})")
        return methods.get(name)

    @classmethod
    def load(cls, checkpoint: str | Path | None = None) -> "Task":
        """The task with its model loaded (the shipped weights when ``checkpoint`` is None)."""
        ckpt = load_checkpoint(checkpoint, cls.default_weights, method=cls.methods)
        return cls(cls.method_class(ckpt.method).from_checkpoint(ckpt))

    @classmethod
    def resolve_options(cls, options: dict | None, source=None) -> dict:
        return resolve(cls.options, options, source, section=f"options of --task {cls.name}")

    # --- training / evaluation ----------------------------------------------------------
    @classmethod
    def train(cls, config: dict, out_dir: Path) -> dict:
        name = config.get("method") or cls.default_method
        return cls.method_class(name).train(config, Path(out_dir))

    @classmethod
    def evaluate(cls, data: Path, split: str | None = None, checkpoint: str | Path | None = None,
                 **options) -> dict:
        ckpt = load_checkpoint(checkpoint, cls.default_weights, method=cls.methods)
        method_cls = cls.method_class(ckpt.method)
        opts = resolve(method_cls.eval_options, options, section=f"evaluate options of --task {cls.name}")
        return method_cls.from_checkpoint(ckpt).evaluate(Path(data), split, **opts)

    # --- inputs -------------------------------------------------------------------------
    def input_files(self, folder: Path) -> list[Path]:
        """The task's input files under ``folder`` (any depth), sorted."""
        return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in self.input_suffixes
                      and not p.name.startswith(".") and p.name not in ("report.json", "run.json"))

    def read(self, item, options: dict) -> Document:
        """One input (a file path, or a dict for tasks with inline inputs) -> a Document."""
        raise NotImplementedError

    # --- prediction and outputs ---------------------------------------------------------
    def predict(self, doc: Document, options: dict) -> Result:
        return self.method.predict(doc, **{k: v for k, v in options.items() if k in self.predict_options})

    #: the option names ``predict`` passes to the method (the rest are reading options)
    predict_options: tuple[str, ...] = ()

    def render(self, result: Result) -> dict[str, bytes]:
        """Task-specific output files for one result: ``{suffix: content}`` (``.png``, ...)."""
        return {}

    # --- command line -------------------------------------------------------------------
    @classmethod
    def add_cli_args(cls, parser: argparse._ArgumentGroup) -> None:
        """Task options of ``graphmie extract`` (each maps to a key of :attr:`options`)."""

    @classmethod
    def cli_options(cls, args: argparse.Namespace) -> dict:
        """The options given on the command line (only those the user set)."""
        return {k: getattr(args, k) for k in cls.options if getattr(args, k, None) is not None}

    @classmethod
    def cli_inputs(cls, args: argparse.Namespace) -> list:
        """Inputs described by options rather than files (an inline post from ``--text``)."""
        return []


# --- post inputs on the command line (the post and entity tasks) ------------------------------
def add_post_input_args(parser) -> None:
    """The options that describe one post on the command line instead of a post JSON file."""
    parser.add_argument("--text", help="the post's text (instead of a post JSON file)")
    parser.add_argument("--image", type=Path, help="the post's image")
    parser.add_argument("--caption", help="a description of the image")
    parser.add_argument("--detections", type=Path, help="detections JSON for the image (see docs/post.md)")


def inline_post(args: argparse.Namespace, **extra) -> list[dict]:
    """The post ``--text`` (with ``--image``, ``--caption``, ``--detections``) describes, as a post
    JSON object (``extra`` adds keys such as ``pairs``); none without ``--text``. Paths are made
    absolute, so the object means the same from any folder."""
    text = getattr(args, "text", None)
    if text is None:
        return []
    post = {"text": text}
    for key in ("image", "detections"):
        if getattr(args, key, None):
            post[key] = str(Path(getattr(args, key)).resolve())
    if getattr(args, "caption", None):
        post["caption"] = args.caption
    post.update({k: v for k, v in extra.items() if v})
    return [post]
