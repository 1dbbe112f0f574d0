"""Grounded multimodal NER (GMNER) for posts: post JSON -> entities, types, groundings.

The model is :mod:`graphmie.methods.mner` (the tagger with its groundability head, grounding
through :mod:`graphmie.grounding`). ``graphmie train`` also trains the grounding head itself
(``method = "hindex"``, ``configs/entity_hindex.toml``), which every grounding task shares.
"""
from __future__ import annotations

from pathlib import Path

from ..document import Document
from ..errors import GraphmieError
from .base import Task, add_post_input_args, inline_post


class EntityTask(Task):
    name = "entity"
    default_method = "mner"
    methods = ("mner",)
    #: what ``graphmie train`` trains for this task: the tagger, or the grounding head it grounds with
    train_methods = ("mner", "hindex")
    default_weights = "entity_mner"
    input_suffixes = (".json",)
    options = {"max_regions": 20, "index": None}
    predict_options = ("max_regions", "index")

    @classmethod
    def train(cls, config: dict, out_dir: Path) -> dict:
        from ..registry import methods

        name = config.get("method") or cls.default_method
        if name not in cls.train_methods:
            raise GraphmieError("E027", None, detail=f"method {name!r} does not train for --task {cls.name} "
                                f"(its methods: {', '.join(cls.train_methods)})")
        return methods.get(name).train(config, Path(out_dir))

    def read(self, item, options: dict) -> Document:
        """A post JSON file, or an inline post object (paths in it relative to the working folder)."""
        from ..io import input_name
        from ..data.post_json import post_document, read_post

        if isinstance(item, dict):
            return post_document(item, input_name(item), Path.cwd())
        return read_post(Path(item))

    @classmethod
    def add_cli_args(cls, parser) -> None:
        add_post_input_args(parser)
        parser.add_argument("--max-regions", dest="max_regions", type=int, default=None,
                            help="region proposals for a raw image (default 20)")
        parser.add_argument("--index", type=Path, default=None,
                            help="FAISS region index: link grounded regions to other posts")

    @classmethod
    def cli_inputs(cls, args) -> list:
        return inline_post(args)
