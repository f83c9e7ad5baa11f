"""Trainable copies of a Hugging Face encoder, for the methods that change weights (fine-tuning,
linearised fine-tuning, aTLAS, the merge benchmark), and the model folders they write.

The shared frozen backbone is never handed out here: every copy is read fresh from its folder.
This is the one module (with :mod:`anytask.backbones.prompted`) that calls into a transformer's
forward with substituted weights or embeddings; methods use these functions instead.

* ``hidden_states(encoder, inputs, params)`` — token states ``(N, T, D)``, optionally with other
  weights through ``torch.func.functional_call`` (the encoder's own tensors are not touched);
* ``jvp_hidden_states(encoder, inputs, base, direction)`` — the states at ``base`` and their
  directional derivative along ``direction`` (forward mode; the linearised model of Ortiz-Jimenez
  et al. 2023, https://arxiv.org/abs/2305.12827);
* ``Linearized`` — ``f(x; theta_0) + J f(x; theta_0) delta`` with only ``delta`` trainable;
* ``states_with_token(encoder, inputs, token)`` — token states with one extra learned input vector after
  the first token (DeiT's distillation token, for G2SD's specific stage);
* ``encoder_tensors`` / ``encoder_from_tensors`` — a trained copy with its config and tokenizer as one dict of
  tensors, so an estimator that holds one saves it in anytask's own folder format.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, jvp

from anytask.core.errors import AnytaskError

WEIGHTS = "model.safetensors"
LINEARIZED_MARKER = "linearized"  # key in a checkpoint's finetune.json that says it is a tangent delta


def load_encoder(folder: str | Path):
    """A trainable copy of the encoder in ``folder`` (eager attention: the fused kernel has no forward-mode
    derivative) and its tokenizer."""
    from transformers import AutoModel, AutoTokenizer

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise AnytaskError(f"{folder} is not a model folder (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModel.from_pretrained(str(folder), local_files_only=True, attn_implementation="eager")
    return model, tokenizer


FILE_PREFIX = "file:"  # tensor keys that carry a config or tokenizer file's bytes in encoder_tensors


def encoder_tensors(encoder: nn.Module, tokenizer) -> dict[str, Tensor]:
    """A trained encoder copy and its tokenizer as one dict of tensors, for an estimator that saves them with
    :mod:`anytask.core.io` (one checksummed safetensors file, no model folder to keep beside it): the weights
    under ``encoder.<name>``, the config and tokenizer files as bytes under ``file:<name>``."""
    tensors = {f"encoder.{k}": v.detach().clone() for k, v in encoder.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        encoder.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for path in sorted(Path(tmp).iterdir()):
            data = path.read_bytes()
            tensors[FILE_PREFIX + path.name] = (torch.frombuffer(bytearray(data), dtype=torch.uint8).clone()
                                                if data else torch.zeros(0, dtype=torch.uint8))
    return tensors


def encoder_from_tensors(tensors: dict[str, Tensor]):
    """The encoder (frozen, eval mode) and tokenizer :func:`encoder_tensors` packed; a missing or extra weight
    is an error."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    files = {k[len(FILE_PREFIX):]: v for k, v in tensors.items() if k.startswith(FILE_PREFIX)}
    if "config.json" not in files:
        raise AnytaskError("the saved tensors hold no encoder config (file:config.json); save the model again")
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            if "/" in name or name.startswith("."):
                raise AnytaskError(f"the saved tensors name an unsafe file {name!r}; save the model again")
            (Path(tmp) / name).write_bytes(data.numpy().tobytes())
        config = AutoConfig.from_pretrained(tmp, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(tmp, local_files_only=True)
    encoder = AutoModel.from_config(config, attn_implementation="eager")
    state = {k[len("encoder."):]: v for k, v in tensors.items() if k.startswith("encoder.")}
    encoder.load_state_dict(state, strict=True)
    encoder.train(False)
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder, tokenizer


def mean_pool(states: Tensor, mask: Tensor, *, normalize: bool = False) -> Tensor:
    """Mean of the token states ``(N, T, D)`` where ``mask`` ``(N, T)`` is 1: ``(N, D)``, optionally unit-norm."""
    m = mask.unsqueeze(-1).to(states.dtype)  # (N, T, 1)
    pooled = (states * m).sum(1) / m.sum(1).clamp_min(1e-9)  # (N, D)
    return F.normalize(pooled, dim=-1) if normalize else pooled


def _states(out) -> Tensor:
    return out if isinstance(out, Tensor) else out.last_hidden_state


def hidden_states(model: nn.Module, inputs: dict, params: dict[str, Tensor] | None = None) -> Tensor:
    """Token states ``(N, T, D)`` of an encoder (or a ``Linearized`` one), with ``params`` in place of its
    own tensors when given."""
    out = model(**inputs) if params is None else functional_call(model, params, kwargs=dict(inputs))
    return _states(out)


def jvp_hidden_states(encoder: nn.Module, inputs: dict, base: dict[str, Tensor],
                      direction: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """``(f(x; base), J_theta f(x; base) . direction)``; tensors not in ``direction`` stay at ``base``."""
    keys = list(direction)
    fixed = {n: p for n, p in base.items() if n not in direction}

    def f(*moving):
        return _states(functional_call(encoder, {**fixed, **dict(zip(keys, moving))}, kwargs=dict(inputs)))

    return jvp(f, tuple(base[k] for k in keys), tuple(direction[k] for k in keys))


def input_embeddings(encoder: nn.Module, ids: Tensor) -> Tensor:
    """The encoder's token embeddings ``(N, T, D)`` for ``ids``, to perturb and pass as ``inputs_embeds``."""
    return encoder.get_input_embeddings()(ids)


def states_with_token(encoder: nn.Module, inputs: dict, token: Tensor) -> tuple[Tensor, Tensor]:
    """Token states ``(N, T + 1, D)`` of the encoder reading ``token`` (a ``(D,)`` vector, e.g. a trainable
    parameter) as an extra input embedding right after the first token ([CLS]), and the attention mask of the
    text's own tokens ``(N, T + 1)`` (0 at the extra position, so a mean over it pools the text alone)."""
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    words = input_embeddings(encoder, ids)
    extra = token.to(words.dtype).expand(len(ids), 1, -1)
    embeds = torch.cat([words[:, :1], extra, words[:, 1:]], 1)
    ones = torch.ones_like(mask[:, :1])
    attend = torch.cat([mask[:, :1], ones, mask[:, 1:]], 1)
    states = hidden_states(encoder, {"inputs_embeds": embeds, "attention_mask": attend})
    return states, torch.cat([mask[:, :1], 0 * ones, mask[:, 1:]], 1)


def parameter_names(encoder: nn.Module, *, embeddings: bool) -> list[str]:
    """Names of the encoder's parameters, without the embedding tables unless ``embeddings``."""
    return [n for n, _ in encoder.named_parameters() if embeddings or "embeddings" not in n]


class Linearized(nn.Module):
    """``f(x; theta_0) + J f(x; theta_0) delta``: only ``delta`` (zeros at the start) trains."""

    def __init__(self, encoder: nn.Module, train_embeddings: bool = False) -> None:
        super().__init__()
        self.encoder = encoder.requires_grad_(False)
        self.names = parameter_names(encoder, embeddings=train_embeddings)
        self.base = {n: p.detach() for n, p in encoder.named_parameters()}
        self.delta = nn.ParameterList(nn.Parameter(torch.zeros_like(self.base[n])) for n in self.names)

    def forward(self, **inputs) -> Tensor:
        out, tangent = jvp_hidden_states(self.encoder, inputs, self.base, dict(zip(self.names, self.delta)))
        return out + tangent

    def task_vector(self) -> dict[str, Tensor]:
        return {n: d.detach().clone() for n, d in zip(self.names, self.delta)}


def label_head(encoder: nn.Module, tokenizer, label_names: list[str]) -> Tensor:
    """(C, D) unit vectors: the pre-trained encoder's embeddings of the label names (frozen)."""
    enc = tokenizer(label_names, padding=True, truncation=True, max_length=32, return_tensors="pt")
    device = next(encoder.parameters()).device
    enc = {k: v.to(device) for k, v in enc.items()}
    with torch.no_grad():
        return mean_pool(hidden_states(encoder, enc), enc["attention_mask"], normalize=True)


def save_model_folder(state: dict, like: str | Path, out: str | Path, extra: dict[str, bytes] | None = None, *,
                      metadata: dict | None = None, readme: str | None = None) -> Path:
    """Write ``like``'s files (tokenizer, configs, pooling folders) with ``state`` as its weights, plus
    ``extra`` files, to ``out`` atomically: a failure leaves no partial folder. ``like``'s model card
    (README.md) is not copied as if it described the new weights: ``readme`` replaces it, or it is dropped."""
    from safetensors.torch import save_file

    from anytask.core.io import write_folder_atomic

    like, out = Path(like), Path(out)
    extra = dict(extra or {})
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.scratch-", dir=out.parent) as scratch:
        weights_file = Path(scratch) / WEIGHTS
        save_file({k: v.contiguous() for k, v in state.items()}, str(weights_file),
                  metadata={"format": "pt", **(metadata or {})})
        files: dict[str, bytes | Path] = {str(p.relative_to(like)): p for p in sorted(like.rglob("*"))
                                          if p.is_file() and "__pycache__" not in p.parts}
        files.pop("README.md", None)
        if readme is not None:
            files["README.md"] = readme.encode()
        files.update(extra)
        files[WEIGHTS] = weights_file
        return write_folder_atomic(out, files)


def linearized_checkpoint(folder: str | Path) -> bool:
    """Whether ``folder`` holds a linearised fine-tuning delta (its weights are meaningless as a plain model)."""
    meta = Path(folder) / "finetune.json"
    if not meta.is_file():
        return False
    try:
        return bool(json.loads(meta.read_text(encoding="utf-8")).get(LINEARIZED_MARKER))
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False
