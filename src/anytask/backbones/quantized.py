"""Int8 fast paths for encoder backbones: dynamic quantisation of every linear layer.

``int8:<backbone>`` (e.g. ``int8:minilm``, ``int8:hf:/models/student``) runs the encoder through ONNX Runtime
with dynamic int8 quantisation (per-channel int8 weights, activations quantised per batch; extra ``.[fast]``);
``int8-torch:<backbone>`` uses PyTorch's own ``quantize_dynamic`` (per-channel weights too) and needs nothing
more. Both wrap a base
``HFBackbone``, which is never changed: the fast path is a copy, and tokenisation, pooling, Dense layers and
normalisation stay the base's, so only the transformer's arithmetic differs. Each has its own cache identity
(the base's weights, the engine and its version), so int8 vectors never mix with float ones in the cache.
``benchmarks/distill/frontier.py`` measures speed and linear-probe accuracy against the float model.

The exported ONNX graph (eager attention, dynamic batch and length) is checked against the float model once
when it is built (cosine >= 0.9999 on probe texts, else an error), and cached in the anytask cache folder
under the base's identity, so later loads skip export and quantisation.
"""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import warnings

import torch
from torch import Tensor, nn

from anytask.backbones.base import Backbone, BackboneConfig
from anytask.core.errors import AnytaskError

ENGINES = ("onnx", "torch")
_PROBES = ["a short text", "another, somewhat longer text about a football match that went to extra time"]


class _Forward(nn.Module):
    """The encoder's forward with positional inputs in a fixed order (what ONNX export traces)."""

    def __init__(self, model: nn.Module, keys: tuple[str, ...]) -> None:
        super().__init__()
        self.model, self.keys = model, keys

    def forward(self, *inputs: Tensor) -> Tensor:
        return self.model(**dict(zip(self.keys, inputs))).last_hidden_state


