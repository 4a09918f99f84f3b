"""The ONNX export made without PyTorch (indexer/onnx_export.py) computes what sentence-transformers on
PyTorch computes, over every chunk of the demo content."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from indexer.chunking import Chunker
from indexer.embedding import OnnxEmbedder, TorchEmbedder, prepare_onnx
from indexer.onnx_export import ExportError, export_bert
from indexer.sources import discover, load

ROOT = Path(__file__).resolve().parent.parent


def _demo_chunks(embedder) -> list[str]:
    chunker = Chunker(embedder.count_tokens)
    files, _ = discover(ROOT / "content")
    return [chunk.text for source in files for chunk in chunker.chunk(load(source))]


@pytest.mark.slow
def test_the_export_gives_the_vectors_of_sentence_transformers_on_pytorch(tmp_path):
    pytest.importorskip("sentence_transformers", reason="the comparison needs PyTorch (the lab)")
    folder = prepare_onnx("all-MiniLM-L6-v2", tmp_path / "models")
    fp32 = OnnxEmbedder("all-MiniLM-L6-v2", folder, "onnx")
    int8 = OnnxEmbedder("all-MiniLM-L6-v2", folder, "onnx-int8")
    texts = _demo_chunks(fp32)
    assert len(texts) > 200
    reference = TorchEmbedder("all-MiniLM-L6-v2").encode(texts)
    exact = (fp32.encode(texts) * reference).sum(axis=1)
    assert exact.min() >= 0.9999
    # int8 as sentence-transformers' avx2 export is: mean cosine 0.991, least 0.975 on these chunks.
    quantised = (int8.encode(texts) * reference).sum(axis=1)
    assert quantised.mean() >= 0.99 and quantised.min() >= 0.97


@pytest.mark.slow
def test_the_int8_file_quantises_what_the_avx2_preset_quantises(tmp_path):
    import onnx

    from indexer import bundled_model

    source = bundled_model.installed_model_dir() or pytest.skip("the model package is not installed")
    fp32, int8 = export_bert(source, tmp_path / "onnx")
    ops = Counter(node.op_type for node in onnx.load(str(int8)).graph.node)
    # Every matrix product of the 6 layers (query, key, value, scores, context, output, and the two
    # feed-forward ones), and the three embedding tables (read back through DequantizeLinear).
    assert ops["MatMulInteger"] == 6 * 8 and ops["MatMul"] == 0
    assert ops["DequantizeLinear"] == 3
    weights = {t.name: t for t in onnx.load(str(int8)).graph.initializer}
    assert {w.data_type for name, w in weights.items() if name.endswith("_quantized")} == {onnx.TensorProto.UINT8}
    assert int8.stat().st_size < fp32.stat().st_size / 3


def test_a_model_that_is_not_bert_is_refused_with_the_reason(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "mpnet"}')
    with pytest.raises(ExportError, match="'mpnet' model; only BERT models export without PyTorch"):
        export_bert(tmp_path, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()
