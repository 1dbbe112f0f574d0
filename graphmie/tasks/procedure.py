"""Procedural documents (``--task procedure``): steps with text and images -> entities, flows, groundings.

Inputs are procedure JSON files (``docs/procedure.md``, read by
:func:`graphmie.data.procedure_json.read_procedure`); ``evaluate`` and ``train`` read folders of
wikiHow-FG article JSONs. The model is the method :mod:`graphmie.methods.seqgmper`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..data.procedure_json import MISSING_IMAGES, read_procedure
from ..document import Document
from .base import Task


class ProcedureTask(Task):
    name = "procedure"
    default_method = "seqgmper"
    methods = ("seqgmper",)
    default_weights = "procedure_seqgmper"
    input_suffixes = (".json",)
    options = {"missing_images": "error", "max_regions": 8}
    predict_options = ("max_regions",)

    def read(self, item, options: dict) -> Document:
        return read_procedure(Path(item), missing_images=options["missing_images"])

    @classmethod
    def add_cli_args(cls, parser: argparse._ArgumentGroup) -> None:
        parser.add_argument("--missing-images", dest="missing_images", choices=MISSING_IMAGES, default=None,
                            help="a step image that is missing: fail that input (default) or keep the step "
                                 "text-only and list it in the output's meta.missing_images")
        parser.add_argument("--max-regions", dest="max_regions", type=int, default=None,
                            help="region proposals per step image (default 8)")
