"""Few-shot prompting of a frozen causal LM, the GPT-3 protocol, with contextual calibration.

Brown et al. 2020, Language Models are Few-Shot Learners, https://arxiv.org/abs/2005.14165
(card 21); contextual calibration from Zhao et al. 2021, Calibrate Before Use,
https://arxiv.org/abs/2102.09690.

``fit(texts, y)`` keeps the labelled texts as the pool of demonstrations (nothing is trained).
A test text is classified by writing ``k`` demonstrations and the text into a prompt::

    [instruction\\n\\n]  template(demo_1) + verbalizer(label_1) \\n\\n ... template(text)

and comparing the log-likelihood of each label's verbalizer (`` positive``) after it:

* ``scoring="sum"``: log p(verbalizer | prompt);
* ``"per_token"``: divided by the verbalizer's number of tokens (GPT-3's default);
* ``"per_byte"``: divided by its number of UTF-8 bytes (lm-evaluation-harness ``acc_norm``);
* ``"unconditional"``: minus log p(verbalizer | start + the template's answer cue), GPT-3's
  normalisation for answers whose prior differs a lot.

``calibration="contextual"`` estimates the label bias of the prompt from content-free inputs
(``"N/A"``, ``""``, ``"[MASK]"`` in place of the text): with ``p_cf`` their mean normalised label
distribution, scores become ``softmax(s) / p_cf`` (Zhao et al.'s W = diag(p_cf)^-1, b = 0).
``calibration="fitted"`` learns that affine map instead (a multinomial logistic regression, C = 1,
on the label log-probabilities) from the labelled texts that are not demonstrations in the prompt,
each scored with the same prompt: the examples then fix the label bias whatever K is (Zhao et al.
fit W, b this way as an upper bound; with ``demos="per_example"`` it falls back to contextual).

Demonstrations: ``demos="fixed"`` draws one seeded set at ``fit`` and prompts every text with it
(Zhao et al.'s protocol; the demonstrations' attention cache is computed once per call);
``demos="per_example"`` draws a fresh set for each text (GPT-3's protocol), seeded by the text
itself so a text gets the same answer in any batch, and never uses the text as its own
demonstration. ``selection="balanced"`` spreads the ``k`` demonstrations evenly over classes,
``"random"`` draws them uniformly, ``"similar"`` (with ``demos="per_example"``) takes the ``k`` labelled
texts nearest to the text in the ``retriever`` encoder's embedding space (KATE: Liu et al. 2022, What
Makes Good In-Context Examples for GPT-3?, https://arxiv.org/abs/2101.06804), the nearest one last,
next to the text; ``order`` (an int) re-shuffles a fixed set's order (the
benchmark's spread over orders). Demonstration texts longer than ``max_demo_chars`` are cut at a
word boundary; when the prompt would not fit the context window, demonstrations are dropped,
first ones first, never the text being classified (a text too long on its own is an error).

``hso_steps=n`` (with ``demos="fixed"``) applies hidden-state optimisation (``hso.py``, card 35)
to the prompt: n Adam steps (``hso_lr``) on the demonstrations' cached keys and values, lowering
their likelihood loss, before any text is read against them. Texts scored with fewer
demonstrations (a long query) read the plain cache.
"""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.core.validation import check_raw_texts, check_text_labels
from anytask.methods.heads.base import HEADS

SCORINGS = ("sum", "per_token", "per_byte", "unconditional")
CONTENT_FREE = ("N/A", "", "[MASK]")


def choice_scores(sums: Tensor, n_tokens: Tensor, n_bytes: Tensor, unconditional: Tensor, mode: str) -> Tensor:
    """Scores ``(..., C)`` from summed log-likelihoods ``(..., C)`` under one normalisation."""
    if mode == "sum":
        return sums
    if mode == "per_token":
        return sums / n_tokens.to(sums.dtype)
    if mode == "per_byte":
        return sums / n_bytes.to(sums.dtype)
    if mode == "unconditional":
        return sums - unconditional
    raise AnytaskError(f"unknown scoring {mode!r}; use one of {', '.join(SCORINGS)}")


def calibrate(scores: Tensor, content_free_scores: Tensor | None) -> Tensor:
    """Log-probabilities over the choices, contextually calibrated when content-free scores
    ``(..., n_cf, C)`` are given: ``log softmax(s) - log mean_cf softmax(s_cf)``, renormalised."""
    logp = torch.log_softmax(scores, dim=-1)
    if content_free_scores is None:
        return logp
    p_cf = torch.softmax(content_free_scores, dim=-1).mean(-2)
    return torch.log_softmax(logp - torch.log(p_cf.clamp_min(1e-12)), dim=-1)


