"""Deep prompt tuning of a frozen text encoder, plain or self-regulating (PromptSRC).

Khattak et al. 2023, Self-regulating Prompts: Foundational Model Adaptation without
Forgetting, https://arxiv.org/abs/2307.06948 (card 01). A text-only analogue of the paper's
two CLIP branches on one frozen encoder with two separate prompt sets:

* the **input branch** encodes the text with ``length`` learnable tokens after [CLS];
* the **label branch** encodes each class's label text (``"This text is about {}."``) with its
  own ``length`` tokens.

At layers ``1 .. depth-1`` (default depth: 4, or every layer of a shallower encoder) each branch owns ``length`` new tokens that *replace* the previous
layer's prompt outputs (deep prompts; layers at or past ``depth`` pass them through). Pooling
is the mean over the text's own tokens; a class's score is ``scale * cos(input, label)``, so
any label text, including classes never trained on, can be scored (``with_labels``).

``self_regulating=False`` is plain deep prompting (IVLP/CoOp-style: cross-entropy only).
``self_regulating=True`` adds PromptSRC's three regularisers:

* mutual agreement: ``lambda_input * mean|f_p - f_0|`` and ``lambda_label * mean|g_p - g_0|``
  between prompted and frozen features, plus KL(frozen zero-shot logits || prompted logits)
  summed and divided by the number of logits (not by the batch size);
* textual diversity: the frozen label target ``g_0`` averages the *unnormalised* features of all
  ``templates`` before normalising;
* Gaussian prompt aggregation: the final prompts are the average of every epoch's prompts
  weighted by ``N(epoch; gpa_mean, gpa_std^2)`` normalised to sum 1.

``max_steps`` caps the number of optimiser steps for large training sets (banking77 at 32 shots
is 2,464 texts): training is then cut into ``epochs`` equal segments of steps, each playing the
part of an epoch for the learning-rate schedule and the prompt aggregation.

``prompt_mode="kv"`` makes every layer's prompts prefix prompts (keys and values only, the text's positions
unshifted; Uni-Perceiver's deep prompts, card 19) instead of tokens; ``depth`` then counts from layer 0.

The backbone's weights are never touched (only the prompts train; a test hashes the weights).
Labels must have names: string class labels, or ``descriptions`` mapping each class to its text;
there is no examples-only fallback, and unnamed classes are a clear error at ``fit``.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from torch import Tensor, nn

from anytask.core.io import Pretrained
from anytask.backbones.prompted import PromptedEncoder
from anytask.core.errors import AnytaskError
from anytask.core.validation import check_raw_texts, check_text_labels
from anytask.methods.heads.base import HEADS
from anytask.methods.heads.zero_shot import label_text

TEMPLATES = ("This text is about {}.", "Topic: {}.", "A text about {}.", "{}", "The subject is {}.",
             "Category: {}.", "It is about {}.", "A message about {}.", "This sentence is about {}.",
             "Label: {}.", "Something about {}.", "In short: {}.")

def gpa_weights(epochs: int, mean: float, std: float) -> np.ndarray:
    """Gaussian prompt aggregation weights over epochs 1..E (every epoch counts), summing to 1."""
    e = np.arange(1, epochs + 1, dtype=np.float64)
    w = np.exp(-0.5 * ((e - mean) / std) ** 2)
    if w.sum() == 0:
        raise AnytaskError(f"gpa_mean={mean} with gpa_std={std} gives every one of {epochs} epochs zero weight; "
                           "put gpa_mean within the epochs or widen gpa_std")
    return w / w.sum()


def agreement_kl(frozen_logits: Tensor, logits: Tensor) -> Tensor:
    """KL(softmax(frozen) || softmax(prompted)) summed over all entries, divided by their number."""
    return F.kl_div(F.log_softmax(logits, -1), F.log_softmax(frozen_logits, -1), log_target=True,
                    reduction="sum") / logits.numel()


@HEADS.register("prompt_tuning", reference="PromptSRC, Khattak et al. 2023, https://arxiv.org/abs/2307.06948",
                summary="deep prompts in the frozen encoder, scored against label texts; self_regulating=True "
                        "for PromptSRC (agreement with the frozen model, Gaussian prompt aggregation)",
                input="texts", output="classes", saveable=True, needs_backbone=True, label_names=True)
class PromptTuning(Pretrained, ClassifierMixin, BaseEstimator):
    """Raw texts in (``fit(texts, y)``); only the prompt tokens train."""

    def __init__(self, *, backbone: str = "minilm", descriptions: dict | None = None,
                 templates: tuple | list = TEMPLATES, length: int = 4, depth: int | None = None,
                 self_regulating: bool = False, epochs: int = 10, batch_size: int = 8, lr: float = 2e-3,
                 scale: float = 20.0, lambda_input: float = 10.0, lambda_label: float = 25.0,
                 kl_weight: float = 1.0, gpa_mean: float | None = None, gpa_std: float = 1.0,
                 max_length: int = 64, max_steps: int | None = None, prompt_mode: str = "tokens", seed: int = 0,
                 progress: bool = False, device: str = "auto") -> None:
        self.backbone = backbone
        self.descriptions = descriptions
        self.templates = templates
        self.length = length
        self.depth = depth
        self.self_regulating = self_regulating
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.scale = scale
        self.lambda_input = lambda_input
        self.lambda_label = lambda_label
        self.kl_weight = kl_weight
        self.gpa_mean = gpa_mean
        self.gpa_std = gpa_std
        self.max_length = max_length
        self.max_steps = max_steps
        self.prompt_mode = prompt_mode
        self.seed = seed
        self.progress = progress
        self.device = device

    # -- label texts ----------------------------------------------------------------------------
    def _label_name(self, c) -> str:
        descriptions = {str(k): v for k, v in (self.descriptions or {}).items()}
        if str(c) not in descriptions and not (isinstance(c, (str, np.str_)) and str(c).strip()):
            raise AnytaskError(f"class {c!r} has no name: prompt_tuning scores texts against label names, so pass "
                               "string labels or descriptions={label: 'what it means', ...} (there is no "
                               "examples-only fallback)")
        return label_text(c, descriptions)

    def _label_texts(self, classes, template: str) -> list[str]:
        return [template.format(self._label_name(c)) for c in classes]

    def _encoder(self) -> PromptedEncoder:
        from anytask.backbones import get_backbone

        return PromptedEncoder(get_backbone(self.backbone, device=self.device), self.max_length)

    def _frozen_label_targets(self, enc: PromptedEncoder, classes) -> Tensor:
        with torch.no_grad():
            feats = torch.stack([enc(enc.tokenize(self._label_texts(classes, t)), None) for t in self.templates])
        return F.normalize(feats.mean(0), dim=-1)  # mean of the unnormalised template features, then normalised

    # -- fit --------------------------------------------------------------------------------------
    def _depth(self, enc: PromptedEncoder) -> int:
        return min(4, enc.n_layers) if self.depth is None else self.depth

    def _check(self, enc: PromptedEncoder) -> None:
        n_layers = enc.n_layers
        if not isinstance(self._depth(enc), int) or not 1 <= self._depth(enc) <= n_layers:
            raise AnytaskError(f"depth={self.depth!r}: the backbone has {n_layers} layers, so prompt depth must be "
                               f"1..{n_layers}")
        if not isinstance(self.length, int) or self.length < 0:
            raise AnytaskError(f"length={self.length!r}: the number of prompt tokens must be an integer >= 0")
        if self.prompt_mode not in ("tokens", "kv"):
            raise AnytaskError(f"prompt_mode={self.prompt_mode!r}: use 'tokens' (deep prompts as tokens) or 'kv' "
                               "(prefix prompts: keys and values only, text positions unshifted)")
        if self.prompt_mode == "tokens" and self.max_length + self.length > enc.positions:
            raise AnytaskError(f"max_length={self.max_length} plus {self.length} prompt tokens exceeds the backbone's "
                               f"{enc.positions} positions; lower max_length (longer texts are truncated)")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            raise AnytaskError(f"max_steps={self.max_steps!r}: pass a positive integer, or None for every epoch in full")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise AnytaskError(f"epochs={self.epochs!r}: pass a positive integer")
        templates = list(self.templates)
        if not templates or any("{}" not in t for t in templates):
            raise AnytaskError(f"templates must each contain '{{}}' for the label, got {templates!r}")

    def fit(self, X, y):
        texts = check_raw_texts(X, "prompt_tuning")
        classes, y_idx = check_text_labels(texts, y)
        self.classes_ = classes
        for c in classes:
            self._label_name(c)  # unnamed classes fail before any training
        enc = self._encoder()
        self._check(enc)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        dim = enc.dim
        prompts = nn.ParameterDict({  # drawn on the CPU: the same seed gives the same start on every device
            "input": nn.Parameter((0.02 * torch.randn(self._depth(enc), self.length, dim)).to(enc.device)),
            "label": nn.Parameter((0.02 * torch.randn(self._depth(enc), self.length, dim)).to(enc.device)),
        })
        label_enc = enc.tokenize(self._label_texts(classes, self.templates[0]))
        regulate, kv = self.self_regulating, self.prompt_mode == "kv"
        if regulate:
            teacher = self._frozen_label_targets(enc, classes)
            with torch.no_grad():
                frozen = torch.cat([F.normalize(enc(enc.tokenize(texts[i:i + 64]), None), dim=-1)
                                    for i in range(0, len(texts), 64)])
        targets = torch.as_tensor(y_idx, dtype=torch.long, device=enc.device)
        steps_per_epoch = math.ceil(len(texts) / self.batch_size)
        total = self.epochs * steps_per_epoch
        if self.max_steps is not None:
            total = min(total, self.max_steps)
        # segment e ("epoch" e) ends at step ends[e]; without max_steps these are the true epochs
        ends = [round((e + 1) * total / self.epochs) for e in range(self.epochs)]
        opt = torch.optim.AdamW(prompts.parameters(), lr=self.lr, weight_decay=0.0)
        weights = gpa_weights(self.epochs, self.gpa_mean if self.gpa_mean is not None else 0.75 * self.epochs,
                              self.gpa_std) if regulate else None
        aggregate = {k: torch.zeros_like(v) for k, v in prompts.items()}
        self.history_, start, step = [], time.perf_counter(), 0
        batches = _batches(len(texts), self.batch_size, rng)
        from tqdm.auto import tqdm

        for epoch in tqdm(range(self.epochs), desc="prompt_tuning", disable=not self.progress):
            parts = {}
            while step < ends[epoch]:
                idx = next(batches)
                for g in opt.param_groups:
                    g["lr"] = self.lr * 0.5 * (1 + math.cos(math.pi * step / total))
                step += 1
                f = F.normalize(enc(enc.tokenize([texts[i] for i in idx]), prompts["input"], kv_only=kv), dim=-1)
                g_ = F.normalize(enc(label_enc, prompts["label"], kv_only=kv), dim=-1)
                logits = self.scale * f @ g_.T
                loss = F.cross_entropy(logits, targets[idx])
                parts = {"loss": loss.item(), "ce": loss.item()}
                if regulate:
                    f0 = frozen[idx]
                    l1 = self.lambda_input * F.l1_loss(f, f0) + self.lambda_label * F.l1_loss(g_, teacher)
                    kl = self.kl_weight * agreement_kl(self.scale * f0 @ teacher.T, logits)
                    loss = loss + l1 + kl
                    parts.update(loss=loss.item(), l1=l1.item(), kl=kl.item())
                opt.zero_grad()
                loss.backward()
                opt.step()
            if regulate:
                for k, v in prompts.items():
                    aggregate[k] += float(weights[epoch]) * v.detach()
            self.history_.append({"epoch": epoch + 1, "step": step, **{k: round(v, 5) for k, v in parts.items()},
                                  "seconds": round(time.perf_counter() - start, 2)})
        final = aggregate if regulate else {k: v.detach().clone() for k, v in prompts.items()}
        self.input_prompts_, self.label_prompts_ = final["input"].cpu(), final["label"].cpu()
        self.n_steps_ = step
        return self

    # -- predict ----------------------------------------------------------------------------------
    def with_labels(self, labels) -> "PromptTuning":
        """A copy that scores the same prompted inputs against other classes (e.g. unseen ones)."""
        check_is_fitted(self, "input_prompts_")
        other = copy.copy(self)
        other.classes_ = np.unique(np.asarray(labels))
        for c in other.classes_:
            other._label_name(c)
        return other

    @torch.no_grad()
    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self, "input_prompts_")
        texts = check_raw_texts(X, "prompt_tuning")
        enc = self._encoder()
        inputs, labels = self.input_prompts_.to(enc.device), self.label_prompts_.to(enc.device)
        kv = getattr(self, "prompt_mode", "tokens") == "kv"
        g = F.normalize(enc(enc.tokenize(self._label_texts(self.classes_, self.templates[0])), labels, kv_only=kv),
                        dim=-1)
        out = [self.scale * F.normalize(enc(enc.tokenize(texts[i:i + 64]), inputs, kv_only=kv), dim=-1) @ g.T
               for i in range(0, len(texts), 64)]
        return torch.cat(out).double().cpu().numpy()

    def predict_proba(self, X) -> np.ndarray:
        return torch.softmax(torch.from_numpy(self.decision_function(X)), -1).numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]

    # -- persistence (anytask.core.io) -------------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict[str, Tensor]]:
        check_is_fitted(self, "input_prompts_")
        return {"classes": self.classes_.tolist()}, {"input_prompts": self.input_prompts_,
                                                     "label_prompts": self.label_prompts_}

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict[str, Tensor]) -> "PromptTuning":
        head = cls(**{**params, "device": "auto"})  # the saving machine's device may not exist here
        classes = extra["classes"]
        head.classes_ = np.asarray(classes, dtype=object if any(isinstance(c, str) for c in classes) else None)
        try:
            head.input_prompts_, head.label_prompts_ = tensors["input_prompts"], tensors["label_prompts"]
        except KeyError as e:
            raise AnytaskError(f"corrupted saved PromptTuning: tensor {e} is missing") from e
        return head


def _batches(n: int, size: int, rng: np.random.Generator):
    """Index batches of at most ``size`` from successive shuffles of ``range(n)``, forever."""
    while True:
        order = rng.permutation(n)
        for b in range(0, n, size):
            yield order[b:b + size]
