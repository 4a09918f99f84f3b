"""Export a BERT sentence-embedding model to ONNX without PyTorch.

The graph is built node by node with the `onnx` package's helpers from the model's `model.safetensors`
(read with `safetensors.numpy`): embeddings, `num_hidden_layers` encoder layers (self-attention, GELU
feed-forward, post-layer norms), output `last_hidden_state`. It is the graph transformers' `BertModel`
computes; mean pooling and normalisation stay outside, in `embedding.OnnxEmbedder`, as for any export.
The int8 variant is the same dynamic quantisation sentence-transformers' `avx2` preset asks of
onnxruntime (per-channel uint8 symmetric weights, uint8 activations, full range).

    >>> export_bert(Path("all-MiniLM-L6-v2"), Path("out/onnx"))   # writes model.onnx, model_quint8_avx2.onnx
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

FP32_FILE = "model.onnx"
INT8_FILE = "model_quint8_avx2.onnx"
OPSET = 17  # LayerNormalization is a standard operator from 17 on
_MASK_MIN = float(np.finfo(np.float32).min)  # what transformers adds to the scores of padding


class ExportError(Exception):
    """The model folder is not a BERT model this exporter can build (the message says why)."""


def export_bert(model_dir: Path, out_dir: Path) -> tuple[Path, Path]:
    """Write `model.onnx` (fp32) and `model_quint8_avx2.onnx` (dynamic int8) for the BERT model in `model_dir`."""
    import onnx

    config = _bert_config(model_dir)
    weights = _weights(model_dir)
    graph = _bert_graph(config, weights)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)], producer_name="moment")
    model.ir_version = 8
    onnx.checker.check_model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = out_dir / FP32_FILE
    onnx.save(model, str(fp32))
    int8 = out_dir / INT8_FILE
    quantize_avx2(fp32, int8)
    return fp32, int8


def quantize_avx2(fp32: Path, int8: Path) -> None:
    """Dynamic int8 quantisation with the settings of sentence-transformers' `avx2` preset (optimum's
    `AutoQuantizationConfig.avx2(is_static=False)`): every operator onnxruntime can quantise dynamically,
    per-channel symmetric uint8 weights, asymmetric uint8 activations, full 8-bit range."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    # onnxruntime advises "pre-processing" on the root logger each time: shape inference that helps
    # static quantisation, not this one; nothing an operator can act on.
    root = logging.getLogger()
    advice = _DropMessage("Please consider to run pre-processing")
    root.addFilter(advice)
    try:
        quantize_dynamic(
            str(fp32),
            str(int8),
            op_types_to_quantize=list(IntegerOpsRegistry.keys()),
            per_channel=True,
            reduce_range=False,
            weight_type=QuantType.QUInt8,
            extra_options={
                "WeightSymmetric": True,
                "ActivationSymmetric": False,
                "ForceSymmetric": False,
                "MatMulConstBOnly": False,  # optimum quantises the attention products too
            },
        )
    finally:
        root.removeFilter(advice)


class _DropMessage(logging.Filter):
    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


def _bert_config(model_dir: Path) -> dict:
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ExportError(f"{model_dir} has no readable config.json ({exc}).") from None
    if config.get("model_type") != "bert":
        kind = config.get("model_type")
        raise ExportError(f"{model_dir} is a '{kind}' model; only BERT models export without PyTorch.")
    if config.get("hidden_act", "gelu") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
        raise ExportError(f"{model_dir}: only BERT with GELU and absolute positions exports without PyTorch.")
    return config


