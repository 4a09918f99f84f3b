"""What quantising the reader costs and buys: one trained checkpoint exported several ways, each measured
on the validation groups (held-out handbooks: does it still pick the answering section?) and timed on
the pairs a question reads in use (8 windows of up to 160 word pieces, `Reader.score`).

The plain approach is the full-precision export; the shipped one is int8 (dynamic, per channel, every
MatMul and the embedding table). The variants in between show where the int8 reader loses accuracy:

    fp32        full precision (the checkpoint's own figures, 69 MB)
    int8        int8 weights for every MatMul and the word-piece table (shipped, 17 MB)
    int8-head32 as shipped but the scoring head's one MatMul in fp32
    int8-body   int8 MatMuls, the word-piece table in fp32
    int8-table  the word-piece table int8, the transformer in fp32
    int8-ffn    int8 feed-forward MatMuls and table, attention and the scoring head in fp32

    .venv/bin/moment model train-reader --data ../shared/corpora/training --out .moment/exp/reader
    .venv/bin/python bench/reader_quantization.py --checkpoint .moment/reader-train/best \\
        --reader .moment/exp/reader --groups .moment/reader-train/groups-*.jsonl

Each variant's folder (reader.onnx, reader.json, tokenizer.json) is kept under --work, so that
`MOMENT_READER_DIR=FOLDER moment eval ...` can measure it end to end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import common_args, machine, summary, write_result

VARIANTS = ("fp32", "int8", "int8-head32", "int8-body", "int8-table", "int8-ffn")


def unquantised_in_ffn(model_path: Path) -> list[str]:
    """The MatMul nodes of the exported graph outside the feed-forward layers (attention and the scoring
    head): the ones `int8-ffn` leaves in fp32."""
    import onnx

    def feed_forward(name: str) -> bool:  # "/bert/encoder/layer.0/intermediate/dense/MatMul", ".../output/dense/..."
        return "intermediate" in name or ("output" in name and "attention" not in name)

    graph = onnx.load(str(model_path)).graph
    return [n.name for n in graph.node if n.op_type == "MatMul" and not feed_forward(n.name)]


def make_variant(name: str, fp32: Path, reader_dir: Path, out: Path) -> Path:
    """A reader folder for `name`, its ONNX made from `fp32`, its settings and tokenizer from `reader_dir`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.mkdir(parents=True, exist_ok=True)
    for f in ("reader.json", "tokenizer.json"):
        shutil.copy(reader_dir / f, out / f)
    target = out / "reader.onnx"
    if name == "fp32":
        shutil.copy(fp32, target)
        return out
    options = {"weight_type": QuantType.QInt8, "per_channel": True}
    if name == "int8-body":
        options["op_types_to_quantize"] = ["MatMul"]
    elif name == "int8-table":
        options["op_types_to_quantize"] = ["Gather"]
    elif name == "int8-head32":
        options["nodes_to_exclude"] = ["/mix/MatMul"]
    elif name == "int8-ffn":
        options["nodes_to_exclude"] = unquantised_in_ffn(fp32)
    quantize_dynamic(str(fp32), str(target), **options)
    return out


def validation_groups(path: Path) -> list:
    from lab.training_data import VALIDATION_SOURCES, Group

    groups = [Group(**json.loads(line)) for line in path.read_text().splitlines() if line]
    return [g for g in groups if g.source in VALIDATION_SOURCES]


def measure(folder: Path, groups: list, rounds: int) -> dict:
    from assistant.answering.reader.model import load_reader
    from lab.train import choice_metrics

    reader = load_reader(folder)
    scores = [reader.score(g.question, [g.positive, *g.negatives]) for g in groups]
    metrics = choice_metrics(scores)
    # Timed as in use: 8 windows a question, each pair alone, `lanes` at once.
    batches = [(g.question, [g.positive, *g.negatives][:8]) for g in groups]
    for q, passages in batches[:10]:
        reader.score(q, passages)
    times = []
    for _ in range(rounds):
        for q, passages in batches:
            started = time.perf_counter()
            reader.score(q, passages)
            times.append((time.perf_counter() - started) * 1000)
    return {
        "accuracy": round(metrics["accuracy"], 4),
        "auc": round(metrics["auc"], 4),
        "read_8_ms": summary(times),
        "size_mb": round((folder / "reader.onnx").stat().st_size / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="training checkpoint with reader-fp32.onnx")
    parser.add_argument("--reader", type=Path, required=True, help="the exported reader folder (its settings)")
    parser.add_argument("--groups", type=Path, required=True, help="the training run's groups file")
    parser.add_argument("--work", type=Path, default=Path(".moment/exp/quantization"))
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    common_args(parser)
    args = parser.parse_args()
    rounds = 1 if args.quick else 3
    groups = validation_groups(args.groups)
    fp32 = args.checkpoint / "reader-fp32.onnx"
    results = {}
    for name in args.variants:
        folder = make_variant(name, fp32, args.reader, args.work / name)
        results[name] = measure(folder, groups, rounds)
        r = results[name]
        print(
            f"{name:11s} accuracy {r['accuracy']:.3f}  AUC {r['auc']:.3f}  "
            f"read 8 pairs {r['read_8_ms']['median']:.1f} / {r['read_8_ms']['p95']:.1f} ms  {r['size_mb']} MB",
            flush=True,
        )
    if "fp32" in results:
        base = results["fp32"]["read_8_ms"]["median"]
        for r in results.values():
            r["median_vs_fp32"] = round(r["read_8_ms"]["median"] / base, 2)
        print("median time / fp32:", {k: v["median_vs_fp32"] for k, v in results.items()})
    write_result(
        "reader_quantization",
        {"machine": machine(), "validation_groups": len(groups), "variants": results},
        args.out,
    )


if __name__ == "__main__":
    main()
