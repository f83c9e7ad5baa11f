"""IC-LoRA: in-context LoRA for a pre-trained infiller (Huang et al. 2024, "In-Context LoRA for Diffusion
Transformers", https://arxiv.org/abs/2410.23775; official code ali-vilab/In-Context-LoRA).

The related images of one example are concatenated into one canvas (here one row ``[condition, target]``), the
pre-trained infiller is frozen, and a task-specific rank-``rank`` LoRA on its attention projections is tuned on a
few dozen canvases of a *new* relation with the base model's own loss (masked regression of the last panel; the
conditional variant of the paper). PEFT (the maintained library) injects the adapters into a deep copy, so the
infiller passed in stays bit-identical; ``merged()`` folds the adapters into a plain ``PatchInfiller``.

``mode="full"`` fine-tunes every weight of the copy and ``mode="none"`` does not tune: the baselines the card asks
for. Settings fixed before any run: LoRA learning rate 2e-3, full fine-tuning 3e-4 (the usual tenfold gap
between the two), 200 steps of 16 canvases, AdamW; the card's caption is the relation's text prompt, read only
when the infiller was trained with text.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.methods.generative.base import ADAPTERS, canvases, check_prompts, masked_mse
from anytask.methods.generative.model import PatchInfiller
from anytask.methods.generative.visualcloze import GridInfiller, embed_texts, infill_with

MODES = ("lora", "full", "none")
LORA_LR, FULL_LR = 2e-3, 3e-4


def _complete(grids, image_size: int):
    """Complete canvases (no missing panel) → the canvas tensor with the last panel masked, and the truth."""
    if grids is None or len(grids) == 0:
        raise AnytaskError("no canvases given; pass a list of canvases, each rows of panels with the last panel the "
                           "one to learn to infill")
    if any(p is None for g in grids for r in g for p in r):
        raise AnytaskError("training canvases must be complete (no None panel): the last panel is the target")
    masked = [[list(r) for r in g] for g in grids]
    truth = [[list(r) for r in g] for g in grids]
    for g in masked:
        g[-1][-1] = None
    canvas, cells, _ = canvases(masked, image_size)
    last = np.stack([np.asarray(g[-1][-1], np.float32) for g in truth])
    full = canvas.clone()
    s = image_size
    full[:, -s:, -s:] = torch.from_numpy(last)
    return canvas, cells, full


@ADAPTERS.register("ic-lora", reference="Huang et al. 2024, https://arxiv.org/abs/2410.23775", saveable=True,
                   input="images", output="images", summary="rank-4 LoRA on a frozen infiller's attention (PEFT)")
class ICLoRA(Pretrained, BaseEstimator):
    """A copy of a trained ``GridInfiller`` tuned on a few canvases of a new relation (LoRA, full, or none)."""

    def __init__(self, base: GridInfiller | None = None, *, mode: str = "lora", rank: int = 4, alpha: float = 4.0,
                 targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj"), steps: int = 200,
                 batch_size: int = 16, lr: float | None = None, seed: int = 0) -> None:
        self.base, self.mode, self.rank, self.alpha, self.targets = base, mode, rank, alpha, targets
        self.steps, self.batch_size, self.lr, self.seed = steps, batch_size, lr, seed

    def _check(self) -> GridInfiller:
        if self.mode not in MODES:
            raise AnytaskError(f"mode {self.mode!r}: use one of {', '.join(MODES)}")
        if not isinstance(self.base, GridInfiller) or not hasattr(self.base, "net_"):
            raise AnytaskError("IC-LoRA needs a trained GridInfiller as `base` (train one with GridInfiller().fit() "
                               "or load one with GridInfiller.from_pretrained)")
        if self.rank < 1 or self.steps < 0 or self.batch_size < 1:
            raise AnytaskError(f"rank={self.rank}, steps={self.steps}, batch_size={self.batch_size}: give rank >= 1, "
                               "steps >= 0 and a batch of at least one canvas")
        return self.base

    def _wrap(self, net: PatchInfiller):
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise AnytaskError("IC-LoRA's adapters need PEFT: pip install 'anytask[lm]' (or mode='full')") from None

        names = {n.rsplit(".", 1)[-1] for n, m in net.named_modules() if isinstance(m, torch.nn.Linear)}
        unknown = [t for t in self.targets if t not in names]
        if unknown:
            raise AnytaskError(f"LoRA targets {unknown} are not linear layers of the infiller; choose from "
                               f"{', '.join(sorted(names))}")
        config = LoraConfig(r=int(self.rank), lora_alpha=float(self.alpha), target_modules=list(self.targets),
                            lora_dropout=0.0, init_lora_weights=True)
        return get_peft_model(net, config)

    def fit(self, grids, caption: str | None = None) -> "ICLoRA":
        base = self._check()
        s = base.image_size
        canvas, cells, truth = _complete(grids, s)
        text = None
        if caption is not None and base.text_dim_:
            text = embed_texts(base.text_backbone, check_prompts(caption, 1)).expand(len(canvas), -1)
        self.caption_ = caption
        torch.manual_seed(self.seed)
        net = copy.deepcopy(base.net_)
        if self.mode == "lora":
            net = self._wrap(net)
        params = [p for p in net.parameters() if p.requires_grad] if self.mode != "none" else []
        self.trainable_ = int(sum(p.numel() for p in params))
        self.history_, start = [], time.perf_counter()
        if self.mode != "none" and self.steps:
            lr = self.lr if self.lr is not None else (LORA_LR if self.mode == "lora" else FULL_LR)
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
            rng = np.random.default_rng(self.seed)
            net.train()
            for step in range(self.steps):
                rows = torch.from_numpy(rng.choice(len(canvas), size=min(self.batch_size, len(canvas)),
                                                   replace=False))
                pred = net(canvas[rows], cells[rows], None if text is None else text[rows])
                loss = masked_mse(pred, truth[rows], cells[rows], s)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if step % 20 == 0 or step == self.steps - 1:
                    self.history_.append([step, round(loss.item(), 6)])
        net.eval()
        self.net_ = net
        self.train_seconds_ = round(time.perf_counter() - start, 2)
        return self

    def merged(self) -> PatchInfiller:
        """A plain ``PatchInfiller`` with the adapters folded in (a new object; this one keeps its adapters)."""
        check_is_fitted(self, "net_")
        net = copy.deepcopy(self.net_)
        return net.merge_and_unload() if hasattr(net, "merge_and_unload") else net  # a loaded one is merged

    @torch.no_grad()
    def infill(self, grids, prompts=None) -> np.ndarray:
        """The missing panel of each grid, as ``GridInfiller.infill`` (the caption is used when ``prompts`` is
        None and the infiller reads text)."""
        check_is_fitted(self, "net_")
        s = self.base_image_size_ if hasattr(self, "base_image_size_") else self.base.image_size
        canvas, cells, _ = canvases(grids, s)
        text = None
        prompts = check_prompts(prompts, len(canvas))
        text_dim, backbone = self._text_setup()
        if prompts is None and self.caption_ is not None and text_dim:
            prompts = [self.caption_] * len(canvas)
        if prompts is not None and text_dim:
            text = embed_texts(backbone, prompts)
        return infill_with(self.net_, canvas, cells, text, s)

    def _text_setup(self):
        if hasattr(self, "saved_base_"):
            return self.saved_base_["text_dim"], self.saved_base_["params"]["text_backbone"]
        return self.base.text_dim_, self.base.text_backbone

    # -- saving: the merged weights and the base's settings, so the folder loads without the base ----------------
    def _saved_params(self):
        params = self.get_params(deep=False)
        params.pop("base")
        params["targets"] = list(params["targets"])
        return params

    def _get_state(self):
        check_is_fitted(self, "net_")
        text_dim, _ = self._text_setup()
        base_params = self.saved_base_["params"] if hasattr(self, "saved_base_") else \
            self.base.get_params(deep=False)
        extra = {"base": {"params": base_params, "text_dim": text_dim}, "caption": self.caption_,
                 "trainable": self.trainable_, "history": self.history_, "train_seconds": self.train_seconds_}
        return extra, dict(self.merged().state_dict())

    @classmethod
    def _from_state(cls, params, extra, tensors):
        params = dict(params, targets=tuple(params["targets"]))
        model = cls(**params)
        model.saved_base_ = extra["base"]
        shell = GridInfiller(**extra["base"]["params"])
        model.net_ = shell._new_net(int(extra["base"]["text_dim"]))
        model.net_.load_state_dict(tensors)
        model.net_.eval()
        model.base_image_size_ = shell.image_size
        model.caption_, model.trainable_ = extra["caption"], int(extra["trainable"])
        model.history_, model.train_seconds_ = extra["history"], extra["train_seconds"]
        return model
