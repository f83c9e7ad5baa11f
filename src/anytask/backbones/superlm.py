"""A weight-sharing SuperLM sliced from a BERT teacher (AutoDistil, Xu et al. 2022, arXiv:2201.12507).

``SuperLM(teacher_folder)`` holds one trainable copy of the teacher's weights; ``forward(inputs, shape)`` runs
the sub-network ``shape = SubNet(layers, heads, ffn)`` on slices of them: the first ``layers`` layers, the
first ``heads`` attention heads (whole heads at the teacher's head width, 32 for MiniLM), a residual width of
``heads * head_width`` (the first dimensions of the embeddings and every LayerNorm), and the first ``ffn`` units
of every feed-forward block. The largest sub-network *is* the teacher (a test checks it to 1e-5).

Departures from the paper, on purpose: the residual width is tied to the attention width so that every
sub-network is a standard BERT that ``extract`` writes as a transformers folder (``hf:<folder>`` and
sentence-transformers load it unchanged); heads and neurons are sliced in the teacher's order, without
DynaBERT's importance rewiring; depth keeps the bottom layers.

``relations(inputs, shape)`` gives the last layer's query-query, key-key and value-value relations split into
``relation_heads`` (12, the teacher's head count, whatever the student's width): pre-softmax scores
``X X^T / sqrt(d_r)`` of shape (3, B, R, T, T) — what AutoDistil's code distils with MSE.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from anytask.core.errors import AnytaskError


@dataclass(frozen=True, order=True)
class SubNet:
    layers: int
    heads: int
    ffn: int  # feed-forward units

    def width(self, head_width: int) -> int:
        return self.heads * head_width

    def as_dict(self) -> dict:
        return asdict(self)


def _teacher_state(folder: Path) -> tuple[dict, dict[str, Tensor]]:
    from safetensors.torch import load_file

    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    if config.get("model_type") != "bert":
        raise AnytaskError(f"{folder} is not a BERT folder (model_type {config.get('model_type')!r}); AutoDistil "
                           "slices BERT encoders such as MiniLM")
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise AnytaskError(f"{folder} has no model.safetensors; save the teacher with safetensors first")
    state = {k.removeprefix("bert."): v for k, v in load_file(str(weights)).items()}
    return config, state


class SuperLM(nn.Module):
    """The weight-sharing super-network: one set of weights, any sub-network of the teacher's shape."""

    def __init__(self, teacher_folder, relation_heads: int | None = None) -> None:
        super().__init__()
        folder = Path(teacher_folder)
        if not folder.is_dir():
            raise AnytaskError(f"the teacher {folder} is not a local folder; pass a model folder (minilm's is "
                               "anytask.backbones.hf.minilm_path())")
        self.folder = folder
        self.config, state = _teacher_state(folder)
        c = self.config
        self.n_layers, self.n_heads, self.hidden = c["num_hidden_layers"], c["num_attention_heads"], c["hidden_size"]
        self.ffn_max, self.eps = c["intermediate_size"], float(c.get("layer_norm_eps", 1e-12))
        if c.get("hidden_act", "gelu") != "gelu" or c.get("position_embedding_type", "absolute") != "absolute":
            raise AnytaskError(f"{folder}: SuperLM reproduces BERT with gelu and absolute positions only")
        self.head_width = self.hidden // self.n_heads
        self.relation_heads = relation_heads or self.n_heads
        names = [k for k in state if k.startswith(("embeddings.", "encoder.")) and not k.endswith("position_ids")]
        missing = [k for k in self._expected_names() if k not in names]
        if missing:
            raise AnytaskError(f"{folder}'s weights lack {len(missing)} tensor(s) a BERT needs, e.g. {missing[0]}")
        self.weights = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(state[k].float().clone())
                                         for k in self._expected_names()})
        # the pooler is not trained (students are mean-pooled) but is written, sliced, so a loaded student has
        # no randomly initialised tensors (they would change its weights hash, its cache identity, every load)
        self.pooler = {k: state[k].float().clone() for k in ("pooler.dense.weight", "pooler.dense.bias") if k in state}

    @property
    def largest(self) -> SubNet:
        return SubNet(self.n_layers, self.n_heads, self.ffn_max)

    def _expected_names(self) -> list[str]:
        names = [f"embeddings.{n}" for n in ("word_embeddings.weight", "position_embeddings.weight",
                                              "token_type_embeddings.weight", "LayerNorm.weight", "LayerNorm.bias")]
        for i in range(self.n_layers):
            p = f"encoder.layer.{i}."
            for n in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                      "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"):
                names += [p + n + ".weight", p + n + ".bias"]
        return names

    def check(self, shape: SubNet) -> SubNet:
        if not (1 <= shape.layers <= self.n_layers and 1 <= shape.heads <= self.n_heads
                and 1 <= shape.ffn <= self.ffn_max):
            raise AnytaskError(f"sub-network {shape} is outside the teacher's shape {self.largest}")
        if shape.width(self.head_width) % self.relation_heads:
            raise AnytaskError(f"sub-network {shape}: width {shape.width(self.head_width)} does not split into "
                               f"{self.relation_heads} relation heads; use a head count that makes it divisible")
        return shape

    def _w(self, name: str) -> Tensor:
        return self.weights[name.replace(".", "__")]

    def sliced_state(self, shape: SubNet) -> dict[str, Tensor]:
        """The sub-network's weights under transformers' BertModel names (copies)."""
        shape = self.check(shape)
        h, f = shape.width(self.head_width), shape.ffn
        out = {}
        for name in self._expected_names():
            parts = name.split(".")
            if parts[0] == "encoder" and int(parts[2]) >= shape.layers:
                continue
            w = self._w(name).detach()
            if "LayerNorm" in name or name.startswith("embeddings."):
                w = w[..., :h]
            elif "intermediate.dense" in name:
                w = w[:f, :h] if w.dim() == 2 else w[:f]
            elif "output.dense" in name and "attention" not in name:
                w = w[:h, :f] if w.dim() == 2 else w[:h]
            else:  # query, key, value, attention output: (h, h)
                w = w[:h, :h] if w.dim() == 2 else w[:h]
            out[name] = w.clone().contiguous()
        if self.pooler:
            out["pooler.dense.weight"] = self.pooler["pooler.dense.weight"][:h, :h].clone().contiguous()
            out["pooler.dense.bias"] = self.pooler["pooler.dense.bias"][:h].clone().contiguous()
        return out

    # -- the forward pass -----------------------------------------------------------------------------
    def forward(self, inputs: dict[str, Tensor], shape: SubNet | None = None,
                return_qkv: bool = False) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        """Last-layer token states (B, T, width) of a sub-network (the largest by default); with ``return_qkv``
        also the last layer's query, key and value projections (B, T, width)."""
        shape = self.check(shape or self.largest)
        h, f, d = shape.width(self.head_width), shape.ffn, self.head_width
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        types = inputs.get("token_type_ids", torch.zeros_like(ids))
        T = ids.shape[1]
        w = self._w
        x = (w("embeddings.word_embeddings.weight")[ids, :h] + w("embeddings.position_embeddings.weight")[:T, :h]
             + w("embeddings.token_type_embeddings.weight")[types, :h])
        x = nn.functional.layer_norm(x, (h,), w("embeddings.LayerNorm.weight")[:h],
                                     w("embeddings.LayerNorm.bias")[:h], self.eps)
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        B = ids.shape[0]
        qkv = None
        for i in range(shape.layers):
            p = f"encoder.layer.{i}."

            def lin(name, x, rows, cols):
                return nn.functional.linear(x, w(p + name + ".weight")[:rows, :cols], w(p + name + ".bias")[:rows])

            q, k, v = (lin(f"attention.self.{n}", x, h, h) for n in ("query", "key", "value"))
            if i == shape.layers - 1:
                qkv = (q, k, v)
            split = lambda t: t.view(B, T, shape.heads, d).transpose(1, 2)  # noqa: E731
            scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(d) + bias
            context = (scores.softmax(-1) @ split(v)).transpose(1, 2).reshape(B, T, h)
            x = nn.functional.layer_norm(lin("attention.output.dense", context, h, h) + x, (h,),
                                         w(p + "attention.output.LayerNorm.weight")[:h],
                                         w(p + "attention.output.LayerNorm.bias")[:h], self.eps)
            hidden = nn.functional.gelu(lin("intermediate.dense", x, f, h))
            x = nn.functional.layer_norm(lin("output.dense", hidden, h, f) + x, (h,),
                                         w(p + "output.LayerNorm.weight")[:h], w(p + "output.LayerNorm.bias")[:h],
                                         self.eps)
        return (x, qkv) if return_qkv else x

    def relations(self, inputs: dict[str, Tensor], shape: SubNet | None = None) -> Tensor:
        """The last layer's QQ / KK / VV relations, (3, B, R, T, T), R = ``relation_heads``, pre-softmax."""
        _, qkv = self.forward(inputs, shape, return_qkv=True)
        return relation_scores(qkv, self.relation_heads)

    # -- writing a student ----------------------------------------------------------------------------
    def extract(self, shape: SubNet, scratch: bool = False, seed: int = 0) -> nn.Module:
        """The sub-network as a standalone transformers ``BertModel`` (the teacher's pooler sliced, if it has one);
        ``scratch=True`` gives the same shape freshly initialised instead (BERT's init, seeded): the control."""
        from transformers import BertConfig, BertModel

        shape = self.check(shape)
        h = shape.width(self.head_width)
        drop = ("architectures", "_name_or_path", "transformers_version")
        c = {k: v for k, v in self.config.items() if k not in drop}
        c.update(hidden_size=h, num_attention_heads=shape.heads, num_hidden_layers=shape.layers,
                 intermediate_size=shape.ffn)
        torch.manual_seed(seed)
        model = BertModel(BertConfig(**c), add_pooling_layer=bool(self.pooler))
        if scratch:
            return model.eval()
        state = self.sliced_state(shape)
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [m for m in missing if not m.endswith("position_ids")]
        if missing or unexpected:
            raise AnytaskError(f"extracting {shape}: missing {missing[:3]}, unexpected {unexpected[:3]}")
        return model.eval()


    def extract_layers(self, keep) -> nn.Module:
        """A shallower teacher at full width: the teacher's layers ``keep`` (indices, in order, no repeats) as a
        standalone ``BertModel`` with the teacher's embeddings (and pooler, if any)."""
        from transformers import BertConfig, BertModel

        keep = [int(i) for i in keep]
        if not keep or sorted(set(keep)) != keep or keep[0] < 0 or keep[-1] >= self.n_layers:
            raise AnytaskError(f"keep={keep}: give increasing, distinct layer indices in 0..{self.n_layers - 1}")
        full = {name: self._w(name).detach() for name in self._expected_names()}  # load_state_dict copies them
        full.update(self.pooler)
        state = {}
        for name, w in full.items():
            parts = name.split(".")
            if parts[0] != "encoder":
                state[name] = w
            elif int(parts[2]) in keep:
                state[".".join([*parts[:2], str(keep.index(int(parts[2]))), *parts[3:]])] = w
        drop = ("architectures", "_name_or_path", "transformers_version")
        c = {k: v for k, v in self.config.items() if k not in drop}
        c.update(num_hidden_layers=len(keep))
        model = BertModel(BertConfig(**c), add_pooling_layer=bool(self.pooler))
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [m for m in missing if not m.endswith("position_ids")]
        if missing or unexpected:
            raise AnytaskError(f"extracting layers {keep}: missing {missing[:3]}, unexpected {unexpected[:3]}")
        return model.eval()


