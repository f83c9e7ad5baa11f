"""``uni_perceiver_v2``: one shared decoder and one candidate-similarity head for every task.

Li et al. 2023, Uni-Perceiver v2: A Generalist Model for Large-Scale Vision and Vision-Language Tasks,
https://arxiv.org/abs/2211.09808 — here on text, as card 05's mechanism test (no official v2 code exists):

* **one formulation** — inputs and candidate targets (a classification task's label names, a retrieval
  task's documents) pass through the same small trainable Transformer (the "decoder", ``layers`` x width
  of the backbone) over the *frozen* backbone's token states, which are computed once per text; the
  score is cosine / τ with a **learned temperature per task** (v1's choice, card 19), the loss a
  cross-entropy with label smoothing 0.1 over the task's candidates (every label name; the in-batch
  documents for retrieval, positives by identity as in :func:`~anytask.methods.retrieval.uwe.many_to_many_infonce`);
* **sampling** — ``"mixed"``: every step draws examples of every task and sums the task losses;
  ``"unmixed"``: every step trains on one task, drawn in proportion to ``task_weights`` (v2's per-GPU
  unmixed sampling, on one device);
* **task-balanced gradient normalisation** (``balance=True``; v2's MT-AdamW, whose exact statistic is
  unpublished — this is the card's reading): each task keeps a running mean (EMA 0.9) of its gradient
  norm, and a step on task t scales its gradient by (mean of the tasks' running norms) / (t's running
  norm), so no task's gradients dominate the shared decoder by scale. With one task per step the
  comparison has to be across steps, hence running statistics.

The fitted model classifies (``predict(task, texts)``; any other list of label names zero-shot with
``predict(None, texts, labels=[...])``) and ranks (the ranker contract: ``set_targets`` / ``score`` /
``search``).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.validation import check_is_fitted
from torch import Tensor, nn

from anytask.core.errors import AnytaskError
from anytask.core.validation import check_input_texts
from anytask.methods.retrieval.base import RANKERS, TaskRanker, check_pairs
from anytask.methods.retrieval.uwe import many_to_many_infonce


# Frozen token states of the texts seen last, per (backbone identity, max_tokens), shared by every model of the
# process: refitting on the same texts (seeds, ablations) does not run the backbone again.
STATE_MEMO_TEXTS = 20_000
_STATES: dict[tuple, OrderedDict] = {}


class SharedDecoder(nn.Module):
    """A small Transformer over frozen token states, mean-pooled to unit vectors (pre-norm residual blocks:
    the backbone's states stay on the residual path)."""

    def __init__(self, dim: int, layers: int, heads: int) -> None:
        super().__init__()
        block = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=0.1, batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)

    def forward(self, states: Tensor, mask: Tensor) -> Tensor:
        out = self.blocks(states, src_key_padding_mask=~mask.bool())
        m = mask.unsqueeze(-1).to(out.dtype)
        return F.normalize((out * m).sum(1) / m.sum(1).clamp_min(1.0), dim=-1)


def draw_task(names: list[str], weights: np.ndarray, rng) -> str:
    """Unmixed sampling: the one task of this step, drawn with probability ``weights`` (summing to 1)."""
    return names[int(rng.choice(len(names), p=weights))]


def balanced_scale(norms: dict, task: str, norm: float, momentum: float = 0.9) -> float:
    """Update ``task``'s running gradient norm with ``norm`` and return the factor that brings it to the
    mean of all tasks' running norms (1.0 for the first step of the first task)."""
    norms[task] = norm if task not in norms else momentum * norms[task] + (1 - momentum) * norm
    return float(np.mean(list(norms.values())) / max(norms[task], 1e-12))


@RANKERS.register("uni_perceiver_v2", reference="Li et al. 2023, Uni-Perceiver v2, https://arxiv.org/abs/2211.09808",
                  summary="one shared decoder over frozen token states, cosine to candidate targets with a "
                          "temperature per task; mixed or unmixed task sampling, task-balanced gradients",
                  input="texts", output="scores", needs_backbone=True)