def _cut(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    cut = text[:limit]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + " ..."


@HEADS.register("lm_prompt", reference="GPT-3 few-shot prompting, Brown et al. 2020, https://arxiv.org/abs/2005.14165; "
                "contextual calibration, Zhao et al. 2021, https://arxiv.org/abs/2102.09690",
                summary="k demonstrations in a causal LM's prompt, label verbalizers scored by log-likelihood, "
                        "contextual calibration; needs a causal LM backbone (smollm2)",
                input="texts", output="classes", saveable=True, needs_backbone=True, label_names=True)
class LMPromptHead(Pretrained, ClassifierMixin, BaseEstimator):
    """Raw texts in; the labelled texts are the demonstrations, the label names the answers."""

    def __init__(self, *, backbone: str = "smollm2", k: int = 4, template: str = "Text: {text}\nLabel:",
                 instruction: str = "", separator: str = "\n\n", verbalizers: dict | None = None,
                 scoring: str = "sum", calibration: str | None = "contextual",
                 content_free: tuple = CONTENT_FREE, demos: str = "fixed", selection: str = "balanced",
                 order: int | None = None, max_demo_chars: int | None = 300, hso_steps: int = 0,
                 hso_lr: float = 1e-2, batch_size: int = 16, seed: int = 0, retriever: str = "minilm") -> None:
        self.backbone = backbone
        self.k = k
        self.template = template
        self.instruction = instruction
        self.separator = separator
        self.verbalizers = verbalizers
        self.scoring = scoring
        self.calibration = calibration
        self.content_free = content_free
        self.demos = demos
        self.selection = selection
        self.order = order
        self.max_demo_chars = max_demo_chars
        self.hso_steps = hso_steps
        self.hso_lr = hso_lr
        self.batch_size = batch_size
        self.seed = seed
        self.retriever = retriever

    # -- checks -----------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if not isinstance(self.k, (int, np.integer)) or isinstance(self.k, bool) or self.k < 0:
            raise AnytaskError(f"k={self.k!r}: pass the number of demonstrations, an integer >= 0")
        if not isinstance(self.template, str) or self.template.count("{text}") != 1:
            raise AnytaskError(f"template={self.template!r} must contain '{{text}}' exactly once, e.g. "
                               "'Review: {text}\\nSentiment:'")
        if self.scoring not in SCORINGS:
            raise AnytaskError(f"scoring={self.scoring!r}: use one of {', '.join(SCORINGS)}")
        if self.calibration not in (None, "none", "contextual", "fitted"):
            raise AnytaskError(f"calibration={self.calibration!r}: use 'contextual', 'fitted' or None")
        if self.demos not in ("fixed", "per_example"):
            raise AnytaskError(f"demos={self.demos!r}: use 'fixed' (one seeded set) or 'per_example' (GPT-3)")
        if self.selection not in ("balanced", "random", "similar"):
            raise AnytaskError(f"selection={self.selection!r}: use 'balanced', 'random' or 'similar'")
        if self.selection == "similar" and self.demos != "per_example":
            raise AnytaskError("selection='similar' picks each text's own nearest demonstrations: use it with "
                               "demos='per_example'")
        if not isinstance(self.hso_steps, (int, np.integer)) or isinstance(self.hso_steps, bool) or self.hso_steps < 0:
            raise AnytaskError(f"hso_steps={self.hso_steps!r}: pass an integer >= 0")
        if self.hso_steps and self.demos != "fixed":
            raise AnytaskError("hso_steps needs demos='fixed': the optimised cache belongs to one prompt")
        if self.calibration == "contextual" and not self.content_free:
            raise AnytaskError("contextual calibration needs at least one content-free input, e.g. ('N/A',)")

    def _lm(self):
        from anytask.backbones import get_backbone, is_causal

        lm = get_backbone(self.backbone)
        if not is_causal(lm):
            raise AnytaskError(f"lm_prompt needs a causal language model backbone, and {self.backbone!r} is an "
                               "encoder: use backbone='smollm2' (anytask bench --backbone smollm2), "
                               "'hf-causal:<folder>' or 'tiny-causal'")
        return lm

    def _verbalize(self, classes: np.ndarray) -> list[str]:
        given = self.verbalizers
        out = []
        for c in classes:
            if given is not None:
                key = c if c in given else str(c)
                if key not in given:
                    raise AnytaskError(f"verbalizers has no entry for class {c!r}; give one answer text per class")
                word = given[key]
            elif isinstance(c, str):
                word = " " + c.replace("_", " ")
            else:
                raise AnytaskError(f"class {c!r} has no name to answer with: pass string labels or verbalizers="
                                   "{class: ' word'}")
            if not isinstance(word, str) or not word.strip():
                raise AnytaskError(f"the verbalizer of class {c!r} is empty; give a word such as ' positive'")
            out.append(word)
        if len(set(out)) < len(out):
            raise AnytaskError(f"two classes share a verbalizer ({out}); give each class its own answer text")
        return out

    # -- prompts ----------------------------------------------------------------------------------
    def _demo_indices(self, rng: np.random.Generator, exclude: str | None = None) -> list[int]:
        pool = [i for i, t in enumerate(self.texts_) if t != exclude] if exclude is not None else \
            list(range(len(self.texts_)))
        k = min(int(self.k), len(pool))
        if k == 0:
            return []
        if self.selection == "random":
            return [pool[i] for i in rng.permutation(len(pool))[:k]]
        by_class = {c: [i for i in pool if self.y_[i] == c] for c in range(len(self.classes_))}
        queues = {c: [idx[j] for j in rng.permutation(len(idx))] for c, idx in by_class.items() if idx}
        picked: list[int] = []
        while len(picked) < k:
            for c in rng.permutation(list(queues)):
                if queues[c] and len(picked) < k:
                    picked.append(queues[c].pop())
        return [picked[i] for i in rng.permutation(len(picked))]

    def _context(self, demo_idx: list[int]) -> str:
        parts = [self.instruction] if self.instruction else []
        for i in demo_idx:
            text = _cut(self.texts_[i], self.max_demo_chars)
            parts.append(self.template.format(text=text) + self.verbalizers_[self.y_[i]])
        return self.separator.join(parts) + (self.separator if parts else "")

    def _fitting_context(self, lm, demo_idx: list[int], query_tokens: int, context_tokens: dict) -> tuple[str, int]:
        """The context with as many demonstrations as fit beside a query of ``query_tokens`` tokens (first
        ones dropped), and how many were dropped; ``context_tokens`` memoises each context's length, so a
        prompt is tokenized once however many texts it serves."""
        answer = max(len(lm.encode(v)) for v in self.verbalizers_)
        if query_tokens + answer + 1 > lm.config.max_length:
            raise AnytaskError(f"a text is {query_tokens} tokens with its template, too long for {lm.config.name}'s "
                               f"context window of {lm.config.max_length}; shorten it (the query is never cut)")
        dropped = 0
        while True:
            if dropped not in context_tokens:
                context = self._context(demo_idx[dropped:])
                context_tokens[dropped] = (context, len(lm.encode(context, start=True)))
            context, n = context_tokens[dropped]
            if n + query_tokens + answer + 2 <= lm.config.max_length:
                return context, dropped
            dropped += 1

    # -- fit --------------------------------------------------------------------------------------
    def fit(self, X, y, *, raw_scores: dict | None = None):
        """Keep the labelled texts as demonstrations (and fit the calibration map when asked).
        ``raw_scores``: the ``raw_scores`` of the labelled texts outside the prompt (all of ``X`` when
        ``k = 0``), already computed by a head of the same backbone, template and verbalizers; the fitted
        calibration reuses them instead of scoring those texts again (``auto`` does this)."""
        self._check_params()
        texts = check_raw_texts(X, "the lm_prompt head")
        classes, y_idx = check_text_labels(texts, y)
        self.classes_ = classes
        self.verbalizers_ = self._verbalize(classes)
        self.texts_, self.y_ = list(texts), y_idx.astype(np.int64)
        lm = self._lm()
        self.identity_ = lm.identity
        answer_cue = self.template.split("{text}", 1)[1].strip() or "Answer:"
        self.unconditional_, _ = lm.score_choices(answer_cue, [""], self.verbalizers_)
        rng = np.random.default_rng(self.seed)
        self.demo_idx_ = self._demo_indices(rng) if self.demos == "fixed" else []
        if self.order is not None and self.demo_idx_:
            self.demo_idx_ = [self.demo_idx_[i] for i in np.random.default_rng(self.order).permutation(len(self.demo_idx_))]
        self.hso_ = None
        if self.hso_steps and self.demo_idx_:
            from anytask.methods.lm.hso import optimise_cache

            result = optimise_cache(lm, lm.encode(self._context(self.demo_idx_), start=True), steps=int(self.hso_steps),
                                    lr=float(self.hso_lr))
            self.hso_, self.hso_losses_ = result.deltas, result.losses
        self.calibrator_ = None
        if self._fits_calibration():
            held = [i for i in range(len(self.texts_)) if i not in set(self.demo_idx_)]
            if len(set(self.y_[held].tolist())) < 2:
                warnings.warn("calibration='fitted' needs labelled texts of at least 2 classes outside the prompt; "
                              "using contextual calibration", stacklevel=2)
            else:
                if raw_scores is not None and len(raw_scores["sums"]) != len(held):
                    raise AnytaskError(f"raw_scores has {len(raw_scores['sums'])} rows but {len(held)} labelled "
                                       "texts are outside the prompt; pass the raw_scores of exactly those texts")
                raw = raw_scores if raw_scores is not None else self.raw_scores([self.texts_[i] for i in held])
                self.calibrator_ = self._fit_calibrator(raw, self.y_[held])
        return self

    def _fits_calibration(self) -> bool:
        return self.calibration == "fitted" and self.demos == "fixed"

    def _fit_calibrator(self, raw: dict, y: np.ndarray) -> tuple[Tensor, Tensor]:
        from sklearn.linear_model import LogisticRegression

        features = self._normalised(raw, cf=False)
        model = LogisticRegression(C=1.0, max_iter=1000).fit(features.numpy(), y)
        coef = np.zeros((len(self.classes_), len(self.classes_)))
        bias = np.zeros(len(self.classes_))
        seen = model.classes_
        if len(seen) == 2:  # scikit-learn's binary form: one weight vector for the second class
            coef[seen[1]], bias[seen[1]] = model.coef_[0], model.intercept_[0]
        else:
            coef[seen], bias[seen] = model.coef_, model.intercept_
        missing = [c for c in range(len(self.classes_)) if c not in set(seen.tolist())]
        bias[missing] = -1e4  # a class with every example in the prompt is never predicted by the map
        return torch.tensor(coef, dtype=torch.float32), torch.tensor(bias, dtype=torch.float32)

    # -- scoring ----------------------------------------------------------------------------------
    def _cf_suffixes(self) -> list[str]:
        if self.calibration not in ("contextual", "fitted"):
            return []
        return [self.template.format(text=t) for t in self.content_free]

    def raw_scores(self, X) -> dict[str, Tensor]:
        """Summed log-likelihoods of every verbalizer: ``sums`` ``(N, C)``, ``content_free``
        ``(N, n_cf, C)`` (empty when uncalibrated), ``n_tokens`` / ``n_bytes`` ``(C,)`` and
        ``unconditional`` ``(C,)``; ``choice_scores`` and ``calibrate`` turn them into answers."""
        check_is_fitted(self, "texts_")
        texts = check_raw_texts(X, "the lm_prompt head")
        lm = self._lm()
        if lm.identity != self.identity_:
            raise AnytaskError(f"this lm_prompt head was fitted on {self.identity_}, but {self.backbone!r} now "
                               f"resolves to {lm.identity}; refit it")
        cf = self._cf_suffixes()
        n = len(texts)
        sums = torch.empty(n, len(self.classes_))
        cf_sums = torch.empty(n, len(cf), len(self.classes_))
        groups: dict[tuple[int, ...], list[int]] = {}
        nearest = self._nearest(texts) if self.selection == "similar" and self.k else None
        for i, t in enumerate(texts):
            if self.demos == "fixed":
                key = tuple(self.demo_idx_)
            elif nearest is not None:
                key = nearest[i]
            else:
                rng = np.random.default_rng([int(self.seed), zlib.crc32(t.encode())])
                key = tuple(self._demo_indices(rng, exclude=t))
            groups.setdefault(key, []).append(i)
        dropped_any = 0
        for key, idx in groups.items():
            # texts that need a shorter context (long queries) are scored apart, demonstrations dropped
            by_context: dict[str, list[int]] = {}
            by_dropped: dict[str, int] = {}
            context_tokens: dict = {}
            for i in idx:
                query_tokens = len(lm.encode(self.template.format(text=texts[i])))
                context, dropped = self._fitting_context(lm, list(key), query_tokens, context_tokens)
                dropped_any += dropped > 0
                by_context.setdefault(context, []).append(i)
                by_dropped[context] = dropped
            for context, members in by_context.items():
                suffixes = [self.template.format(text=texts[i]) for i in members] + cf
                # the optimised cache belongs to the fixed prompt with every demonstration in it
                deltas = self.hso_ if self.hso_ is not None and by_dropped[context] == 0 else None
                s, _ = lm.score_choices(context, suffixes, self.verbalizers_, batch_size=self.batch_size,
                                        kv_deltas=deltas)
                sums[members] = s[: len(members)]
                if cf:
                    cf_sums[members] = s[len(members):][None].expand(len(members), -1, -1)
        if dropped_any:
            warnings.warn(f"{dropped_any} text(s) were scored with fewer than k={self.k} demonstrations: the prompt "
                          f"would not fit {lm.config.name}'s context window", stacklevel=2)
        n_bytes = torch.tensor([len(v.encode()) for v in self.verbalizers_])
        n_tok = torch.tensor([len(lm.encode(v)) for v in self.verbalizers_])
        return {"sums": sums, "content_free": cf_sums, "n_tokens": n_tok, "n_bytes": n_bytes,
                "unconditional": self.unconditional_[0]}

    def _nearest(self, texts: list[str]) -> list[tuple[int, ...]]:
        """Each text's ``k`` most similar labelled texts (cosine of the retriever's embeddings), the most
        similar last; a labelled text equal to the text itself is never its own demonstration."""
        from anytask.backbones import get_embedder

        embed = get_embedder(self.retriever).embed
        pool, queries = embed(self.texts_), embed(texts)
        pool = pool / np.linalg.norm(pool, axis=1, keepdims=True).clip(1e-12)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True).clip(1e-12)
        sims = queries @ pool.T
        out = []
        for i, t in enumerate(texts):
            ranked = [j for j in np.argsort(-sims[i], kind="stable") if self.texts_[j] != t][: int(self.k)]
            out.append(tuple(int(j) for j in reversed(ranked)))
        return out

    def _normalised(self, r: dict, cf: bool) -> Tensor:
        scores = choice_scores(r["sums"], r["n_tokens"], r["n_bytes"], r["unconditional"], self.scoring)
        content_free = None
        if cf:
            content_free = choice_scores(r["content_free"], r["n_tokens"], r["n_bytes"], r["unconditional"],
                                         self.scoring)
        return calibrate(scores, content_free)

    def decision_function(self, X) -> np.ndarray:
        return self.decide(self.raw_scores(X))

    def decide(self, r: dict) -> np.ndarray:
        """Log-probabilities over ``classes_`` from ``raw_scores``, under the head's scoring and calibration."""
        if self.calibrator_ is not None:
            coef, bias = self.calibrator_
            return torch.log_softmax(self._normalised(r, cf=False) @ coef.T + bias, dim=-1).numpy()
        return self._normalised(r, cf=self.calibration in ("contextual", "fitted")).numpy()

    def predict_proba(self, X) -> np.ndarray:
        return np.exp(self.decision_function(X))

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]

    # -- persistence (anytask.core.io) ------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict[str, Tensor]]:
        check_is_fitted(self, "texts_")
        classes = self.classes_.tolist()
        extra = {"classes": classes, "texts": self.texts_, "y": self.y_.tolist(), "verbalizers": self.verbalizers_,
                 "demo_idx": [int(i) for i in self.demo_idx_], "identity": self.identity_}
        tensors = {"unconditional": self.unconditional_.clone()}
        if self.calibrator_ is not None:
            tensors["calibrator.coef"], tensors["calibrator.bias"] = self.calibrator_
        for i, (dk, dv) in enumerate(self.hso_ or []):
            tensors[f"hso.{i}.k"], tensors[f"hso.{i}.v"] = dk, dv
        return extra, tensors

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict[str, Tensor]) -> "LMPromptHead":
        head = cls(**params)
        classes = extra["classes"]
        head.classes_ = np.asarray(classes, dtype=object if any(isinstance(c, str) for c in classes) else None)
        head.texts_, head.y_ = list(extra["texts"]), np.asarray(extra["y"], dtype=np.int64)
        head.verbalizers_, head.demo_idx_ = list(extra["verbalizers"]), list(extra["demo_idx"])
        head.identity_, head.unconditional_ = extra["identity"], tensors["unconditional"]
        head.calibrator_ = ((tensors["calibrator.coef"], tensors["calibrator.bias"])
                            if "calibrator.coef" in tensors else None)
        layers = sorted({int(k.split(".")[1]) for k in tensors if k.startswith("hso.")})
        head.hso_ = [(tensors[f"hso.{i}.k"], tensors[f"hso.{i}.v"]) for i in layers] or None
        return head