def relation_scores(qkv: tuple[Tensor, Tensor, Tensor], relation_heads: int) -> Tensor:
    """(3, B, R, T, T): each of Q, K, V (B, T, W) split into R heads of W / R, then X X^T / sqrt(W / R)."""
    out = []
    for x in qkv:
        B, T, W = x.shape
        if W % relation_heads:
            raise AnytaskError(f"width {W} does not split into {relation_heads} relation heads")
        r = x.view(B, T, relation_heads, W // relation_heads).transpose(1, 2)
        out.append(r @ r.transpose(-1, -2) / math.sqrt(W // relation_heads))
    return torch.stack(out)


def teacher_relations(model: nn.Module, inputs: dict[str, Tensor], relation_heads: int) -> Tensor:
    """The frozen teacher's last-layer relations, read with forward hooks on its query / key / value layers."""
    layer = model.encoder.layer[-1].attention.self
    seen = {}
    hooks = [getattr(layer, n).register_forward_hook(lambda m, a, out, n=n: seen.__setitem__(n, out))
             for n in ("query", "key", "value")]
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return relation_scores((seen["query"], seen["key"], seen["value"]), relation_heads)


def mean_pooled(model: nn.Module, tokenizer, texts: list[str], *, max_length: int, batch_size: int = 64) -> Tensor:
    """L2-normalised mean-pooled last-layer states ``(N, width)`` of a transformers encoder (a student or the
    teacher's extracted copy), read the way ``align_to_teacher`` reads them."""
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            inputs = dict(tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                                    max_length=max_length, return_tensors="pt"))
            out.append(nn.functional.normalize(_pool(model, inputs), dim=-1))
    return torch.cat(out)


def _pool(model: nn.Module, inputs: dict[str, Tensor]) -> Tensor:
    """Mean of the last layer's states over each text's real tokens, ``(B, width)``."""
    states = model(**inputs).last_hidden_state
    m = inputs["attention_mask"].unsqueeze(-1).float()
    return (states * m).sum(1) / m.sum(1).clamp_min(1e-9)


def align_to_teacher(model: nn.Module, teacher, texts: list[str], *, steps: int, lr: float = 1e-4,
                     batch_size: int = 32, max_length: int = 64, seed: int = 0, progress: bool = True,
                     degrade=None, clean_weight: float = 1.0, project: bool = True) -> nn.Linear | None:
    """Train ``model`` (an extracted student, in place) so that its mean-pooled states — through a new linear
    map to the teacher's width when ``project`` — match the teacher's sentence embeddings (1 - cosine); returns
    the map (``None`` without ``project``; the widths must then agree). The teacher (a frozen ``Backbone``) only
    gives targets.

    With ``degrade`` (a function ``(texts, seed) -> texts``) the student reads degraded copies of each batch
    while the teacher reads the clean texts (RLQ's task-agnostic distillation), plus ``clean_weight`` times the
    same loss on the clean texts, so clean inputs keep their embeddings."""
    if len(texts) < batch_size:
        raise AnytaskError(f"aligning needs at least {batch_size} texts, got {len(texts)}")
    if not project and model.config.hidden_size != teacher.config.dim:
        raise AnytaskError(f"without a projection the student's width ({model.config.hidden_size}) must equal the "
                           f"teacher's ({teacher.config.dim})")
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    dense = nn.Linear(model.config.hidden_size, teacher.config.dim) if project else None
    extra = list(dense.parameters()) if dense is not None else []

    def tokenize(batch: list[str]) -> dict[str, Tensor]:
        return dict(teacher.tokenizer(batch, padding=True, truncation=True, max_length=max_length,
                                      return_tensors="pt"))

    def embed(inputs: dict[str, Tensor]) -> Tensor:
        pooled = _pool(model, inputs)
        return dense(pooled) if dense is not None else pooled

    def loss(step: int) -> Tensor:
        idx = torch.randint(len(texts), (batch_size,), generator=rng).tolist()
        batch = [texts[i] for i in idx]
        inputs = tokenize(batch)  # the clean batch, tokenised once for the teacher and the student
        with torch.no_grad():
            target = teacher.pool(teacher.forward_tokens(inputs), inputs["attention_mask"])
        if degrade is None:
            return 1 - nn.functional.cosine_similarity(embed(inputs), target, dim=-1).mean()
        noisy = embed(tokenize(degrade(batch, seed * 100003 + step)))
        return (1 - nn.functional.cosine_similarity(noisy, target).mean()
                + clean_weight * (1 - nn.functional.cosine_similarity(embed(inputs), target).mean()))

    _train_student(model, extra, loss, steps=steps, lr=lr, desc="align" if degrade is None else "rlq",
                   progress=progress)
    return dense


def _train_student(model: nn.Module, extra: list, loss_fn, *, steps: int, lr: float, desc: str,
                   progress: bool) -> list[float]:
    """The students' training loop: ``model`` (and ``extra`` parameters) trainable, in eval mode (no dropout: the
    student is used frozen, as the teacher is), AdamW with weight decay 0.01, ``loss_fn(step)`` minimised for
    ``steps`` steps with gradients clipped to norm 1; frozen again after. Returns the loss curve."""
    from tqdm.auto import tqdm

    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    params = list(model.parameters()) + list(extra)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    curve = []
    bar = tqdm(range(steps), desc=desc, unit="step", disable=not progress)
    for step in bar:
        loss = loss_fn(step)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        curve.append(float(loss.detach()))
        bar.set_postfix(loss=f"{curve[-1]:.4f}")
    for p in params:
        p.requires_grad_(False)
    return curve


def mask_tokens(inputs: dict[str, Tensor], ratio: float, gen: torch.Generator) -> Tensor:
    """Which tokens to mask ``(B, T)``: ``ratio`` of each text's real tokens, never its first and last (the
    [CLS] / [SEP] markers), at least one where a text has any."""
    real = inputs["attention_mask"].bool().clone()
    lengths = real.sum(1)
    real[:, 0] = False
    real[torch.arange(len(lengths)), (lengths - 1).clamp_min(0)] = False
    scores = torch.rand(real.shape, generator=gen).masked_fill(~real, 2.0)
    k = (real.sum(1).float() * ratio).ceil().long().clamp_min(1)
    rank = scores.argsort(1).argsort(1)
    return (rank < k[:, None]) & real


def distill_token_states(model: nn.Module, teacher, texts: list[str], *, steps: int, mask_ratio: float = 0.3,
                         supervise_all: bool = True, lr: float = 1e-4, batch_size: int = 32, max_length: int = 64,
                         seed: int = 0, progress: bool = True) -> list[float]:
    """G2SD's generic distillation for a text encoder (card 07): teacher and student read the *same* masked text
    (``mask_ratio`` of its tokens replaced by [MASK]) and the student's last-layer token states regress the frozen
    teacher's, both LayerNorm'ed without affine parameters, smooth-L1 with beta 2, on every real token
    (``supervise_all``) or on the masked ones only. Trains ``model`` in place (same width as the teacher);
    returns the loss curve."""
    if len(texts) < batch_size:
        raise AnytaskError(f"distilling needs at least {batch_size} texts, got {len(texts)}")
    if model.config.hidden_size != teacher.config.dim:
        raise AnytaskError(f"the student's width ({model.config.hidden_size}) must equal the teacher's "
                           f"({teacher.config.dim}) for token-state distillation")
    if not 0 < mask_ratio < 1:
        raise AnytaskError(f"mask_ratio={mask_ratio!r}: give a fraction of the tokens in (0, 1)")
    mask_id = teacher.tokenizer.mask_token_id
    if mask_id is None:
        raise AnytaskError("the teacher's tokenizer has no [MASK] token; token-state distillation needs one")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    width = model.config.hidden_size

    def loss(step: int) -> Tensor:
        idx = torch.randint(len(texts), (batch_size,), generator=gen).tolist()
        inputs = dict(teacher.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                        max_length=max_length, return_tensors="pt"))
        masked = mask_tokens(inputs, mask_ratio, gen)
        inputs["input_ids"] = inputs["input_ids"].masked_fill(masked, mask_id)
        where = inputs["attention_mask"].bool() if supervise_all else masked
        with torch.no_grad():
            target = nn.functional.layer_norm(teacher.forward_tokens(inputs), (width,))[where]
        states = nn.functional.layer_norm(model(**inputs).last_hidden_state, (width,))[where]
        return nn.functional.smooth_l1_loss(states, target, beta=2.0)

    return _train_student(model, [], loss, steps=steps, lr=lr, desc="g2sd generic", progress=progress)