def _weights(model_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    path = model_dir / "model.safetensors"
    if not path.is_file():
        raise ExportError(f"{model_dir} has no model.safetensors (the exporter reads only that format).")
    weights = load_file(str(path))
    # A BertModel saves its tensors bare, a model with a head (BertFor...) under "bert."; a fine-tuned model
    # may be stored at half precision (`moment model train-embedder`): the graph computes in float32.
    return {
        name.removeprefix("bert."): tensor.astype(np.float32) if tensor.dtype.kind == "f" else tensor
        for name, tensor in weights.items()
    }


class _Graph:
    """Collects nodes and initializers; each helper returns the name of its output."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.weights = weights
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def weight(self, name: str, transpose: bool = False) -> str:
        try:
            value = self.weights[name]
        except KeyError:
            raise ExportError(f"The model has no tensor '{name}'.") from None
        return self.const(name, value.T if transpose else value)

    def op(self, op_type: str, *inputs: str, **attributes) -> str:
        from onnx import helper

        self._count += 1
        output = f"{op_type.lower()}_{self._count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=output, **attributes))
        return output

    def linear(self, x: str, prefix: str) -> str:
        """x @ W.T + b, as torch's Linear (safetensors hold W as [out, in])."""
        product = self.op("MatMul", x, self.weight(f"{prefix}.weight", transpose=True))
        return self.op("Add", product, self.weight(f"{prefix}.bias"))

    def layer_norm(self, x: str, prefix: str, eps: float) -> str:
        scale, bias = self.weight(f"{prefix}.weight"), self.weight(f"{prefix}.bias")
        return self.op("LayerNormalization", x, scale, bias, axis=-1, epsilon=eps)


def _bert_graph(config: dict, weights: dict[str, np.ndarray]):
    from onnx import TensorProto, helper

    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_size = hidden // heads
    eps = float(config.get("layer_norm_eps", 1e-12))
    g = _Graph(weights)
    i64 = {name: g.const(name, np.array(value, dtype=np.int64)) for name, value in [("one_i", 1), ("axis_1", 1)]}
    f32 = {
        name: g.const(name, np.array(value, dtype=np.float32))
        for name, value in [("one", 1.0), ("half", 0.5), ("root2", math.sqrt(2.0)), ("mask_min", _MASK_MIN)]
    }

    # Embeddings: word + position + token type, then a layer norm. Position ids 0..S-1 for every row are a
    # running count of ones shaped like the input, minus one.
    one_i64 = helper.make_tensor("one_i64", TensorProto.INT64, [1], [1])
    ones = g.op("ConstantOfShape", g.op("Shape", "input_ids"), value=one_i64)
    positions = g.op("Sub", g.op("CumSum", ones, i64["axis_1"]), i64["one_i"])
    words = g.op("Gather", g.weight("embeddings.word_embeddings.weight"), "input_ids")
    places = g.op("Gather", g.weight("embeddings.position_embeddings.weight"), positions)
    types = g.op("Gather", g.weight("embeddings.token_type_embeddings.weight"), "token_type_ids")
    x = g.layer_norm(g.op("Add", g.op("Add", words, places), types), "embeddings.LayerNorm", eps)

    # The attention mask as transformers applies it: (1 - mask) * float32 min, added to every head's scores.
    mask = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)
    mask = g.op("Unsqueeze", mask, g.const("mask_axes", np.array([1, 2], dtype=np.int64)))  # [B, 1, 1, S]
    mask = g.op("Mul", g.op("Sub", f32["one"], mask), f32["mask_min"])

    split_heads = g.const("split_heads", np.array([0, 0, heads, head_size], dtype=np.int64))
    merge_heads = g.const("merge_heads", np.array([0, 0, hidden], dtype=np.int64))
    scale = g.const("scale", np.array(math.sqrt(head_size), dtype=np.float32))

    for layer in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{layer}"
        # [B, S, hidden] -> [B, H, S, D] (keys: [B, H, D, S], ready to multiply)
        query, key, value = (
            g.op("Transpose", g.op("Reshape", g.linear(x, f"{p}.attention.self.{name}"), split_heads), perm=perm)
            for name, perm in (("query", [0, 2, 1, 3]), ("key", [0, 2, 3, 1]), ("value", [0, 2, 1, 3]))
        )
        scores = g.op("Add", g.op("Div", g.op("MatMul", query, key), scale), mask)
        context = g.op("MatMul", g.op("Softmax", scores, axis=-1), value)
        context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), merge_heads)
        attended = g.op("Add", g.linear(context, f"{p}.attention.output.dense"), x)
        x = g.layer_norm(attended, f"{p}.attention.output.LayerNorm", eps)
        # GELU as BERT defines it: x * 0.5 * (1 + erf(x / sqrt 2)).
        inner = g.linear(x, f"{p}.intermediate.dense")
        gate = g.op("Add", f32["one"], g.op("Erf", g.op("Div", inner, f32["root2"])))
        inner = g.op("Mul", g.op("Mul", inner, f32["half"]), gate)
        x = g.layer_norm(g.op("Add", g.linear(inner, f"{p}.output.dense"), x), f"{p}.output.LayerNorm", eps)

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="last_hidden_state"))
    axes = ["batch", "sequence"]
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, axes)
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [*axes, hidden])
    return helper.make_graph(g.nodes, "bert", inputs, [output], initializer=g.initializers)
