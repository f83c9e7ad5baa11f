"""``auto``: choose among the fast heads, per task, by cross-validation on the support set alone.

No single head wins every task: the linear probe is strong with many examples, label names carry
much of the signal with few, the in-context module sits in between. ``auto`` scores a short list
of candidates (``CANDIDATES``: the probe and the in-context module, each alone and each given the
embedded label names as weighted examples, their product of experts, and ``zero_shot``) by
stratified k-fold cross-validation **inside the labelled examples** (k = min(``folds``, smallest
class)), refits the most accurate on all of them (ties go to the lower log loss), and
temperature-scales its probabilities on the same out-of-fold scores (Guo et al. 2017,
https://arxiv.org/abs/1706.04599). What it tried, their scores, what it chose and why are kept in
``report_`` and saved in the folder's config.

Label names: the classes' names (``_`` read as a space, or ``descriptions``) embedded by the
backbone, as the ``zero_shot`` head does. Classes without names (integer labels and no
``descriptions``) leave the name-based candidates out, and ``report_`` says so.

Fallbacks, each recorded in ``report_["reason"]``: a class with a single example leaves nothing to
hold out, so no cross-validation is possible: the default candidate (the probe blended with the
names, or the plain probe without names) is fitted as is. ``time_budget`` (seconds) bounds the
search: candidates are tried cheapest first and the search stops when the budget is spent; the
first candidate always completes, so even a tiny budget gives a fitted head (the plain probe).
"""

from __future__ import annotations

import time
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval
from torch import Tensor

from anytask.core.errors import AnytaskError
from anytask.methods.heads.base import HEADS, BaseHead

# name -> (components, uses label names). A component is (head, params, weight of its log-probabilities);
# blends add weighted log-probabilities (a product of experts). Cheapest first: the search stops there
# when the time budget is spent. NAMES_WEIGHT (each label name counts as 8 examples) was chosen on held-out
# rows of the shared tasks' training splits (docs/results/heads.md), not on their test splits.
NAMES_WEIGHT = 8
CANDIDATES: dict[str, tuple[list[tuple[str, dict, float]], bool]] = {
    "linear_probe": ([("linear_probe", {"calibration": None}, 1.0)], False),
    "linear_probe+names": ([("linear_probe", {"calibration": None, "label_prior": NAMES_WEIGHT}, 1.0)], True),
    "zero_shot": ([("zero_shot", {}, 1.0)], True),
    "icl": ([("icl", {"label_prior": 0}, 1.0)], False),
    "icl+names": ([("icl", {"label_prior": NAMES_WEIGHT}, 1.0)], True),
    "linear_probe+icl+names": ([("linear_probe", {"calibration": None, "label_prior": NAMES_WEIGHT}, 0.5),
                                ("icl", {"label_prior": NAMES_WEIGHT}, 0.5)], True),
}
DEFAULT_WITH_NAMES, DEFAULT_WITHOUT_NAMES = "linear_probe+names", "linear_probe"


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


@HEADS.register("auto", reference="model selection by cross-validation on the support set; temperature scaling, "
                "Guo et al. 2017, https://arxiv.org/abs/1706.04599",
                summary="chooses per task among the probe, label names, the in-context module and their blends "
                        "by cross-validation on the labelled examples; calibrated; records its choice",
                output="classes", saveable=True, needs_backbone=True, label_names=True, embeds_text=True)
