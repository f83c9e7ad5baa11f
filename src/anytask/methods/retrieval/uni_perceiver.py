"""``uni_perceiver``: one shared encoder for inputs and targets; every task is "pick the most similar target".

Zhu et al. 2022, Uni-Perceiver: Pre-training Unified Architecture for Generic Perception for Zero-shot and
Few-shot Tasks, https://arxiv.org/abs/2112.01522 (card 19), on text with MiniLM as the shared encoder:

* **one formulation** — an input and its candidate targets (a classification task's label names, a retrieval
  task's in-batch documents) pass through the *same* encoder (a tuned copy of the backbone's top ``n_top``
  layers over frozen lower states, :class:`anytask.backbones.split.SplitEncoder`); the score is
  ``cos(f(x), f(y)) / τ_task`` with a **learned temperature per task** (initialised at 0.07, kept >= 0.01 so
  no logit exceeds 100 — the card's cap), the loss a cross-entropy with label smoothing 0.1 over the task's
  label names, or the many-to-many InfoNCE over in-batch documents for retrieval;
* **multi-task training** — one task per step, drawn by ``task_weights`` (the paper's per-task sampling);
  label names are re-encoded every step, since the encoder that encodes them is training (the card's pitfall);
* **zero-shot** on label spaces never trained — ``predict(None, texts, labels=[...])`` scores any names;
* **prompt tuning and fine-tuning afterwards** — ``export(folder)`` writes the tuned encoder as a
  sentence-transformers folder, so ``hf:<folder>`` is a backbone for every head: deep key/value prompts with
  the project's prompt machinery (``PromptTuning(prompt_mode="kv")``), or this class again for fine-tuning.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.validation import check_is_fitted
from torch import Tensor, nn

from anytask.core.errors import AnytaskError
from anytask.core.validation import check_input_texts
from anytask.methods.retrieval.base import RANKERS, TaskRanker, check_pairs
from anytask.methods.retrieval.generalist import _check_task, draw_task
from anytask.methods.retrieval.uwe import many_to_many_infonce

MIN_TAU = 0.01  # logit scale <= 100


@RANKERS.register("uni_perceiver", reference="Zhu et al. 2022, Uni-Perceiver, https://arxiv.org/abs/2112.01522",
                  summary="one shared encoder (tuned top layers) for inputs and targets, cosine / learned "
                          "temperature per task; multi-task training, zero-shot label spaces, export for prompts",
                  input="texts", output="scores", needs_backbone=True, saveable=True)
class UniPerceiver(TaskRanker):
    def __init__(self, *, backbone: str = "minilm", n_top: int = 2, steps: int = 300, batch_size: int = 32,
                 lr: float = 1e-4, warmup: float = 0.1, tau_init: float = 0.07, label_smoothing: float = 0.1,
                 task_weights: dict | None = None, max_length: int = 64, seed: int = 0,
                 progress: bool = False) -> None:
        self.backbone = backbone
        self.n_top = n_top
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.warmup = warmup
        self.tau_init = tau_init
        self.label_smoothing = label_smoothing
        self.task_weights = task_weights
        self.max_length = max_length
        self.seed = seed
        self.progress = progress

    def _check_params(self, tasks: dict) -> None:
        for name, lo in (("n_top", 1), ("steps", 0), ("batch_size", 2), ("max_length", 4)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
                raise AnytaskError(f"{name}={v!r}: pass an integer >= {lo}")
        for name in ("lr", "tau_init"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise AnytaskError(f"{name}={v!r}: pass a finite number > 0")
        if self.tau_init < MIN_TAU:
            raise AnytaskError(f"tau_init={self.tau_init!r}: the temperature is kept >= {MIN_TAU} (logits <= 100)")
        if not (isinstance(self.warmup, (int, float)) and 0 <= self.warmup < 1):
            raise AnytaskError(f"warmup={self.warmup!r}: pass the warm-up fraction of the steps, in [0, 1)")
        dotted = [n for n in tasks if not isinstance(n, str) or "." in n or not n]
        if dotted:
            raise AnytaskError(f"task names {dotted!r}: name tasks with non-empty strings without '.'")
        unknown = set(self.task_weights or {}) - set(tasks)
        if unknown:
            raise AnytaskError(f"task_weights names unknown task(s) {sorted(unknown)}; the tasks are {sorted(tasks)}")

    def _split(self):
        from anytask.backbones import get_backbone
        from anytask.backbones.split import SplitEncoder

        return SplitEncoder(get_backbone(self.backbone), int(self.n_top), int(self.max_length))

    # -- fit ---------------------------------------------------------------------------------------------------
    def fit(self, queries, targets) -> "UniPerceiver":
        """One retrieval task from linked pairs (the ranker contract); ``fit_tasks`` trains several."""
        queries, targets = check_pairs(queries, targets)
        return self.fit_tasks({"pairs": {"queries": queries, "targets": targets}})

    def fit_tasks(self, tasks: dict) -> "UniPerceiver":
        """``tasks``: name -> ``{"texts", "labels"[, "label_names"]}`` (classification against the label names) or
        ``{"queries", "targets"}`` (retrieval pairs)."""
        if not tasks:
            raise AnytaskError("tasks is empty; give at least one task")
        self._check_params(tasks)
        self.tasks_ = {name: _check_task(name, t) for name, t in tasks.items()}
        torch.manual_seed(self.seed)
        self.encoder_ = self._split()
        self.log_tau_ = nn.ParameterDict({n: nn.Parameter(torch.tensor(math.log(self.tau_init))) for n in self.tasks_})
        self.loss_curve_, self.task_curve_, start = [], [], time.perf_counter()
        if self.steps:
            self._train(np.random.default_rng(self.seed))
        self.encoder_.top.eval()
        self.fit_seconds_ = round(time.perf_counter() - start, 2)
        return self

    def _lower(self, texts: list[str]) -> list[Tensor]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if missing:
            self._memo.update(zip(missing, self.encoder_.lower(missing)))
        return [self._memo[t] for t in texts]

    def _pooled(self, texts: list[str]) -> Tensor:
        return F.normalize(self.encoder_.pooled(self._lower(texts)), dim=-1)

    def _tau(self, name: str) -> Tensor:
        return self.log_tau_[name].exp().clamp_min(MIN_TAU)

    def _loss(self, name: str, rng) -> Tensor:
        task = self.tasks_[name]
        pick = rng.choice(len(task["x"]), size=min(int(self.batch_size), len(task["x"])), replace=False)
        X = self._pooled([task["x"][i] for i in pick])
        if task["kind"] == "classify":
            C = self._pooled(task["candidates"])  # re-encoded every step: the encoder is training
            y = torch.tensor([task["y"][i] for i in pick])
            return F.cross_entropy(X @ C.T / self._tau(name), y, label_smoothing=float(self.label_smoothing))
        docs = list(dict.fromkeys(task["y"][i] for i in pick))
        P = torch.tensor([[d in task["links"][task["x"][i]] for d in docs] for i in pick])
        S = X @ self._pooled(docs).T
        return many_to_many_infonce(S, P, self._tau(name)) + many_to_many_infonce(S.T, P.T, self._tau(name))

    def _train(self, rng) -> None:
        from tqdm.auto import tqdm

        texts = [t for task in self.tasks_.values() for t in task["x"] + list(task.get("candidates", []))
                 + (list(task["y"]) if task["kind"] == "retrieve" else [])]
        self._memo: dict[str, Tensor] = {}
        self._lower(list(dict.fromkeys(texts)))  # the frozen lower states, once per text
        top = self.encoder_.top
        params = [p for p in top.parameters() if p.requires_grad] + list(self.log_tau_.parameters())
        opt = torch.optim.AdamW(params, lr=float(self.lr), weight_decay=0.01)
        names = sorted(self.tasks_)
        weights = np.array([float((self.task_weights or {}).get(n, 1.0)) for n in names])
        weights = weights / weights.sum()
        total = int(self.steps)
        warm = max(1, int(self.warmup * total))
        for step in tqdm(range(total), desc="uni_perceiver", disable=not self.progress):
            top.train()
            for g in opt.param_groups:  # linear warm-up, then cosine decay
                g["lr"] = float(self.lr) * min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * step / total))
            name = draw_task(names, weights, rng)
            loss = self._loss(name, rng)
            opt.zero_grad()
            loss.backward()
            opt.step()
            self.loss_curve_.append(round(float(loss.item()), 5))
            self.task_curve_.append(name)
        del self._memo

    # -- use -----------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, texts, batch_size: int = 128) -> np.ndarray:
        """Unit vectors ``(N, D)`` of texts through the shared (tuned) encoder."""
        check_is_fitted(self, "encoder_")
        texts = check_input_texts(texts)
        self.encoder_.top.eval()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.empty(len(texts), self.encoder_.backbone.config.dim)
        for s in range(0, len(texts), batch_size):
            idx = order[s:s + batch_size]
            out[idx] = F.normalize(self.encoder_.pooled(self.encoder_.lower([texts[i] for i in idx])), dim=-1)
        return out.numpy()

    def export(self, folder) -> Path:
        """Write the tuned encoder as a sentence-transformers folder (the backbone with its top layers replaced);
        ``hf:<folder>`` then loads it as a backbone anywhere in anytask. Returns the folder's path."""
        from anytask.methods.distill.autodistil import teacher_folder
        from anytask.methods.distill.base import write_student

        check_is_fitted(self, "encoder_")
        model = self.encoder_.merged_model()
        taus = {n: round(float(self._tau(n).detach()), 4) for n in self.tasks_}
        card = (f"# Uni-Perceiver encoder tuned from {self.backbone}\n\nTop {self.n_top} layers tuned for {self.steps} "
                f"steps on the tasks {sorted(self.tasks_)} (learned temperatures {taus}); Zhu et al. 2022, "
                "arXiv:2112.01522.\n\nLoad it with anytask as backbone `hf:<this folder>`.\n")
        return write_student(folder, model, teacher_folder(self.backbone), max_length=int(self.max_length),
                             card=card)

    # -- persistence (anytask.core.io) ---------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict[str, Tensor]]:
        check_is_fitted(self, "encoder_")
        extra = {"loss_curve": self.loss_curve_, "task_curve": self.task_curve_, "fit_seconds": self.fit_seconds_,
                 "tasks": {n: {k: t[k] for k in ("kind", "classes", "candidates") if k in t}
                           for n, t in self.tasks_.items()}, "targets": getattr(self, "targets_", None)}
        tensors = {f"top.{k}": v for k, v in self.encoder_.top_state().items()}
        tensors.update({f"log_tau.{n}": p.detach().clone() for n, p in self.log_tau_.items()})
        return extra, tensors

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict) -> "UniPerceiver":
        obj = cls(**params)
        obj.encoder_ = obj._split()
        obj.encoder_.load_top_state({k[4:]: v for k, v in tensors.items() if k.startswith("top.")})
        obj.encoder_.top.eval()
        obj.tasks_ = {n: dict(t) for n, t in extra["tasks"].items()}
        obj.log_tau_ = nn.ParameterDict({n: nn.Parameter(tensors[f"log_tau.{n}"]) for n in obj.tasks_})
        obj.loss_curve_, obj.task_curve_ = list(extra["loss_curve"]), list(extra["task_curve"])
        obj.fit_seconds_ = extra["fit_seconds"]
        if extra.get("targets"):
            obj.set_targets(extra["targets"])
        return obj