class GeneralistRanker(TaskRanker):
    def __init__(self, *, backbone: str = "minilm", layers: int = 2, heads: int = 4, steps: int = 300,
                 batch_size: int = 32, lr: float = 3e-4, sampling: str = "unmixed", balance: bool = True,
                 task_weights: dict | None = None, label_smoothing: float = 0.1, max_tokens: int = 64,
                 seed: int = 0) -> None:
        self.backbone = backbone
        self.layers = layers
        self.heads = heads
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.sampling = sampling
        self.balance = balance
        self.task_weights = task_weights
        self.label_smoothing = label_smoothing
        self.max_tokens = max_tokens
        self.seed = seed

    def _check_params(self, tasks: dict) -> None:
        if self.sampling not in ("mixed", "unmixed"):
            raise AnytaskError(f"sampling={self.sampling!r}: use 'mixed' (every task in every step) or 'unmixed' "
                               "(one task per step)")
        for name, lo in (("layers", 1), ("heads", 1), ("steps", 0), ("batch_size", 2), ("max_tokens", 2)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
                raise AnytaskError(f"{name}={v!r}: pass an integer >= {lo}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise AnytaskError(f"lr={self.lr!r}: pass a finite number > 0")
        if self.balance and self.sampling == "mixed":
            raise AnytaskError("balance=True normalises each task's gradient, which needs one task per step: use "
                               "sampling='unmixed', or balance=False with mixed batches")
        unknown = set(self.task_weights or {}) - set(tasks)
        if unknown:
            raise AnytaskError(f"task_weights names unknown task(s) {sorted(unknown)}; the tasks are {sorted(tasks)}")

    # -- frozen token states, once per text ---------------------------------------------------------------
    def _states(self, texts: list[str]) -> list[Tensor]:
        memo = _STATES.setdefault((self.backbone_.identity, int(self.max_tokens)), OrderedDict())
        missing = [t for t in dict.fromkeys(texts) if t not in memo]
        order = sorted(missing, key=len)
        for s in range(0, len(order), 64):
            batch = order[s:s + 64]
            states, mask = self.backbone_.embed_tokens(batch)
            for i, t in enumerate(batch):
                memo[t] = states[i, :int(mask[i].sum())][: int(self.max_tokens)].clone()
        out = []
        for t in texts:
            memo.move_to_end(t)
            out.append(memo[t])
        while len(memo) > STATE_MEMO_TEXTS:
            memo.popitem(last=False)
        return out

    def _encode(self, texts: list[str]) -> Tensor:
        states = self._states(texts)
        T = max(len(s) for s in states)
        padded = torch.zeros(len(states), T, states[0].shape[-1])
        mask = torch.zeros(len(states), T, dtype=torch.long)
        for i, s in enumerate(states):
            padded[i, :len(s)], mask[i, :len(s)] = s, 1
        return self.decoder_(padded, mask)

    # -- fit -------------------------------------------------------------------------------------------------
    def fit(self, queries, targets) -> "GeneralistRanker":
        """One retrieval task from linked pairs (the ranker contract); ``fit_tasks`` trains several."""
        queries, targets = check_pairs(queries, targets)
        return self.fit_tasks({"pairs": {"queries": queries, "targets": targets}})

    def fit_tasks(self, tasks: dict) -> "GeneralistRanker":
        """``tasks``: name -> ``{"texts", "labels"[, "label_names"]}`` (classification; label_names maps a label
        to the text its candidate is encoded from) or ``{"queries", "targets"}`` (retrieval pairs)."""
        from anytask.backbones import get_backbone

        if not tasks:
            raise AnytaskError("tasks is empty; give at least one task")
        self._check_params(tasks)
        self.tasks_ = {name: _check_task(name, t) for name, t in tasks.items()}
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.backbone_ = get_backbone(self.backbone)
        self.decoder_ = SharedDecoder(self.backbone_.config.dim, int(self.layers), int(self.heads))
        self.log_tau_ = nn.ParameterDict({name: nn.Parameter(torch.tensor(math.log(0.05))) for name in self.tasks_})
        self.loss_curve_, self.task_curve_, self.grad_norms_, self.task_losses_ = [], [], {}, {}
        start = time.perf_counter()
        if self.steps:
            self._train(rng)
        self.decoder_.eval()
        self.fit_seconds_ = round(time.perf_counter() - start, 2)
        return self

    def _task_loss(self, name: str, rng, n: int) -> Tensor:
        loss = self._one_task_loss(name, rng, n)
        self.task_losses_.setdefault(name, []).append(round(float(loss.item()), 5))
        return loss

    def _one_task_loss(self, name: str, rng, n: int) -> Tensor:
        task = self.tasks_[name]
        pick = rng.choice(len(task["x"]), size=min(n, len(task["x"])), replace=False)
        X = self._encode([task["x"][i] for i in pick])
        tau = self.log_tau_[name].exp().clamp(1e-3, 1.0)
        if task["kind"] == "classify":
            C = self._encode(task["candidates"])
            y = torch.tensor([task["y"][i] for i in pick])
            return F.cross_entropy(X @ C.T / tau, y, label_smoothing=float(self.label_smoothing))
        docs = list(dict.fromkeys(task["y"][i] for i in pick))
        D = self._encode(docs)
        P = torch.tensor([[d in task["links"][task["x"][i]] for d in docs] for i in pick])
        return many_to_many_infonce(X @ D.T, P, tau)

    def _train(self, rng) -> None:
        params = list(self.decoder_.parameters()) + list(self.log_tau_.parameters())
        opt = torch.optim.AdamW(params, lr=float(self.lr), weight_decay=0.01)
        names = sorted(self.tasks_)
        weights = np.array([float((self.task_weights or {}).get(n, 1.0)) for n in names])
        weights = weights / weights.sum()
        total = int(self.steps)
        for step in range(total):
            self.decoder_.train()
            for g in opt.param_groups:
                g["lr"] = float(self.lr) * min(1.0, (step + 1) / max(1, total // 10))
            if self.sampling == "unmixed":
                name = draw_task(names, weights, rng)
                loss = self._task_loss(name, rng, int(self.batch_size))
                self.task_curve_.append(name)
            else:
                shares = np.maximum(1, np.round(weights * int(self.batch_size)).astype(int))
                loss = sum(w * self._task_loss(n, rng, int(k)) for n, k, w in zip(names, shares, weights))
                name = None
            opt.zero_grad()
            loss.backward()
            if self.balance and name is not None:
                norm = float(torch.sqrt(sum((p.grad ** 2).sum() for p in self.decoder_.parameters()
                                            if p.grad is not None)))
                scale = balanced_scale(self.grad_norms_, name, norm)
                for p in self.decoder_.parameters():
                    if p.grad is not None:
                        p.grad.mul_(scale)
            opt.step()
            self.loss_curve_.append(round(float(loss.item()), 5))

    # -- use -------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, texts) -> np.ndarray:
        """Unit vectors ``(N, D)`` of texts through the shared decoder."""
        check_is_fitted(self, "decoder_")
        texts = check_input_texts(texts)
        self.decoder_.eval()
        return torch.cat([self._encode(texts[i:i + 256]) for i in range(0, len(texts), 256)]).numpy()


def _check_task(name: str, task: dict) -> dict:
    if "texts" in task:
        texts = check_input_texts(task["texts"], what=f"task {name!r} texts")
        labels = [str(v) for v in task.get("labels", [])]
        if len(labels) != len(texts):
            raise AnytaskError(f"task {name!r}: {len(texts)} texts but {len(labels)} labels")
        classes = sorted(set(labels))
        if len(classes) < 2:
            raise AnytaskError(f"task {name!r} has {len(classes)} class; a classification task needs at least 2")
        names = task.get("label_names") or {}
        index = {c: i for i, c in enumerate(classes)}
        return {"kind": "classify", "x": texts, "y": [index[v] for v in labels], "classes": classes,
                "candidates": [str(names.get(c, c.replace("_", " "))) for c in classes]}
    if "queries" in task:
        queries, targets = check_pairs(task["queries"], task["targets"])
        links: dict[str, set] = {}
        for q, t in zip(queries, targets):
            links.setdefault(q, set()).add(t)
        return {"kind": "retrieve", "x": queries, "y": targets, "links": links}
    raise AnytaskError(f"task {name!r} needs texts + labels (classification) or queries + targets (retrieval)")
