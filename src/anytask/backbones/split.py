"""A frozen encoder cut in two: frozen lower layers whose token states are computed once, and a
trainable copy of the top ``n_top`` layers (the contrastive head's forward pass).

Fine-tuning only the top of a transformer and caching what lies below is the cheap half of
SetFit-style tuning: every training step runs ``n_top`` of the encoder's layers instead of all of
them, and the lower states of a training text are computed once, not once per pair and epoch.

* ``SplitEncoder(backbone, n_top, max_length).lower(texts)`` — the frozen states entering the top
  layers, one ``(T_i, D)`` tensor per text (padding dropped), computed without gradients;
* ``.top`` — an ``nn.Module`` holding copies of the top layers (the backbone is never written);
* ``.token_states(states, top)`` — the final token states and mask (for late-interaction scorers);
* ``.pooled(states, top)`` — pooled sentence embeddings from a batch of lower states through
  ``top`` (the trainable copy, or the backbone's own layers for the frozen reference), with the
  backbone's pooling and normalisation, so ``n_top`` untouched layers reproduce ``backbone.embed``.

Only Hugging Face BERT-style encoders (``minilm``, ``hf:<folder>``) can be cut: they expose
``model.encoder.layer``. Anything else is a clear error.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from anytask.core.errors import AnytaskError


class _PassThrough(nn.Module):
    """Stands in for the embedding layer of the top copy: its inputs are already hidden states."""

    def forward(self, inputs_embeds=None, **_) -> Tensor:
        return inputs_embeds


def _layers(backbone) -> tuple[nn.Module, nn.ModuleList]:
    model = getattr(backbone, "model", None)
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if model is None or layers is None:
        raise AnytaskError(f"the contrastive head tunes the top layers of a Hugging Face BERT-style backbone "
                           f"(minilm or hf:<folder>); {backbone.config.name!r} has no encoder layers to tune")
    return model, layers


class SplitEncoder:
    """Frozen lower layers of ``backbone`` plus a trainable copy of its top ``n_top`` layers."""

    def __init__(self, backbone, n_top: int, max_length: int) -> None:
        model, layers = _layers(backbone)
        if not isinstance(n_top, int) or not 1 <= n_top <= len(layers):
            raise AnytaskError(f"n_top={n_top!r}: the backbone has {len(layers)} layers, so tune 1..{len(layers)} "
                               "of them")
        self.backbone, self.n_top, self.max_length = backbone, n_top, max_length
        self.cut = len(layers) - n_top  # hidden_states[cut] enters the first tuned layer
        self.frozen_top = self._top_module(model, frozen=True)
        self.top = self._top_module(model, frozen=False)

    @staticmethod
    def _shell(model: nn.Module, n_top: int) -> nn.Module:
        """A shallow copy of the model object whose embeddings pass states through and whose encoder runs
        only the last ``n_top`` layers (the modules themselves are shared until ``_top_module`` copies them)."""
        shell = copy.copy(model)
        shell._modules = dict(model._modules)
        shell.embeddings = _PassThrough()
        encoder = copy.copy(model.encoder)
        encoder._modules = dict(model.encoder._modules)
        encoder.layer = nn.ModuleList(list(model.encoder.layer)[-n_top:])
        shell.encoder = encoder
        if "pooler" in shell._modules:
            shell.pooler = None
        return shell

    def _top_module(self, model: nn.Module, *, frozen: bool) -> nn.Module:
        shell = self._shell(model, self.n_top)
        if frozen:  # the backbone's own layers, read only
            return shell
        shell.encoder.layer = copy.deepcopy(shell.encoder.layer).requires_grad_(True)
        return shell

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    def tokenize(self, texts: list[str]) -> dict[str, Tensor]:
        prompt = self.backbone.config.prompt
        enc = self.backbone.tokenizer([prompt + t for t in texts] if prompt else texts, padding=True, truncation=True, max_length=self.max_length,
                                      return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items()}

    @torch.no_grad()
    def lower(self, texts: list[str], batch_size: int = 64) -> list[Tensor]:
        """The frozen states entering the top layers, one ``(T_i, D)`` tensor per text."""
        out: list[Tensor] = []
        model = self.backbone.model
        for start in range(0, len(texts), batch_size):
            enc = self.tokenize(texts[start:start + batch_size])
            states = model(**enc, output_hidden_states=True).hidden_states[self.cut]  # (B, T, D)
            lengths = enc["attention_mask"].sum(1).tolist()
            out.extend(states[i, :n].clone() for i, n in enumerate(lengths))
        return out

    def token_states(self, states: list[Tensor], top: nn.Module | None = None) -> tuple[Tensor, Tensor]:
        """Final token states ``(N, T, D)`` of a batch of lower states through ``top`` (default: the trainable
        copy) and their mask ``(N, T)`` (1 on real tokens): what late-interaction scorers compare."""
        top = self.top if top is None else top
        T = max(len(s) for s in states)
        padded = torch.zeros(len(states), T, states[0].shape[-1], device=states[0].device)
        mask = torch.zeros(len(states), T, dtype=torch.long, device=states[0].device)
        for i, s in enumerate(states):
            padded[i, :len(s)], mask[i, :len(s)] = s, 1
        out = top(inputs_embeds=padded, attention_mask=mask, token_type_ids=torch.zeros_like(mask))
        return out.last_hidden_state, mask

    def pooled(self, states: list[Tensor], top: nn.Module | None = None) -> Tensor:
        """Pooled embeddings ``(N, D)`` of a batch of lower states through ``top`` (default: the trainable copy)."""
        tokens, mask = self.token_states(states, top)
        return self.backbone.pool(tokens, mask)

    def top_state(self) -> dict[str, Tensor]:
        """The tuned layers' tensors, named ``<i>.<param>`` with i counted from the first tuned layer."""
        return {k: v.detach().clone() for k, v in self.top.encoder.layer.state_dict().items()}

    def merged_model(self) -> nn.Module:
        """A copy of the whole backbone model with the tuned top layers in place of its own (to save as a folder)."""
        model = copy.deepcopy(self.backbone.model)
        nn.ModuleList(list(model.encoder.layer)[self.cut:]).load_state_dict(self.top_state())
        return model

    def load_top_state(self, state: dict[str, Tensor]) -> None:
        missing = set(self.top.encoder.layer.state_dict()) - set(state)
        if missing:
            raise AnytaskError(f"the saved tuned layers lack {len(missing)} tensor(s) (e.g. {sorted(missing)[0]}); "
                               "the folder is corrupt or was made with another backbone or n_top")
        try:
            self.top.encoder.layer.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise AnytaskError(f"the saved tuned layers do not fit this backbone: {str(e).splitlines()[0]}") from None
