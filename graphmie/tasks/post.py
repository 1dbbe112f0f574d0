"""``--task post``: a social-media post (text + image, optional caption and detections) -> typed relations
between its entities (MNRE's 23 labels) and their groundings in the image, plus the cross-modal scene
graph of the first pair (``.scene_graph.json``) and its drawing (``.png``). The model is a method's
(MRE-ISE, :mod:`graphmie.methods.mre_ise`). Inputs: post JSON files (:mod:`graphmie.data.post_json`)
or a post given by ``--text`` etc. See docs/post.md.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..data.post_json import post_document, read_post
from ..document import Document
from ..engine.method import Result
from ..errors import GraphmieError
from .base import Task, add_post_input_args, inline_post


class PostTask(Task):
    name = "post"
    default_method = "mre_ise"
    methods = ("mre_ise",)
    #: three seeds of the text-only model averaged (MNRE val 60.47, against 59.54 for the captioned
    #: ``post_mre_ise``, which reads the caption, the scene graphs and the gate: ``--checkpoint post_mre_ise``)
    default_weights = "post_mre_ise_text_trio"
    input_suffixes = (".json",)
    options = {"max_regions": 10}
    predict_options = ("max_regions",)

    def read(self, item, options: dict) -> Document:
        """A post JSON file, or an inline post (a dict in the same format; relative paths from the cwd)."""
        if isinstance(item, dict):
            from ..io import input_name

            return post_document(item, input_name(item), Path.cwd())
        return read_post(Path(item))

    def render(self, result: Result) -> dict[str, bytes]:
        sg = result.artifacts.get("scene_graph")
        if sg is None:
            return {}
        out = {".scene_graph.json": json.dumps(sg, indent=1, ensure_ascii=False).encode("utf-8")}
        try:
            from scene_graphs.crossmodal import draw

            from .. import limits

            out[".png"] = draw(result.artifacts["crossmodal"], result.doc.text, limits.get("draw_nodes"))
        except Exception:  # noqa: BLE001 - a drawing failure must not lose the results
            pass
        return out

    @classmethod
    def add_cli_args(cls, parser) -> None:
        add_post_input_args(parser)
        parser.add_argument("--head", help="head entity (text as in the post); with --tail")
        parser.add_argument("--tail", help="tail entity (text as in the post); with --head")
        parser.add_argument("--max-regions", dest="max_regions", type=int, default=None,
                            help="region proposals for a raw image (default 10)")

    @classmethod
    def cli_inputs(cls, args) -> list:
        head, tail = getattr(args, "head", None), getattr(args, "tail", None)
        if bool(head) != bool(tail):
            raise GraphmieError("E030", None, detail="--head and --tail go together")
        if head and getattr(args, "text", None) is None:
            raise GraphmieError("E030", None, detail="--head/--tail name entities of the post given by --text")
        return inline_post(args, pairs=[[head, tail]] if head else None)