class QuantizedBackbone(Backbone):
    """A base encoder backbone whose transformer runs in int8 (``engine`` ``"onnx"`` or ``"torch"``)."""

    def __init__(self, base: Backbone, engine: str = "onnx", *, cache_dir=None) -> None:
        super().__init__()
        if engine not in ENGINES:
            raise AnytaskError(f"unknown int8 engine {engine!r}; use one of {', '.join(ENGINES)}")
        model = getattr(base, "model", None)
        if model is None or not hasattr(base, "tokenizer") or not hasattr(model, "config"):
            raise AnytaskError(f"{base.config.name} is not a transformers encoder backbone (minilm or hf:<folder>); "
                               "int8 quantisation needs one")
        from anytask.backbones.causal import CausalLM

        if isinstance(base, CausalLM):
            raise AnytaskError("int8 quantisation is for encoder backbones; causal LMs (smollm2, hf-causal:) are not "
                               "supported")
        if base.device.type != "cpu":
            raise AnytaskError("int8 quantisation runs on the CPU; build the base backbone with device='cpu'")
        self.base, self.engine = base, engine
        prefix = "int8:" if engine == "onnx" else "int8-torch:"
        c = base.config
        self.config = BackboneConfig(name=prefix + c.name, dim=c.dim, max_length=c.max_length,
                                     reference=f"{c.reference}; dynamic int8 quantisation ({engine})",
                                     pooling=c.pooling, normalize=c.normalize, prompt=c.prompt)
        self._keys = tuple(base.tokenize(_PROBES[:1])[0])
        if engine == "torch":
            self._version = torch.__version__
            self.qmodel = _torch_int8(model)
            self._session = None
        else:
            try:
                import onnxruntime  # noqa: F401
            except ImportError:
                raise AnytaskError("int8:<backbone> runs on ONNX Runtime: pip install 'anytask[fast]' (or use "
                                   "int8-torch:<backbone>, PyTorch's own int8, which needs nothing more)") from None
            self._version = f"ort{onnxruntime.__version__}"
            self._session = self._onnx_session(cache_dir)
        self.freeze()

    # -- building ----------------------------------------------------------------------------------
    def _onnx_session(self, cache_dir):
        import onnxruntime as ort

        from anytask.backbones.cache import default_cache_dir
        from anytask.core.io import write_file_atomic

        key = hashlib.sha256(f"{self.base.identity}|{self._version}|{','.join(self._keys)}".encode()).hexdigest()
        from pathlib import Path

        path = Path(default_cache_dir() if cache_dir is None else cache_dir) / "int8" / f"{key[:32]}.onnx"
        if not path.is_file():
            write_file_atomic(path, self._export_int8())
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 3
        try:
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # a damaged cache file: rebuild it once
            warnings.warn(f"the cached int8 model {path} could not be loaded ({type(e).__name__}); rebuilding it",
                          stacklevel=3)
            write_file_atomic(path, self._export_int8())
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _export_int8(self) -> bytes:
        """Export the base's encoder to ONNX (eager attention, dynamic axes), check it against the float model,
        then quantise its weights to int8 per channel."""
        try:
            import onnx
            from onnxruntime.quantization import QuantType, quantize_dynamic
        except ImportError:
            raise AnytaskError("exporting to ONNX needs the onnx package: pip install 'anytask[fast]'") from None
        import tempfile
        from pathlib import Path

        model = copy.deepcopy(self.base.model).eval()
        if hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation("eager")  # sdpa's traced masks bake in the example's shapes
        inputs, _ = self.base.tokenize(_PROBES)
        args = tuple(inputs[k] for k in self._keys)
        axes = {k: {0: "batch", 1: "tokens"} for k in (*self._keys, "states")}
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Forward(model, self._keys), args, buffer, input_names=list(self._keys),
                              output_names=["states"], dynamic_axes=axes, opset_version=17, dynamo=False)
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
            src.write_bytes(buffer.getvalue())
            self._check_export(src, inputs)
            root, level = logging.getLogger(), logging.getLogger().level
            root.setLevel(logging.ERROR)  # onnxruntime.quantization logs advice on the root logger
            try:
                quantize_dynamic(str(src), str(dst), per_channel=True, weight_type=QuantType.QInt8)
            finally:
                root.setLevel(level)
            onnx.checker.check_model(str(dst))
            return dst.read_bytes()

    def _check_export(self, path, inputs) -> None:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {k: inputs[k].numpy() for k in self._keys})[0])
        with torch.no_grad():
            want = self.base.forward_tokens(inputs)
        mask = inputs["attention_mask"].bool()
        cos = nn.functional.cosine_similarity(got[mask], want[mask], dim=-1).min().item()
        if cos < 0.9999:
            raise AnytaskError(f"the ONNX export of {self.base.config.name} does not reproduce the model (token "
                               f"cosine {cos:.4f}); use int8-torch:{self.base.config.name} instead")

    # -- the backbone contract ---------------------------------------------------------------------
    @property
    def weights_hash(self) -> str:  # the base's weights plus the engine: what the int8 vectors depend on
        return hashlib.sha256(f"{self.base.weights_hash}|int8|{self.engine}|{self._version}".encode()).hexdigest()

    def tokenize(self, texts: list[str]) -> tuple[dict[str, Tensor], int]:
        return self.base.tokenize(texts)

    def forward_tokens(self, inputs: dict[str, Tensor]) -> Tensor:
        if self._session is None:
            return self.qmodel(**inputs).last_hidden_state
        feed = {k: inputs[k].cpu().numpy() for k in self._keys}
        return torch.from_numpy(self._session.run(None, feed)[0])

    def pool(self, states: Tensor, mask: Tensor) -> Tensor:
        return self.base.pool(states, mask)

    def to(self, *args, **kwargs):  # noqa: D401 - nn.Module API
        """Stays on the CPU (int8 kernels are CPU kernels): asked for another device, it warns and stays, so
        ``--device auto`` on a GPU machine still runs; the embeddings are the same either way."""
        device = torch.device(args[0]) if args and isinstance(args[0], (str, torch.device)) else None
        if device is not None and device.type != "cpu":
            warnings.warn(f"{self.config.name} runs on the CPU only (int8 kernels); it stays there instead of "
                          f"{device}", stacklevel=2)
            return self
        return super().to(*args, **kwargs)


def _torch_int8(model: nn.Module) -> nn.Module:
    """A quantised copy of ``model``: every nn.Linear dynamic int8, weights per output channel (per-tensor
    weights lost more in an ad-hoc check on 256 SST-2 texts: mean cosine to the float MiniLM 0.933 against
    0.972)."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        return quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear: per_channel_dynamic_qconfig},
                               dtype=torch.qint8)
