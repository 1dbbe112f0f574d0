"""The endpoint backend: any OpenAI-compatible ``/v1/chat/completions`` server.

llama.cpp's ``llama-server``, vLLM, Ollama (``http://localhost:11434``) and hosted services
speak this protocol. Only the standard library is used (``urllib``).

Each request has a timeout; a connection error, a timeout, an HTTP 5xx or a 429 is retried up
to ``retries`` times with exponential backoff (``backoff``, ``2 * backoff``, ... capped at
30 s; a 429's ``Retry-After`` is honoured up to that cap). When the attempts are used up:
``E017`` if the server never answered (connection refused, DNS, timeouts), ``E034`` if it
answered with an error status. Any other HTTP error (400, 401, 404, ...) is ``E034`` at once,
and so is an answer that is not a chat completion. The API key is sent as a bearer token and
never appears in an error or in :attr:`name`.
"""
from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

from ..errors import GraphmieError
from . import DEFAULT_MAX_NEW_TOKENS, KnowledgeGenerator
from .prompt import build_messages, postprocess

#: The most bytes read from one answer.
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
MAX_BACKOFF_S = 30.0
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def chat_url(base: str) -> tuple[str, str]:
    """``(chat completions URL, models URL)`` for a base URL, ``.../v1`` or the full path."""
    parts = urllib.parse.urlsplit(base.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise GraphmieError("E009", base, detail="not an http(s):// URL with a host")
    path = parts.path.rstrip("/")
    if path.endswith("/chat/completions"):
        root = path[: -len("/chat/completions")]
    elif path.endswith("/v1"):
        root = path
    else:
        root = path + "/v1"
    mk = lambda p: urllib.parse.urlunsplit((parts.scheme, parts.netloc, p, parts.query, ""))  # noqa: E731
    return mk(root + "/chat/completions"), mk(root + "/models")


def public_url(url: str) -> str:
    """The URL without user info, query or fragment (what names and errors show)."""
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{p.port}" if p.port else "")
    return urllib.parse.urlunsplit((p.scheme, netloc, p.path, "", ""))


def _excerpt(body: bytes, limit: int = 300) -> str:
    text = body.decode("utf-8", "replace")
    try:  # OpenAI-style {"error": {"message": ...}}
        err = json.loads(text).get("error")
        if isinstance(err, dict) and err.get("message"):
            text = str(err["message"])
        elif isinstance(err, str):
            text = err
    except (ValueError, AttributeError):
        pass
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


class _Retryable(Exception):
    def __init__(self, kind: str, detail: str, wait: float | None = None):
        super().__init__(detail)
        self.kind = kind          # "unreachable" or "status"
        self.detail = detail
        self.wait = wait


class OpenAICompatGenerator(KnowledgeGenerator):
    """Knowledge from an OpenAI-compatible chat endpoint; ``name`` is ``"llm:<model>@<url>"``.

    ``model=None`` asks the server (``GET /v1/models``) and takes the first model it lists.
    """

    def __init__(self, url: str, model: str | None = None, timeout: float = 120.0, retries: int = 3,
                 api_key: str | None = None, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                 temperature: float = 0.0, shots=None, backoff: float = 0.5):
        self.url, self.models_url = chat_url(url)
        self.base = public_url(url).rstrip("/")
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = max(0.0, float(backoff))
        self._api_key = api_key
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.shots = shots
        host = urllib.parse.urlsplit(self.url).hostname or ""
        # a local server is never reached through a proxy from the environment
        handlers = [urllib.request.ProxyHandler({})] if host in _LOOPBACK else []
        self._opener = urllib.request.build_opener(*handlers)
        self.model = model if model else self._first_model()
        self.name = f"llm:{self.model}@{self.base}"

    # --- HTTP --------------------------------------------------------------------------
    def _headers(self) -> dict:
        h = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            h["Authorization"] = f"Bearer {self._api_key}"
        return h

    def _once(self, url: str, data: bytes | None) -> bytes:
        req = urllib.request.Request(url, data=data, headers=self._headers(),
                                     method="POST" if data is not None else "GET")
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                body = resp.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as e:
            try:
                body = e.read(64 * 1024)
            except (OSError, http.client.HTTPException):
                body = b""
            finally:
                e.close()
            detail = f"HTTP {e.code} from {public_url(url)}: {_excerpt(body)}"
            if e.code == 429 or 500 <= e.code <= 599:
                wait = None
                ra = e.headers.get("Retry-After") if e.headers else None
                if ra:
                    try:
                        wait = float(ra)
                    except ValueError:
                        wait = None
                raise _Retryable("status", detail, wait) from None
            raise GraphmieError("E034", self.name_for_errors, detail=detail) from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError,
                http.client.HTTPException, OSError) as e:
            reason = getattr(e, "reason", None) or e
            if isinstance(reason, (socket.timeout, TimeoutError)):
                why = f"no answer within {self.timeout:g} s"
            else:
                why = f"{type(reason).__name__}: {reason}"
            raise _Retryable("unreachable", f"{public_url(url)}: {why}") from None
        if len(body) > MAX_RESPONSE_BYTES:
            raise GraphmieError("E034", self.name_for_errors,
                                detail=f"answer over {MAX_RESPONSE_BYTES} bytes from {public_url(url)}")
        return body

    @property
    def name_for_errors(self) -> str:
        return getattr(self, "name", None) or self.base

    def _request(self, url: str, payload: dict | None) -> dict:
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        attempts = self.retries + 1
        last: _Retryable | None = None
        for i in range(attempts):
            if i:
                wait = self.backoff * (2 ** (i - 1))
                if last is not None and last.wait is not None:
                    wait = max(wait, last.wait)
                time.sleep(min(wait, MAX_BACKOFF_S))
            try:
                body = self._once(url, data)
            except _Retryable as e:
                last = e
                continue
            try:
                out = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise GraphmieError("E034", self.name_for_errors,
                                    detail=f"the answer from {public_url(url)} is not JSON: "
                                    f"{_excerpt(body, 120)}") from None
            if not isinstance(out, dict):
                raise GraphmieError("E034", self.name_for_errors,
                                    detail=f"the answer from {public_url(url)} is not a JSON object")
            return out
        tried = f"after {attempts} attempt{'s' if attempts > 1 else ''}"
        if last.kind == "unreachable":
            raise GraphmieError("E017", self.name_for_errors, detail=f"{last.detail} ({tried})")
        raise GraphmieError("E034", self.name_for_errors, detail=f"{last.detail} ({tried})")

    def _first_model(self) -> str:
        out = self._request(self.models_url, None)
        data = out.get("data")
        if isinstance(data, list):
            for m in data:
                if isinstance(m, dict) and isinstance(m.get("id"), str) and m["id"]:
                    return m["id"]
        raise GraphmieError("E034", self.base, detail=f"{public_url(self.models_url)} lists no model; "
                            "name one with model=...")

    # --- generation --------------------------------------------------------------------
    def payload(self, text: str, caption: str | None = None) -> dict:
        """The request body for one post."""
        return {
            "model": self.model,
            "messages": build_messages(text, caption, shots=self.shots),
            "temperature": self.temperature,
            "max_tokens": self.max_new_tokens,
            "stream": False,
        }

    def raw(self, text: str, caption: str | None = None) -> str:
        """The server's answer before :func:`~graphmie.llm.prompt.postprocess`."""
        out = self._request(self.url, self.payload(text, caption))
        try:
            content = out["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise GraphmieError("E034", self.name, detail=f"the answer from {public_url(self.url)} "
                                "has no choices[0].message.content") from None
        if not isinstance(content, str):
            raise GraphmieError("E034", self.name, detail="choices[0].message.content is not text")
        return content

    def generate(self, text: str, caption: str | None = None) -> str:
        return postprocess(self.raw(text, caption))
