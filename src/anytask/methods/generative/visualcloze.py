"""VisualCloze: visual in-context learning by grid infilling (Li et al. 2025, "VisualCloze: A Universal Image
Generation Framework via Visual In-Context Learning", https://arxiv.org/abs/2504.07960; official code
lzyhha/VisualCloze).

A task is shown, not named: a grid holds example rows ``[condition, target]`` and a query row whose target panel
is masked; one infilling model fills it. At this scale the model is ``PatchInfiller`` (0.8 M parameters at the
defaults: 8-pixel patches, width 128, 4 blocks) trained from scratch by masked regression on grids of procedural
image tasks with 0 to ``max_context`` example rows (``anytask.data.images``: 10 atomic operations and their
ordered pairs; held-out operations, compositions and reverse tasks, and pairs computing them, kept out).
``text_backbone="minilm"`` adds the task's text prompt as one more token (frozen MiniLM embedding), dropped for
``text_dropout`` of the training batches so one model serves visual-only and visual + text prompting.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.data.images import TRAIN_TASKS, apply, prompt, sample_images, steps, task_grids
from anytask.methods.generative.base import INFILLERS, canvases, check_prompts, masked_mse
from anytask.methods.generative.model import PatchInfiller


def embed_texts(backbone: str, texts: list[str]) -> torch.Tensor:
    """Unit-norm frozen embeddings ``(N, D)`` of prompt texts through the backbone's embedding cache."""
    from anytask.backbones import get_embedder

    return torch.from_numpy(np.asarray(get_embedder(backbone).embed(list(texts)), np.float32))


@INFILLERS.register("visualcloze", reference="Li et al. 2025, https://arxiv.org/abs/2504.07960", saveable=True,
                    input="images", output="images", summary="masked-panel infiller over in-context grid rows")
