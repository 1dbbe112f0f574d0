"""RapidOCR's inference backend: onnxruntime unless the environment asks for OpenVINO; both read the same
words off the bundled example form."""
import importlib.util
from pathlib import Path

import pytest

from graphmie.errors import GraphmieError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "forms" / "registration_form.png"
HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
needs_openvino = pytest.mark.skipif(not HAS_OPENVINO, reason="openvino not installed (pip install 'graphmie[openvino]')")


def test_backend_follows_the_environment(monkeypatch):
    from layout.ocr import OCR_BACKEND_ENV, rapidocr_backend

    monkeypatch.delenv(OCR_BACKEND_ENV, raising=False)
    assert rapidocr_backend() == "onnxruntime"
    monkeypatch.setenv(OCR_BACKEND_ENV, " OpenVINO ")
    if HAS_OPENVINO:
        assert rapidocr_backend() == "openvino"
    monkeypatch.setenv(OCR_BACKEND_ENV, "onnxruntime")
    assert rapidocr_backend() == "onnxruntime"
    monkeypatch.setenv(OCR_BACKEND_ENV, "tensorrt")
    with pytest.raises(GraphmieError) as e:
        rapidocr_backend()
    assert e.value.code == "E021" and OCR_BACKEND_ENV in str(e.value) and "tensorrt" in str(e.value)


def test_forced_openvino_without_it_is_coded(monkeypatch):
    import layout.ocr as ocr

    monkeypatch.setenv(ocr.OCR_BACKEND_ENV, "openvino")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(GraphmieError) as e:
        ocr.rapidocr_backend()
    assert e.value.code == "E015" and "openvino" in str(e.value)


@needs_openvino
def test_openvino_reads_the_same_words_as_onnxruntime(monkeypatch):
    from PIL import Image

    from layout.ocr import OCR_BACKEND_ENV, ocr_words

    image = Image.open(EXAMPLE)
    words = {}
    for backend in ("onnxruntime", "openvino"):
        monkeypatch.setenv(OCR_BACKEND_ENV, backend)
        words[backend] = ocr_words(image)
    a, b = words["onnxruntime"], words["openvino"]
    assert len(a) > 20                                  # the form has a few dozen words
    assert [w.text for w in a] == [w.text for w in b]
    # the backends' kernels differ by CPU (on an AVX-512 EPYC the edges move by up to 5 px, a sixth of a line):
    # the same words, each edge within a quarter of the word's height
    for wa, wb in zip(a, b):
        assert max(abs(p - q) for p, q in zip(wa.box.to_list(), wb.box.to_list())) <= 0.25 * wa.box.height, wa.text


@needs_openvino
def test_cache_keys_tell_the_backends_apart(monkeypatch, tmp_path):
    import layout.ocr as ocr

    monkeypatch.setenv("GRAPHMIE_CACHE", str(tmp_path))
    seen = []
    monkeypatch.setattr(ocr, "ocr_page_words", lambda image, engine: (seen.append(ocr.rapidocr_backend()) or [], 0.0))
    for backend in ("onnxruntime", "openvino", "onnxruntime"):
        monkeypatch.setenv(ocr.OCR_BACKEND_ENV, backend)
        ocr.cached_ocr_words(EXAMPLE)
    assert seen == ["onnxruntime", "openvino"]          # the third call is the first one's cache
    assert len(list((tmp_path / "form" / "ocr").glob("rapidocr_*.json"))) == 2
