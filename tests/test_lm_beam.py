"""Conditional beam search: on a toy LM whose mode is the empty string (and a loop), the
unconditional search finds the degenerate mode and the conditional one a good text."""

from __future__ import annotations

import math

import torch

from anytask.methods.lm.beam import beam_search, is_degenerate, repeats_ngram

EOS, A, B, C = 0, 1, 2, 3


class ToyLM:
    """Next-token table: at the start EOS has 0.4 (more than any long text); after that "a b c" is
    likely once, and the loop "a a a ..." is the likeliest non-empty path."""

    eos_id = EOS

    def encode(self, text, start=False):
        return [9] if start else []

    def next_token_logprobs(self, rows):
        out = []
        for row in rows:
            gen = row[1:]
            p = torch.full((10,), 1e-9)
            if not gen:
                p[EOS], p[A], p[B] = 0.4, 0.35, 0.25
            elif gen[-1] == A and len(gen) < 6:
                p[A], p[B], p[EOS] = 0.6, 0.3, 0.1
            elif gen[-1] == B:
                p[C], p[EOS] = 0.5, 0.5
            else:
                p[EOS], p[A] = 0.9, 0.1
            out.append(torch.log(p / p.sum()))
        return torch.stack(out)


def test_ngram_and_degenerate_rules():
    assert repeats_ngram([1, 2, 1, 2], 2) and not repeats_ngram([1, 2, 3, 1], 2)
    assert is_degenerate([], min_new_tokens=1) and is_degenerate([1, 1, 1, 1], ngram=3)
    assert not is_degenerate([1, 2, 3], ngram=3)


def test_unconditional_mode_is_empty_conditional_mode_is_text():
    lm = ToyLM()
    plain = beam_search(lm, "", beams=3, max_new_tokens=8, condition=False)
    assert plain.ids == [] and math.isclose(plain.logp, math.log(0.4), rel_tol=1e-5)
    cond = beam_search(lm, "", beams=3, max_new_tokens=8, condition=True, min_new_tokens=1, ngram=2)
    assert cond.ids and not is_degenerate(cond.ids, ngram=2)
    assert cond.logp < plain.logp  # the price of the condition, in likelihood


def test_smollm2_beam_is_deterministic(smollm2):
    prompt = "Review: a warm, funny and moving film.\nOne-sentence summary:"
    a = beam_search(smollm2, prompt, beams=2, max_new_tokens=6)
    assert a == beam_search(smollm2, prompt, beams=2, max_new_tokens=6) and a.ids