class AutoHead(BaseHead):
    """Cross-validated choice among fast heads and label-name blends over frozen features."""

    _parameter_constraints = {"candidates": [list, tuple, None], "time_budget": [Interval(Real, 0, None,
                                                                                             closed="neither")],
                              "folds": [Interval(Integral, 2, None, closed="left")], "descriptions": [dict, None],
                              "backbone": [str], "cache_dir": [str, None], "seed": [Integral]}

    def __init__(self, *, candidates: list | tuple | None = None, time_budget: float = 30.0, folds: int = 5,
                 descriptions: dict | None = None, backbone: str = "minilm", cache_dir: str | None = None,
                 seed: int = 0) -> None:
        self.candidates = candidates
        self.time_budget = time_budget
        self.folds = folds
        self.descriptions = descriptions
        self.backbone = backbone
        self.cache_dir = cache_dir
        self.seed = seed

    # -- the pieces --------------------------------------------------------------------------------
    def _component(self, name: str, params: dict):
        from anytask.methods.heads import HEADS, create_head_for

        if "descriptions" in HEADS.get(name)().get_params(deep=False):
            params = {"descriptions": self.descriptions, **params}
        return create_head_for(name, self.backbone, self.cache_dir, **params)

    def _scores(self, parts: list, X: np.ndarray) -> np.ndarray:
        """Blend of the components' log-probabilities ``(N, C)`` (not yet temperature-scaled)."""
        return sum(w * np.log(np.clip(head.predict_proba(X), 1e-300, None)) for head, w in parts)

    def _fit_parts(self, spec, X: np.ndarray, y: np.ndarray) -> list:
        parts = []
        for name, params, w in spec:
            parts.append((self._component(name, params).fit(X, y), float(w)))
        return parts

    # -- fit -----------------------------------------------------------------------------------------
    def _fit(self, X: Tensor, y: Tensor) -> None:
        start = time.perf_counter()
        Xn, yn = X.numpy(), y.numpy()
        labels = self.classes_[yn]
        from anytask.methods.heads.zero_shot import has_names

        named = has_names(self.classes_, self.descriptions)
        wanted = list(self.candidates) if self.candidates is not None else list(CANDIDATES)
        unknown = [c for c in wanted if c not in CANDIDATES]
        if unknown or not wanted:
            raise AnytaskError(f"unknown auto candidate(s) {unknown or wanted}; choose from {', '.join(CANDIDATES)}")
        report: dict = {"label_names": named, "skipped": {}, "cv": {}}
        if not named:
            report["skipped"].update({c: "the classes have no names (integer labels and no descriptions)"
                                      for c in wanted if CANDIDATES[c][1]})
            wanted = [c for c in wanted if not CANDIDATES[c][1]]
            if not wanted:
                raise AnytaskError("every auto candidate asked for needs label names, and the classes have none: "
                                   "pass descriptions={label: 'its meaning'} or add linear_probe to candidates")
        smallest = int(np.bincount(yn, minlength=len(self.classes_)).min())
        folds = min(int(self.folds), smallest)
        oof: dict[str, np.ndarray] = {}
        if folds < 2:
            default = DEFAULT_WITH_NAMES if named and DEFAULT_WITH_NAMES in wanted else wanted[0]
            report["reason"] = (f"a class has {smallest} example(s), so nothing can be held out for cross-validation; "
                                f"fitted the default {default!r}")
            chosen = default
        else:
            from sklearn.model_selection import StratifiedKFold

            splits = list(StratifiedKFold(folds, shuffle=True, random_state=self.seed).split(Xn, yn))
            for name in wanted:
                if oof and time.perf_counter() - start > self.time_budget:
                    report["skipped"][name] = f"time budget of {self.time_budget} s spent"
                    continue
                t0 = time.perf_counter()
                scores = np.zeros((len(yn), len(self.classes_)))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    for train, held in splits:
                        parts = self._fit_parts(CANDIDATES[name][0], Xn[train], labels[train])
                        scores[held] = self._scores(parts, Xn[held])
                oof[name] = scores
                logp = _log_softmax(scores)
                report["cv"][name] = {"accuracy": round(float((scores.argmax(1) == yn).mean()), 4),
                                      "log_loss": round(float(-logp[np.arange(len(yn)), yn].mean()), 4),
                                      "seconds": round(time.perf_counter() - t0, 3)}
            # the most accurate out of fold; ties (common with few examples) go to the lower log loss
            chosen = max(report["cv"], key=lambda c: (report["cv"][c]["accuracy"], -report["cv"][c]["log_loss"]))
            report["reason"] = (f"highest {folds}-fold cross-validated accuracy on the {len(yn)} labelled examples "
                                f"({report['cv'][chosen]['accuracy']:.3f})")
        report.update(chosen=chosen, folds=folds if folds >= 2 else 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.parts_ = self._fit_parts(CANDIDATES[chosen][0], Xn, labels)
        self.temperature_ = self._temperature(oof[chosen], yn) if chosen in oof else 1.0
        report["temperature"] = round(self.temperature_, 4)
        report["seconds"] = round(time.perf_counter() - start, 3)
        self.chosen_, self.report_ = chosen, report

    @staticmethod
    def _temperature(scores: np.ndarray, y: np.ndarray) -> float:
        """T minimising the out-of-fold cross-entropy against Platt's smoothed targets (Platt 1999): with
        n examples over C classes the true class's target is 1 - eps, eps = 1 / (n / C + 2), so that a
        perfectly separated support set does not drive T to 0 and the probabilities to 0 or 1."""
        from scipy.optimize import minimize_scalar

        n, C = scores.shape
        eps = 1.0 / (n / C + 2)
        target = np.full((n, C), eps / (C - 1))
        target[np.arange(n), y] = 1 - eps

        def nll(log_t: float) -> float:
            return float(-(target * _log_softmax(scores / np.exp(log_t))).sum(1).mean())

        return float(np.exp(minimize_scalar(nll, bounds=(np.log(1e-2), np.log(1e2)), method="bounded").x))

    def _logits(self, X: Tensor) -> Tensor:
        return torch.from_numpy(self._scores(self.parts_, X.double().numpy()) / self.temperature_)

    # -- persistence ------------------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict[str, Tensor]]:
        extra, tensors = super()._get_state()
        parts = []
        for i, (head, w) in enumerate(self.parts_):
            part_extra, part_tensors = head._get_state()
            parts.append({"class": f"{type(head).__module__}:{type(head).__qualname__}",
                          "params": head.get_params(deep=False), "extra": part_extra, "weight": w})
            tensors.update({f"part{i}.{k}": v for k, v in part_tensors.items()})
        extra.update(parts=parts, chosen=self.chosen_, report=self.report_)
        return extra, tensors

    def _tensors(self) -> dict[str, Tensor]:
        return {"temperature": torch.tensor(self.temperature_, dtype=torch.float64)}

    def _load_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.temperature_ = float(tensors["temperature"])

    def _load_extra(self, extra: dict, tensors: dict[str, Tensor]) -> None:
        from anytask.core.io import resolve_class

        parts = []
        for i, part in enumerate(extra.get("parts") or []):
            part_cls = resolve_class(part["class"])
            own = {k[len(f"part{i}."):]: v for k, v in tensors.items() if k.startswith(f"part{i}.")}
            parts.append((part_cls._from_state(part["params"], part["extra"], own), float(part["weight"])))
        if not parts:
            raise AnytaskError("corrupted saved AutoHead: it lists no fitted parts")
        self.parts_, self.chosen_, self.report_ = parts, extra.get("chosen"), extra.get("report", {})
