"""A frozen Hugging Face BERT-style encoder run with deep prompts (prompt tuning's forward pass).

``PromptedEncoder(backbone, max_length)(enc, prompts)`` inserts ``prompts[0]`` after [CLS] in the
input embeddings and, at layers ``1 .. depth-1``, replaces the previous layer's prompt outputs
with ``prompts[i]`` through forward pre-hooks that exist only during the call and act only in the
calling thread. ``prompts=None`` is the frozen path. Pooling is the mean over the text's own tokens
(prompt positions excluded), unnormalised. The backbone's weights are only read.

``kv_only=True`` makes them prefix-tuning prompts (Uni-Perceiver's deep prompts, card 19): the text keeps
its own position ids (nothing is shifted) and ``prompts[0]`` too is swapped in at layer 0's input rather
than passed through the embedding layer, so at every prompted layer the prompts reach the text only as extra
keys and values (their own outputs are replaced before the next layer reads them, and are never pooled).
"""

from __future__ import annotations

import threading

import torch
from torch import Tensor

from anytask.backbones.trainable import mean_pool
from anytask.core.errors import AnytaskError

_hook_state = threading.local()  # prompts for the layer hooks, set only inside a prompted forward


def _replace_prompts(module, args, kwargs):
    prompts = getattr(_hook_state, "prompts", None)
    if prompts is None or module not in prompts:
        return None
    p = prompts[module]
    hidden = args[0] if args else kwargs["hidden_states"]
    hidden = torch.cat([hidden[:, :1], p.unsqueeze(0).expand(hidden.shape[0], -1, -1), hidden[:, 1 + len(p):]], 1)
    if args:
        return (hidden, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": hidden}


class PromptedEncoder:
    """Runs a frozen Hugging Face BERT-style encoder with deep prompts (or none: the frozen path)."""

    def __init__(self, backbone, max_length: int) -> None:
        model = getattr(backbone, "model", None)
        layers = getattr(getattr(model, "encoder", None), "layer", None)
        if model is None or layers is None or not hasattr(model, "get_input_embeddings"):
            raise AnytaskError(f"prompt_tuning needs a Hugging Face BERT-style backbone (minilm or hf:<folder>); "
                               f"{backbone.config.name!r} has no encoder layers to prompt")
        self.backbone, self.model, self.layers = backbone, model, list(layers)
        self.max_length = max_length
        self.positions = int(getattr(model.config, "max_position_embeddings", 512))
        self.dim = int(model.config.hidden_size)
        self.n_layers = len(self.layers)

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    def tokenize(self, texts: list[str]) -> dict[str, Tensor]:
        enc = self.backbone.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                      return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items()}

    def __call__(self, enc: dict[str, Tensor], prompts: Tensor | None, *, kv_only: bool = False) -> Tensor:
        """Mean-pooled (unnormalised) features ``(N, D)``; ``prompts`` is ``(depth, length, D)`` or None;
        ``kv_only``: prefix prompts (keys and values only, text positions unshifted)."""
        ids, mask = enc["input_ids"], enc["attention_mask"]
        emb = self.model.get_input_embeddings()(ids)
        pool_mask, hooks, positions = mask, [], None
        if prompts is not None and prompts.shape[1]:
            n, length = ids.shape[0], prompts.shape[1]
            emb = torch.cat([emb[:, :1], prompts[0].unsqueeze(0).expand(n, -1, -1), emb[:, 1:]], 1)
            ones = torch.ones(n, length, dtype=mask.dtype, device=mask.device)
            mask = torch.cat([mask[:, :1], ones, mask[:, 1:]], 1)
            pool_mask = torch.cat([pool_mask[:, :1], torch.zeros_like(ones), pool_mask[:, 1:]], 1)
            if kv_only:  # the text keeps positions 0..T-1; the prompt slots' embeddings are replaced at layer 0
                text = torch.arange(ids.shape[1], device=ids.device)
                positions = torch.cat([text[:1], torch.zeros(length, dtype=text.dtype, device=text.device),
                                       text[1:]]).unsqueeze(0).expand(n, -1)
            first = 0 if kv_only else 1
            # a pre-hook swaps in each deeper layer's prompts; it exists only during this call and acts only in
            # this thread, so other users of the shared backbone never see prompts
            _hook_state.prompts = {self.layers[i]: prompts[i] for i in range(first, prompts.shape[0])}
            hooks = [self.layers[i].register_forward_pre_hook(_replace_prompts, with_kwargs=True)
                     for i in range(first, prompts.shape[0])]
        try:
            states = self.model(inputs_embeds=emb, attention_mask=mask, token_type_ids=torch.zeros_like(mask),
                                position_ids=positions).last_hidden_state
        finally:
            _hook_state.prompts = None
            for h in hooks:
                h.remove()
        return mean_pool(states, pool_mask)
