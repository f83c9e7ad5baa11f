"""Per-head activations of a causal LM, patched, scaled or read: the hook API mechanistic analyses use.

Plain PyTorch hooks on the project's own causal-LM backbones (llama-style models: SmolLM2, hf-causal
folders, tiny-causal): a pre-hook on each layer's attention output projection (``o_proj``) sees the
concatenated head outputs ``z`` (``(B, T, H * d_head)``, before they are mixed), so one head's
contribution can be read, replaced or scaled at chosen positions without touching anything else.
TransformerLens was not used: its ``HookedTransformer`` loads models by hub name or its own converted
weights, not a local llama folder built from a GGUF, and these three operations are all the analyses
need. The hooks exist only inside a call; the backbone's weights are never written.

    heads = HeadHooks(lm)
    z = heads.outputs(batch)                          # (L, B, H, d_head) at each prompt's last token
    base = heads.logits(batch, answers)               # (B, A) logits of the answer tokens
    moved = heads.logits(batch, answers, patch={(12, 3): z_corrupt[12, :, 3]})
    q = heads.queries(batch, patch=...)               # (L, B, H, d_head) query projections at the last token
    heads.logits(batch, answers, q_patch={(20, 1): q[20, :, 1]})   # a head's query replaced (path patching)
    z_all = heads.outputs(batch, every_position=True)  # (L, B, T, H, d_head): every position, a full run
    heads.outputs(batch, patch={(12, 3): z_all[12, :, :, 3]})      # a (B, T, d_head) value patches every position

Query hooks are forward hooks on ``q_proj`` (its output, before the rotary embedding); reading the queries of a
run with some heads patched and writing them into receiver heads of another run is path patching's second
stage (sender → receiver's query → logits). A patch value of shape ``(B, T, d_head)`` instead of ``(B, d_head)``
replaces the head at every position of a full (uncached) run: a sender patched at earlier positions reaches a
receiver only through the keys and values it attends to there (path patching into keys and values).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import Tensor

from anytask.core.errors import AnytaskError


@dataclass
class Batch:
    """Right-padded prompts: ids ``(B, T)``, mask ``(B, T)`` and each prompt's last real position ``(B,)``.
    ``prefix`` (``HeadHooks.cache_prefix``, prompts of one length) holds the attention cache of every token but
    the last: an edit at the last token cannot change earlier tokens (attention is causal), so each edited run
    is then one token's forward pass."""

    ids: Tensor
    mask: Tensor
    last: Tensor
    prefix: object = None

    def __len__(self) -> int:
        return len(self.ids)