class GridInfiller(Pretrained, BaseEstimator):
    """A masked-panel infiller trained on grids of procedural image tasks (VisualCloze)."""

    def __init__(self, *, image_size: int = 16, patch: int = 8, dim: int = 128, depth: int = 4, heads: int = 4,
                 max_context: int = 2, text_backbone: str | None = None, text_dropout: float = 0.5,
                 steps: int = 3000, batch_size: int = 48, lr: float = 1e-3, seed: int = 0,
                 verbose: bool = False) -> None:
        self.image_size, self.patch, self.dim, self.depth, self.heads = image_size, patch, dim, depth, heads
        self.max_context, self.text_backbone, self.text_dropout = max_context, text_backbone, text_dropout
        self.steps, self.batch_size, self.lr, self.seed, self.verbose = steps, batch_size, lr, seed, verbose

    def _new_net(self, text_dim: int) -> PatchInfiller:
        torch.manual_seed(self.seed)
        return PatchInfiller(image_size=self.image_size, patch=self.patch, dim=self.dim, depth=self.depth,
                             heads=self.heads, max_rows=self.max_context + 1, max_cols=2, text_dim=text_dim)

    def fit(self, tasks=None, images=None) -> "GridInfiller":
        """Train on grids of ``tasks`` (default ``TRAIN_TASKS``) over ``images`` (an ``(M, S, S)`` pool in [0, 1];
        default fresh procedural shapes every step)."""
        tasks = list(TRAIN_TASKS if tasks is None else tasks)
        if not tasks:
            raise AnytaskError("no tasks to train on; pass task names like 'invert' or 'flip_h+shift_right'")
        for t in tasks:
            steps(t)
        if self.max_context < 0 or self.steps < 1 or self.batch_size < 1:
            raise AnytaskError(f"max_context={self.max_context}, steps={self.steps}, batch_size={self.batch_size}: "
                               "give max_context >= 0 and at least one step of at least one grid")
        source = "shapes" if images is None else np.asarray(images, np.float32)
        s = self.image_size
        text = embed_texts(self.text_backbone, [prompt(t) for t in tasks]) if self.text_backbone else None
        net = self._new_net(0 if text is None else text.shape[1])
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=0.01)
        warm = min(100, self.steps // 10 + 1)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda i: min(1.0, (i + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(i, self.steps) / self.steps)))
        rng = np.random.default_rng(self.seed)
        history, start = [], time.perf_counter()
        net.train()
        for step in tqdm(range(self.steps), desc="visualcloze", disable=not self.verbose):
            k = int(rng.integers(0, self.max_context + 1))
            which = rng.integers(0, len(tasks), size=self.batch_size)
            conds = sample_images(source, self.batch_size * (k + 1), s, rng).reshape(self.batch_size, k + 1, s, s)
            targets = np.empty_like(conds)
            for ti in np.unique(which):
                targets[which == ti] = apply(tasks[ti], conds[which == ti].reshape(-1, s, s)).reshape(-1, k + 1, s, s)
            truth = torch.from_numpy(np.concatenate([conds, targets], axis=3).reshape(self.batch_size, (k + 1) * s,
                                                                                        2 * s))
            cells = torch.zeros(self.batch_size, k + 1, 2, dtype=torch.bool)
            cells[:, -1, 1] = True
            canvas = truth.clone()
            canvas[:, -s:, s:] = 0.0
            use_text = text is not None and rng.random() >= self.text_dropout
            pred = net(canvas, cells, text[torch.from_numpy(which)] if use_text else None)
            loss = masked_mse(pred, truth, cells, s)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            if step % 50 == 0 or step == self.steps - 1:
                history.append([step, round(loss.item(), 6)])
        net.eval()
        self.net_, self.tasks_, self.history_ = net, tasks, history
        self.train_seconds_ = round(time.perf_counter() - start, 2)
        self.text_dim_ = 0 if text is None else int(text.shape[1])
        return self

    @property
    def n_parameters_(self) -> int:
        check_is_fitted(self, "net_")
        return sum(p.numel() for p in self.net_.parameters())

    def _text(self, prompts, n):
        prompts = check_prompts(prompts, n)
        if prompts is None:
            return None
        if not self.text_dim_:
            raise AnytaskError("this infiller was trained without text prompts (text_backbone=None); call infill "
                               "without prompts or train with text_backbone='minilm'")
        return embed_texts(self.text_backbone, prompts)

    @torch.no_grad()
    def infill(self, grids, prompts=None, *, batch_size: int = 256) -> np.ndarray:
        """The missing panel of each grid ``(N, S, S)`` in [0, 1] (grids of one layout per call)."""
        check_is_fitted(self, "net_")
        canvas, cells, _ = canvases(grids, self.image_size)
        text = self._text(prompts, len(canvas))
        return infill_with(self.net_, canvas, cells, text, self.image_size, batch_size)

    def mse(self, task: str, context_rows: int, *, n: int = 200, seed: int = 0, source="shapes",
            with_text: bool = False) -> float:
        """Mean squared infilling error on ``n`` fresh grids of ``task`` with ``context_rows`` example rows."""
        grids, truth = task_grids(task, n, context_rows, size=self.image_size, source=source, seed=seed)
        pred = self.infill(grids, prompt(task) if with_text else None)
        return float(((pred - truth) ** 2).mean())

    def _get_state(self):
        check_is_fitted(self, "net_")
        extra = {"tasks": self.tasks_, "history": self.history_, "train_seconds": self.train_seconds_,
                 "text_dim": self.text_dim_}
        return extra, dict(self.net_.state_dict())

    def _card_fields(self):
        return {"trained on": f"{len(self.tasks_)} image tasks, {self.steps} steps ({self.train_seconds_} s)",
                "parameters (count)": f"{self.n_parameters_:,}"}

    @classmethod
    def _from_state(cls, params, extra, tensors):
        model = cls(**params)
        model.tasks_, model.history_ = list(extra["tasks"]), extra["history"]
        model.train_seconds_, model.text_dim_ = extra["train_seconds"], int(extra["text_dim"])
        model.net_ = model._new_net(model.text_dim_)
        model.net_.load_state_dict(tensors)
        model.net_.eval()
        return model


@torch.no_grad()
def infill_with(net, canvas, cells, text, image_size: int, batch_size: int = 256) -> np.ndarray:
    """Run ``net`` over canvases in batches and cut out the one masked panel of each, clipped to [0, 1]."""
    if (cells.sum(dim=(1, 2)) != 1).any():
        raise AnytaskError("every grid needs exactly one masked panel")
    s, out = image_size, []
    for i in range(0, len(canvas), batch_size):
        pred = net(canvas[i:i + batch_size], cells[i:i + batch_size],
                   None if text is None else text[i:i + batch_size])
        c = cells[i:i + batch_size]
        for j in range(len(pred)):
            r, col = torch.nonzero(c[j])[0].tolist()
            out.append(pred[j, r * s:(r + 1) * s, col * s:(col + 1) * s].clamp(0, 1).numpy())
    return np.stack(out).astype(np.float32)
