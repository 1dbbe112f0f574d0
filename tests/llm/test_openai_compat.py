"""The OpenAI-compatible endpoint backend, against a scripted local HTTP server (127.0.0.1)."""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from graphmie.errors import GraphmieError
from graphmie.llm import get_generator
from graphmie.llm.openai_compat import chat_url, public_url
from graphmie.llm.prompt import build_messages

ANSWER = "Named entities:1. Ted Cruz (person/politician)Reasoning:He is a senator.<|im_end|>"
EXPECTED = "Named entities: 1. Ted Cruz (person/politician) Reasoning: He is a senator."


def completion(content):
    return {"id": "x", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}]}


class Server:
    """A scripted server: each request takes the next action; the last action repeats.

    Actions: ``(status, body_dict_or_bytes, headers)``, or ``("hang", seconds)``.
    """

    def __init__(self, actions):
        self.actions = list(actions)
        self.requests = []
        self.release = threading.Event()
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _serve(self, body):
                srv.requests.append({"method": self.command, "path": self.path,
                                     "headers": dict(self.headers), "body": body})
                action = srv.actions.pop(0) if len(srv.actions) > 1 else srv.actions[0]
                if action[0] == "hang":
                    srv.release.wait(action[1])
                    return
                status, payload, headers = (list(action) + [{}])[:3]
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                self._serve(json.loads(self.rfile.read(n)))

            def do_GET(self):
                self._serve(None)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def serve():
    servers = []

    def start(*actions):
        s = Server(actions)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def gen(url, **kw):
    kw.setdefault("model", "m1")
    kw.setdefault("backoff", 0.01)
    return get_generator(url, **kw)


def test_request_body_headers_and_answer(serve, monkeypatch):
    monkeypatch.delenv("GRAPHMIE_LLM_API_KEY", raising=False)
    s = serve((200, completion(ANSWER)))
    g = gen(s.url, api_key="sk-test", max_new_tokens=77)
    assert g.name == f"llm:m1@{s.url}"
    assert g.generate("Ted Cruz speaks", "a man at a podium") == EXPECTED
    (req,) = s.requests
    assert req["method"] == "POST" and req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == "Bearer sk-test"
    assert req["headers"]["Content-Type"] == "application/json"
    body = req["body"]
    assert body["model"] == "m1"
    assert body["messages"] == build_messages("Ted Cruz speaks", "a man at a podium")
    assert body["temperature"] == 0
    assert body["max_tokens"] == 77
    assert body["stream"] is False


def test_api_key_from_environment_and_url_forms(serve, monkeypatch):
    monkeypatch.setenv("GRAPHMIE_LLM_API_KEY", "sk-env")
    s = serve((200, completion(ANSWER)))
    g = gen(s.url + "/v1/", temperature=0.5)
    assert g.generate_many([("a", None), ("b", "cap")]) == [EXPECTED, EXPECTED]
    assert [r["path"] for r in s.requests] == ["/v1/chat/completions"] * 2
    assert s.requests[0]["headers"]["Authorization"] == "Bearer sk-env"
    assert s.requests[0]["body"]["temperature"] == 0.5
    assert s.requests[1]["body"]["messages"][-1]["content"] == "Post: b\nImage: cap"
    monkeypatch.delenv("GRAPHMIE_LLM_API_KEY")
    s2 = serve((200, completion("x")))
    gen(s2.url + "/v1/chat/completions").generate("a")
    assert s2.requests[0]["path"] == "/v1/chat/completions"
    assert "Authorization" not in s2.requests[0]["headers"]


def test_model_from_server_list(serve):
    s = serve((200, {"object": "list", "data": [{"id": "smollm2"}, {"id": "other"}]}),
              (200, completion(ANSWER)))
    g = gen(s.url, model=None)
    assert g.name == f"llm:smollm2@{s.url}"
    assert g.generate("t") == EXPECTED
    assert [r["path"] for r in s.requests] == ["/v1/models", "/v1/chat/completions"]
    assert s.requests[1]["body"]["model"] == "smollm2"


def test_500_then_success_is_retried(serve):
    s = serve((500, {"error": {"message": "busy"}}), (200, completion(ANSWER)))
    assert gen(s.url, retries=2).generate("t") == EXPECTED
    assert len(s.requests) == 2


def test_429_retry_after_is_honoured(serve):
    s = serve((429, {"error": "slow down"}, {"Retry-After": "0.2"}), (200, completion(ANSWER)))
    t0 = time.monotonic()
    assert gen(s.url, retries=1).generate("t") == EXPECTED
    assert time.monotonic() - t0 >= 0.2
    assert len(s.requests) == 2


def test_persistent_5xx_is_E034_after_the_retries(serve):
    s = serve((503, {"error": {"message": "model loading"}}))
    with pytest.raises(GraphmieError) as e:
        gen(s.url, retries=2).generate("t")
    assert e.value.code == "E034"
    assert "HTTP 503" in str(e.value) and "model loading" in str(e.value) and "3 attempts" in str(e.value)
    assert len(s.requests) == 3


def test_400_is_E034_without_retries(serve):
    s = serve((400, {"error": {"message": "bad request: unknown model"}}))
    with pytest.raises(GraphmieError) as e:
        gen(s.url, retries=3, api_key="sk-secret").generate("t")
    assert e.value.code == "E034"
    assert "HTTP 400" in str(e.value) and "unknown model" in str(e.value)
    assert "sk-secret" not in str(e.value)
    assert len(s.requests) == 1


def test_no_answer_in_time_is_E017_within_bounded_time(serve):
    s = serve(("hang", 10))
    g = gen(s.url, timeout=0.2, retries=2)
    t0 = time.monotonic()
    with pytest.raises(GraphmieError) as e:
        g.generate("t")
    elapsed = time.monotonic() - t0
    assert e.value.code == "E017"
    assert "no answer within 0.2 s" in str(e.value) and "3 attempts" in str(e.value)
    assert len(s.requests) == 3
    assert elapsed < 3.0            # 3 x 0.2 s timeouts + 0.01 + 0.02 s backoff, with slack


def test_connection_refused_is_E017():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()                    # nothing listens there now
    t0 = time.monotonic()
    with pytest.raises(GraphmieError) as e:
        gen(f"http://127.0.0.1:{port}", timeout=0.5, retries=1).generate("t")
    assert e.value.code == "E017"
    assert time.monotonic() - t0 < 3.0
    with pytest.raises(GraphmieError) as e:      # also when asking for the model list
        gen(f"http://127.0.0.1:{port}", model=None, timeout=0.5, retries=0)
    assert e.value.code == "E017"


def test_malformed_answers_are_E034(serve):
    s = serve((200, b"not json"), (200, {"choices": []}), (200, completion(None)), (200, {"data": []}))
    g = gen(s.url, retries=0)
    for _ in range(3):
        with pytest.raises(GraphmieError) as e:
            g.generate("t")
        assert e.value.code == "E034"
    with pytest.raises(GraphmieError) as e:
        gen(s.url, model=None)
    assert e.value.code == "E034" and "lists no model" in str(e.value)


def test_url_helpers():
    assert chat_url("http://h:8080") == ("http://h:8080/v1/chat/completions", "http://h:8080/v1/models")
    assert chat_url("http://h:8080/v1/") == ("http://h:8080/v1/chat/completions", "http://h:8080/v1/models")
    assert chat_url("https://h/api/v1/chat/completions")[0] == "https://h/api/v1/chat/completions"
    assert public_url("https://user:pw@h:1/v1?key=s") == "https://h:1/v1"
    with pytest.raises(GraphmieError):
        chat_url("http://")
