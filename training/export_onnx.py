#!/usr/bin/env python3
"""Export a Hugging Face ALBERT/BERT sequence-classification folder to ONNX, for the benchmark baselines
(onnxruntime-web's WebGPU and wasm providers, transformers.js), and check it against PyTorch.

Writes a Hub-style folder that transformers.js loads with env.localModelPath:
  OUT/config.json, OUT/tokenizer.json, OUT/tokenizer_config.json (copied when present)
  OUT/onnx/model.onnx   -- fp32, opset >= 14 (default 17), inputs input_ids / attention_mask / token_type_ids
                           (int64 [batch_size, sequence_length], both axes dynamic), output logits [batch_size, C]

The export uses eager attention (plain MatMul / Softmax, no SDPA op) so that every runtime sees the same graph
shape. After exporting, the ONNX model is run with onnxruntime (CPU) on random batches of several shapes and on
golden.json when the folder has one; the script fails when max|ort - torch| / max|torch| exceeds --tol.

The TypeScript exporter bench/onnx/export.ts builds an equivalent graph straight from safetensors (what the
benchmark uses on machines without PyTorch); this script is the reference export. Runs on the GPU machine
(torch 2.11, transformers 5.17, onnx 1.23, onnxruntime 1.30; ../shared/docs/gpu-machine.md):

    python3 training/export_onnx.py public/models/<name> --out $OUT/<name>-onnx
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch


class LogitsOnly(torch.nn.Module):
    """The classifier with a plain tensor output (ONNX exporters want tensors, not ModelOutput)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).logits


def load_model(folder):
    from transformers import AutoModelForSequenceClassification

    try:
        model = AutoModelForSequenceClassification.from_pretrained(folder, attn_implementation="eager")
    except (TypeError, ValueError):
        model = AutoModelForSequenceClassification.from_pretrained(folder)
    return model.float().eval()


def export(model, path, opset):
    wrapped = LogitsOnly(model).eval()
    vocab = model.config.vocab_size
    example = (
        torch.randint(0, vocab, (2, 16), dtype=torch.int64),
        torch.ones(2, 16, dtype=torch.int64),
        torch.zeros(2, 16, dtype=torch.int64),
    )
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dynamic_axes = {n: {0: "batch_size", 1: "sequence_length"} for n in names}
    dynamic_axes["logits"] = {0: "batch_size"}
    try:
        # The TorchScript exporter takes dynamic_axes directly and emits plain ops.
        torch.onnx.export(
            wrapped,
            example,
            path,
            input_names=names,
            output_names=["logits"],
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
        return "torchscript"
    except Exception as error:  # noqa: BLE001 - fall back to the dynamo exporter, say why
        print(f"TorchScript exporter failed ({error!r}); trying dynamo=True", file=sys.stderr)
    batch = torch.export.Dim("batch_size", min=1, max=1024)
    seq = torch.export.Dim("sequence_length", min=1, max=model.config.max_position_embeddings)
    shapes = {n: {0: batch, 1: seq} for n in names}
    program = torch.onnx.export(
        wrapped, example, input_names=names, output_names=["logits"], dynamic_shapes=shapes,
        opset_version=max(opset, 18), dynamo=True,
    )
    program.save(path)
    return "dynamo"


def check(model, path, golden_path, tol, seed=0):
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    vocab = model.config.vocab_size
    max_len = model.config.max_position_embeddings
    cases = []
    for batch, seq in [(1, 5), (3, min(37, max_len)), (2, max_len)]:
        ids = rng.integers(0, vocab, (batch, seq), dtype=np.int64)
        mask = np.ones((batch, seq), dtype=np.int64)
        mask[1:, seq // 2 :] = 0  # padded rows after the first
        types = np.zeros((batch, seq), dtype=np.int64)
        types[:, seq // 3 :] = 1 if model.config.type_vocab_size > 1 else 0
        cases.append((f"random b{batch} s{seq}", ids, mask, types, None))
    if golden_path and os.path.exists(golden_path):
        with open(golden_path) as f:
            for i, b in enumerate(json.load(f)["batches"]):
                arr = lambda k: np.asarray(b[k], dtype=np.int64)  # noqa: E731
                cases.append((f"golden batch {i}", arr("inputIds"), arr("attentionMask"), arr("tokenTypeIds"),
                              np.asarray(b["logits"], dtype=np.float32)))
    worst = 0.0
    for name, ids, mask, types, golden in cases:
        with torch.no_grad():
            want = model(
                input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                token_type_ids=torch.from_numpy(types),
            ).logits.numpy()
        got = session.run(["logits"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
        rel = float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))
        if golden is not None:
            rel = max(rel, float(np.abs(got - golden).max() / max(np.abs(golden).max(), 1e-30)))
        print(f"{name}: max|ort - torch| / max|torch| = {rel:.2e}")
        worst = max(worst, rel)
    return worst


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="Hugging Face folder: config.json + model.safetensors (+ tokenizer.json)")
    parser.add_argument("--out", required=True, help="output folder (Hub layout, model in onnx/model.onnx)")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--tol", type=float, default=1e-4)
    args = parser.parse_args()
    if args.opset < 14:
        parser.error("opset must be >= 14")

    torch.manual_seed(0)
    model = load_model(args.folder)
    os.makedirs(os.path.join(args.out, "onnx"), exist_ok=True)
    for name in ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
        src = os.path.join(args.folder, name)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(args.out, name))
    path = os.path.join(args.out, "onnx", "model.onnx")
    exporter = export(model, path, args.opset)
    size = os.path.getsize(path)
    print(f"wrote {path} ({size / 2**20:.1f} MiB, {exporter} exporter, opset {args.opset})")
    worst = check(model, path, os.path.join(args.folder, "golden.json"), args.tol)
    report = {"onnx": path, "bytes": size, "exporter": exporter, "opset": args.opset, "worstRelative": worst,
              "tolerance": args.tol, "torch": torch.__version__}
    with open(os.path.join(args.out, "export-report.json"), "w") as f:
        json.dump(report, f, indent=2)
    if worst > args.tol:
        print(f"FAIL: largest relative difference {worst:.2e} > {args.tol}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: largest relative difference {worst:.2e} <= {args.tol}")


if __name__ == "__main__":
    main()