class HeadHooks:
    """Read, patch and scale attention-head outputs of a llama-style causal LM (see the module docstring)."""

    def __init__(self, lm) -> None:
        model = getattr(lm, "model", None)
        layers = getattr(getattr(model, "model", None), "layers", None)
        if layers is None or not all(hasattr(getattr(layer, "self_attn", None), "o_proj") for layer in layers):
            raise AnytaskError(f"{getattr(lm, 'config', lm)!r}: head hooks need a llama-style causal LM "
                               "(smollm2, hf-causal:<folder>, tiny-causal)")
        self.lm, self.layers = lm, list(layers)
        cfg = model.config
        self.n_layers, self.n_heads = len(self.layers), int(cfg.num_attention_heads)
        self.d_head = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)

    # -- inputs ----------------------------------------------------------------------------------------
    def batch(self, prompts: Sequence[str]) -> Batch:
        """Tokenize prompts (with the start token) into a right-padded batch."""
        from anytask.backbones.causal import pad_right

        ids = [self.lm.encode(p, start=True) for p in prompts]
        if not ids:
            raise AnytaskError("no prompts")
        input_ids, mask = pad_right(ids, self.lm.pad_id)
        return Batch(input_ids, mask, torch.tensor([len(x) - 1 for x in ids]))

    def cache_prefix(self, batch: Batch) -> Batch:
        """The same batch with the attention cache of all but its last token (its prompts must be equally long)."""
        from anytask.backbones.causal import _cache_of

        if not bool(batch.mask.all()):
            raise AnytaskError("cache_prefix needs prompts of one length (no padding); group them by length")
        if batch.ids.shape[1] < 2:
            raise AnytaskError("cache_prefix needs prompts of at least two tokens")
        device = self.lm.device
        with torch.no_grad():
            out = self.lm.model.model(input_ids=batch.ids[:, :-1].to(device), use_cache=True)
        return Batch(batch.ids, batch.mask, batch.last, prefix=_cache_of(out))

    def check_head(self, layer: int, head: int) -> None:
        if not (0 <= int(layer) < self.n_layers and 0 <= int(head) < self.n_heads):
            raise AnytaskError(f"head ({layer}, {head}) is out of range: this model has layers 0..{self.n_layers - 1} "
                               f"and heads 0..{self.n_heads - 1}")

    # -- hooks -----------------------------------------------------------------------------------------
    def _last(self, batch: Batch, x: Tensor) -> Tensor:
        """Each prompt's last position in ``x``: the full prompt, or only its last token after a cached prefix."""
        if x.shape[1] == batch.ids.shape[1]:
            return batch.last.to(x.device)
        return torch.full_like(batch.last, x.shape[1] - 1).to(x.device)

    @contextmanager
    def _hooked(self, batch: Batch, *, patch: dict | None = None, scale: dict | None = None,
                record: list | None = None, q_patch: dict | None = None,
                q_record: list | None = None, record_all: bool = False,
                record_unedited: bool = False) -> Iterator[None]:
        """While open, each layer's o_proj input is edited at every prompt's last position: ``patch[(l, h)]``
        (``(B, d_head)``) replaces head h of layer l — at every position when it is ``(B, T, d_head)`` (a full run
        only) —, ``scale[(l, h)]`` multiplies it; ``record`` collects the (edited) head outputs there, one
        ``(B, H, d_head)`` per layer (``(B, T, H, d_head)``, every position, with ``record_all``; the heads' own
        outputs before the edits with ``record_unedited``). ``q_patch[(l, h)]`` replaces head h's query
        projection (q_proj's output) there; ``q_record`` collects the queries, one ``(B, H, d_head)`` per layer."""
        patch, scale, q_patch = dict(patch or {}), dict(scale or {}), dict(q_patch or {})
        for layer, head in [*patch, *scale, *q_patch]:
            self.check_head(layer, head)
        for key, value in patch.items():
            if value.dim() == 3 and (batch.prefix is not None or tuple(value.shape[:2]) != tuple(batch.ids.shape)):
                raise AnytaskError(f"patch {key}: a value for every position must be (B, T, d_head) = "
                                   f"({len(batch)}, {batch.ids.shape[1]}, {self.d_head}) and needs a full run (a batch "
                                   f"without a cached prefix); got {tuple(value.shape)}")
        rows = torch.arange(len(batch))
        handles = []

        def q_hook_for(index: int):
            mine = {h: v for (lyr, h), v in q_patch.items() if lyr == index}

            def hook(module, args, out):
                if not (mine or q_record is not None):
                    return None
                at, last = rows.to(out.device), self._last(batch, out)
                q = out[at, last].view(len(batch), self.n_heads, self.d_head).clone()
                for h, value in mine.items():
                    q[:, h] = value.to(device=out.device, dtype=out.dtype)
                if q_record is not None:
                    q_record.append(q.detach().cpu())
                if not mine:
                    return None
                out = out.clone()
                out[at, last] = q.reshape(len(batch), -1)
                return out

            return hook

        def hook_for(index: int):
            mine_patch = {h: v for (lyr, h), v in patch.items() if lyr == index}
            mine_scale = {h: s for (lyr, h), s in scale.items() if lyr == index}

            def hook(module, args):
                x = args[0]
                if not (mine_patch or mine_scale or record is not None):
                    return None
                x = x.clone()
                if record is not None and record_unedited:
                    at0, last0 = rows.to(x.device), self._last(batch, x)
                    own = x.view(*x.shape[:2], self.n_heads, self.d_head)
                    record.append((own if record_all else own[at0, last0]).detach().cpu().clone())
                for h, value in mine_patch.items():  # every position first: the last position's edits win
                    if value.dim() == 3:
                        x.view(*x.shape[:2], self.n_heads, self.d_head)[:, :, h] = value.to(device=x.device,
                                                                                            dtype=x.dtype)
                last, at = self._last(batch, x), rows.to(x.device)
                z = x[at, last].view(len(batch), self.n_heads, self.d_head)
                for h, value in mine_patch.items():
                    if value.dim() == 2:
                        z[:, h] = value.to(device=x.device, dtype=x.dtype)
                for h, s in mine_scale.items():
                    z[:, h] = z[:, h] * float(s)
                x[at, last] = z.reshape(len(batch), -1)
                if record is not None and not record_unedited:
                    edited = x.view(*x.shape[:2], self.n_heads, self.d_head) if record_all else z
                    record.append(edited.detach().cpu())
                return (x, *args[1:])

            return hook

        try:
            for i, layer in enumerate(self.layers):
                handles.append(layer.self_attn.o_proj.register_forward_pre_hook(hook_for(i)))
                if q_patch or q_record is not None:
                    handles.append(layer.self_attn.q_proj.register_forward_hook(q_hook_for(i)))
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _final_states(self, batch: Batch) -> Tensor:
        """The final-norm states ``(B, D)`` at each prompt's last position (the LM head is applied by callers to the
        few tokens they need, never to the whole vocabulary at every position)."""
        device = self.lm.device
        with torch.no_grad():
            if batch.prefix is not None:
                length = batch.ids.shape[1] - 1
                try:
                    out = self.lm.model.model(input_ids=batch.ids[:, -1:].to(device), use_cache=True,
                                              **{self.lm._cache_arg: batch.prefix})
                finally:  # the cache is shared by every edited run: back to the prefix (negative = tokens to drop)
                    extra = batch.prefix.get_seq_length() - length
                    if extra > 0:
                        batch.prefix.crop(-extra)
                return out.last_hidden_state[:, -1]
            out = self.lm.model.model(input_ids=batch.ids.to(device), attention_mask=batch.mask.to(device),
                                      use_cache=False)
        states = out.last_hidden_state
        return states[torch.arange(len(batch)), batch.last.to(states.device)]

    # -- the three operations ------------------------------------------------------------------------
    def outputs(self, batch: Batch, *, patch: dict | None = None, every_position: bool = False,
                unedited: bool = False) -> Tensor:
        """Every head's output ``z`` at each prompt's last position, ``(L, B, H, d_head)``, or at every position
        (``every_position``: ``(L, B, T, H, d_head)``, from a full run), in a run with heads patched (``patch``, as in
        ``logits``; a ``(B, T, d_head)`` value patches every position and needs a full run: the batch's cached
        prefix is then not used). ``unedited`` reads what each head itself wrote in that run, before a patch replaced
        it (a receiver's own output while the heads around it are frozen)."""
        full = every_position or any(v.dim() == 3 for v in (patch or {}).values())
        if full:
            batch = Batch(batch.ids, batch.mask, batch.last)  # a full run: edits at earlier positions need one
            if not bool(batch.mask.all()):
                raise AnytaskError("edits or records at every position need prompts of one length (no padding)")
        record: list[Tensor] = []
        with self._hooked(batch, patch=patch, record=record, record_all=every_position, record_unedited=unedited):
            self._final_states(batch)
        return torch.stack(record)

    def queries(self, batch: Batch, *, patch: dict | None = None, scale: dict | None = None) -> Tensor:
        """Every head's query projection at each prompt's last position, ``(L, B, H, d_head)``, in a run with heads
        patched and/or scaled there."""
        q_record: list[Tensor] = []
        with self._hooked(batch, patch=patch, scale=scale, q_record=q_record):
            self._final_states(batch)
        return torch.stack(q_record)

    def logits(self, batch: Batch, tokens: Tensor, *, patch: dict | None = None, scale: dict | None = None,
               q_patch: dict | None = None) -> Tensor:
        """Logits ``(B, A)`` of ``tokens`` (``(B, A)`` token ids, e.g. answer and alternative) at each prompt's last
        position, with heads patched and/or scaled there, and heads' queries replaced (``q_patch``)."""
        with self._hooked(batch, patch=patch, scale=scale, q_patch=q_patch):
            h = self._final_states(batch)
        weight = self.lm.model.get_output_embeddings().weight  # (V, D)
        return torch.einsum("bd,bad->ba", h, weight[tokens.to(weight.device)]).float().cpu()
