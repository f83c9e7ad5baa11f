"""Task hinting for length generalisation: train the main task together with a simpler, related one.

Awasthi & Gupta 2023, "Improving Length-Generalization in Transformers via Task Hinting",
https://arxiv.org/abs/2310.00726 (card 28). Trained on sorting sequences of length ≤ 20, a transformer sorts
length-100 sequences < 1 % of the time; trained with the *successor* hint as a second task (for each element,
the next element in sorted order), > 92 %. Other natural hints help much less; a few length-dependent
parameters (a tempered softmax) help further. The paper's second check is an increment task (``task="increment"``
with the ``carry`` hint, a reconstruction: see ``anytask.data.algorithmic``).

``HintedTransformer`` is a small decoder-only transformer trained from scratch on ``task`` mixed 1:1 (``mix``)
with ``hint`` (``None``: the main task alone), a task token selecting which. Choices (the paper's model size is
not stated on the card): pre-LN blocks, no positional encoding by default (``positions="none"``: the causal
mask alone carries order, and nothing in the model is tied to a trained length; ``"learned"`` absolute
positions are the contrast that cannot address unseen positions), ``tempered=True`` multiplies every head's
attention logits by ``1 + beta_h * log(n)`` with ``n`` the input length and ``beta_h`` learned (0 at start).

``score(lengths)`` gives exact-match and per-token accuracy by input length. Both are read off one
teacher-forced pass: every output token is right given a right prefix exactly when greedy decoding writes the
whole answer, so the exact match equals greedy decoding's.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

from anytask.core.errors import AnytaskError
from anytask.core.registry import Registry
from anytask.data.algorithmic import DIGIT_TASKS, TASKS, Vocab, batch

SEQUENCE_MODELS: Registry = Registry("sequence model", family="mechanisms")

HINTS = {"sort": ("successor", "count"), "increment": ("carry",)}
POSITIONS = ("none", "learned")


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, tempered: bool) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.beta = nn.Parameter(torch.zeros(heads)) if tempered else None

    def forward(self, x: torch.Tensor, log_n: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        if self.beta is not None:  # length-dependent temperature: scales q, hence the logits, per head
            q = q * (1 + self.beta.view(1, -1, 1, 1) * log_n.view(-1, 1, 1, 1))
        a = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.out(a.transpose(1, 2).reshape(B, T, D))
        return x + self.mlp(self.ln2(x))


class _Decoder(nn.Module):
    def __init__(self, vocab: int, dim: int, depth: int, heads: int, positions: str, max_len: int,
                 tempered: bool) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(max_len, dim) if positions == "learned" else None
        self.blocks = nn.ModuleList(_Block(dim, heads, tempered) for _ in range(depth))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, tokens: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        if self.pos is not None:
            x = x + self.pos(torch.arange(tokens.shape[1], device=tokens.device).clamp(max=self.pos.num_embeddings - 1))
        log_n = torch.log(n.float())
        for block in self.blocks:
            x = block(x, log_n)
        return self.head(self.ln(x))


@SEQUENCE_MODELS.register("hinted_transformer", reference="Awasthi & Gupta 2023, https://arxiv.org/abs/2310.00726",
                 summary="decoder-only transformer trained on sorting (or increment) with an auxiliary hint task; "
                         "NoPE, optional length-tempered softmax", input="tokens", output="token sequences")
class HintedTransformer(BaseEstimator):
    def __init__(self, *, task: str = "sort", hint: str | None = "successor", mix: float = 0.5,
                 train_lengths: tuple[int, int] = (5, 20), values: int = 128, repeats: bool = False, dim: int = 128,
                 depth: int = 2, heads: int = 4, positions: str = "none", tempered: bool = False, steps: int = 3000,
                 batch_size: int = 64, lr: float = 1e-3, warmup: int = 100, seed: int = 0,
                 progress: bool = False) -> None:
        self.task, self.hint, self.mix, self.train_lengths, self.values = task, hint, mix, train_lengths, values
        self.repeats, self.dim, self.depth, self.heads, self.positions = repeats, dim, depth, heads, positions
        self.tempered, self.steps, self.batch_size, self.lr, self.warmup = tempered, steps, batch_size, lr, warmup
        self.seed, self.progress = seed, progress

    def _validate(self) -> None:
        if self.task not in HINTS:
            raise AnytaskError(f"task={self.task!r}: choose one of {', '.join(HINTS)}")
        if self.hint is not None and self.hint not in HINTS[self.task]:
            raise AnytaskError(f"hint={self.hint!r} does not apply to {self.task}; choose None or one of "
                               f"{', '.join(HINTS[self.task]) or '(none)'}")
        if self.positions not in POSITIONS:
            raise AnytaskError(f"positions={self.positions!r}: choose one of {', '.join(POSITIONS)}")
        if not 0.0 <= self.mix < 1.0:
            raise AnytaskError(f"mix={self.mix!r}: the share of hint examples must be in [0, 1)")
        for name in ("steps", "batch_size", "dim", "depth", "heads"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < (2 if name == "batch_size" else 1):
                raise AnytaskError(f"{name}={v!r}: pass a positive integer (batch_size >= 2)")
        if self.dim % self.heads:
            raise AnytaskError(f"dim={self.dim} must be divisible by heads={self.heads}")
        lo, hi = self.train_lengths
        if self.task in DIGIT_TASKS and self.values < 10:
            raise AnytaskError(f"values={self.values}: {self.task} needs the ten digit tokens (values >= 10)")
        distinct = self.task not in DIGIT_TASKS and not self.repeats
        if not 1 <= lo <= hi or (distinct and hi > self.values):
            raise AnytaskError(f"train_lengths={self.train_lengths!r}: need 1 <= lo <= hi (and hi <= values for "
                               "distinct values)")

    def _loss(self, b) -> torch.Tensor:
        tokens = torch.as_tensor(b.tokens)
        logits = self.model_(tokens[:, :-1], torch.as_tensor(b.lengths))
        mask = torch.as_tensor(b.loss[:, :-1])
        return nn.functional.cross_entropy(logits[mask], tokens[:, 1:][mask])

    def fit(self, X=None, y=None) -> "HintedTransformer":
        """Train on freshly generated sequences (``X`` and ``y`` are ignored: the data is the task's generator).
        ``history_`` keeps the main and hint losses every 50 steps."""
        self._validate()
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.vocab_ = Vocab(self.values)
        self.model_ = _Decoder(len(self.vocab_), self.dim, self.depth, self.heads, self.positions,
                               3 * self.train_lengths[1] + 4, self.tempered)
        opt = torch.optim.AdamW(self.model_.parameters(), lr=self.lr, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, self.warmup)) * 0.5 * (
            1 + math.cos(math.pi * min(1.0, s / self.steps))))
        n_hint = int(round(self.batch_size * self.mix)) if self.hint else 0
        self.history_, start = [], time.perf_counter()
        self.model_.train()
        for step in range(self.steps):
            main = batch(self.task, self.batch_size - n_hint, self.train_lengths, self.values, rng,
                         repeats=self.repeats)
            loss_main = self._loss(main)
            loss = loss_main
            loss_hint = torch.tensor(float("nan"))
            if n_hint:
                loss_hint = self._loss(batch(self.hint, n_hint, self.train_lengths, self.values, rng,
                                             repeats=self.repeats))
                loss = (1 - self.mix) * loss_main + self.mix * loss_hint
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.model_.parameters(), 1.0)
            opt.step()
            sched.step()
            if step % 50 == 0 or step == self.steps - 1:
                row = {"step": step, "main": float(loss_main.detach()), "hint": float(loss_hint.detach())}
                self.history_.append(row)
                if self.progress:
                    print(f"step {step}/{self.steps} main {row['main']:.4f} hint {row['hint']:.4f} "
                          f"{time.perf_counter() - start:.0f}s", flush=True)
        self.model_.eval()
        self.fit_seconds_ = time.perf_counter() - start
        return self

    @torch.no_grad()
    def token_accuracy(self, b) -> tuple[np.ndarray, np.ndarray]:
        """Per example: whether every target token is right, and the share of target tokens that are."""
        check_is_fitted(self, "model_")
        tokens = torch.as_tensor(b.tokens)
        if tokens.max() >= len(self.vocab_):
            raise AnytaskError(f"tokens beyond this model's vocabulary ({len(self.vocab_)}): was it trained with "
                               f"values={self.values}?")
        pred = self.model_(tokens[:, :-1], torch.as_tensor(b.lengths)).argmax(-1)
        mask = torch.as_tensor(b.loss[:, :-1])
        right = (pred == tokens[:, 1:]) | ~mask
        return right.all(1).numpy(), ((right & mask).sum(1) / mask.sum(1)).numpy()

    def score(self, lengths=(10, 20, 30, 50, 100), n: int = 200, *, task: str | None = None,
              seed: int = 12345) -> dict[int, dict[str, float]]:
        """Exact match and token accuracy of ``task`` (default: the main task) at each input length, on ``n``
        fresh examples per length (batched by 50)."""
        check_is_fitted(self, "model_")
        task = task or self.task
        if task not in TASKS:
            raise AnytaskError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        rng, out = np.random.default_rng(seed), {}
        for length in lengths:
            exact, tok = [], []
            for start in range(0, n, 50):
                e, t = self.token_accuracy(batch(task, min(50, n - start), int(length), self.values, rng,
                                                 repeats=self.repeats))
                exact.append(e)
                tok.append(t)
            out[int(length)] = {"exact": float(np.concatenate(exact).mean()),
                                "token": float(np.concatenate(tok).mean())}
        return out

    @torch.no_grad()
    def generate(self, a, task: str | None = None) -> list[int]:
        """Greedy decoding of the main task's output for one input sequence (stops at EOS)."""
        check_is_fitted(self, "model_")
        task = task or self.task
        if task not in HINTS:
            raise AnytaskError(f"generate writes a main task's answer ({', '.join(HINTS)}); a hint's copies are read, "
                               "not generated: score it with score(task=...)")
        a = np.asarray(a, dtype=np.int64)
        top = 9 if task in DIGIT_TASKS else self.values - 1
        if a.ndim != 1 or not len(a) or a.min() < 0 or a.max() > top:
            raise AnytaskError(f"give a non-empty 1-D sequence of integers in 0..{top}")
        seq = [self.vocab_[task], *a.tolist(), self.vocab_["sep"]]
        n = torch.tensor([len(a)])
        out: list[int] = []
        for _ in range(2 * len(a) + 2):
            nxt = int(self.model_(torch.tensor([seq]), n)[0, -1].argmax())
            if nxt == self.vocab_["eos"]:
                break
            out.append(nxt)
            seq.append(nxt)
        return out
