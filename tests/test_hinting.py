"""Task hinting (card 28): the sequence generators, the mixing ratio, a small model that learns to sort, and the
teacher-forced exact match agreeing with greedy decoding."""

import numpy as np
import pytest
import torch

from anytask.core.errors import AnytaskError
from anytask.data import algorithmic
from anytask.data.algorithmic import Vocab, batch, carries, draw, example, increment, successors
from anytask.methods.mechanisms import hinting
from anytask.methods.mechanisms.hinting import HintedTransformer


def _outputs(task, a, values=16):
    tokens, loss = example(task, a, values)
    targets = [tokens[t + 1] for t in range(len(tokens) - 1) if loss[t]]
    return tokens, targets


def test_sort_targets_are_the_sorted_input_then_eos():
    voc = Vocab(16)
    tokens, targets = _outputs("sort", [5, 1, 9, 3])
    assert tokens[:6] == [voc["sort"], 5, 1, 9, 3, voc["sep"]]
    assert targets == [1, 3, 5, 9, voc["eos"]]


def test_successor_hint_handles_duplicates_and_the_maximum():
    voc = Vocab(16)
    # sorted multiset 2, 4, 4, 7: the first 4 is followed by the second 4, the second by 7, 2 by the first 4
    assert successors(np.array([4, 2, 4, 7]), voc["end"]).tolist() == [4, 4, 7, voc["end"]]
    tokens, targets = _outputs("successor", [4, 2, 4, 7])
    # the copies are read (not targets): pairs a_i, succ(a_i) after SEP
    assert tokens[6:14] == [4, 4, 2, 4, 4, 7, 7, voc["end"]]
    assert targets == [4, 4, 7, voc["end"], voc["eos"]]


def test_count_hint_counts_smaller_elements():
    _, targets = _outputs("count", [5, 1, 9, 3])
    assert targets[:-1] == [2, 0, 3, 1]


def test_increment_adds_one_with_carries_and_overflow():
    voc = Vocab(16)
    assert increment(np.array([1, 2, 3])) == [1, 2, 4]
    assert increment(np.array([1, 9, 9])) == [2, 0, 0]
    assert increment(np.array([9, 9])) == [1, 0, 0]  # one digit wider only on overflow
    assert increment(np.array([0, 0, 9])) == [0, 1, 0]  # leading zeros keep the width
    tokens, targets = _outputs("increment", [1, 9, 9])
    assert tokens[:5] == [voc["increment"], 1, 9, 9, voc["sep"]]
    assert targets == [2, 0, 0, voc["eos"]]
    rng = np.random.default_rng(0)
    for _ in range(200):  # the digits really are the number plus one
        d = draw("increment", int(rng.integers(1, 12)), 16, rng)
        assert int("".join(map(str, increment(d)))) == int("".join(map(str, d))) + 1


def test_carry_hint_marks_the_digits_the_one_reaches():
    assert carries(np.array([1, 2, 9, 9])).tolist() == [0, 1, 1, 1]
    assert carries(np.array([9, 9, 9])).tolist() == [1, 1, 1]
    assert carries(np.array([9, 9, 3])).tolist() == [0, 0, 1]
    tokens, targets = _outputs("carry", [1, 2, 9, 9])
    assert tokens[6:14] == [1, 0, 2, 1, 9, 1, 9, 1]  # pairs d_i, c_i; the d_i are read, not targets
    assert targets[:-1] == [0, 1, 1, 1]


def test_increment_inputs_cover_carries_of_every_length():
    rng = np.random.default_rng(0)
    runs = []
    for _ in range(2000):
        d = draw("increment", 10, 16, rng, repeats=False)  # digits repeat whatever `repeats` says
        assert d.max() <= 9
        nines = d[::-1] == 9
        runs.append(10 if nines.all() else int(np.argmin(nines)))  # trailing 9s
    counts = np.bincount(runs, minlength=11)
    assert counts.min() > 100  # 0..10 trailing 9s, each about 1 / 11 of the time
    with pytest.raises(AnytaskError, match="digits"):
        example("increment", [1, 12], 16)
    with pytest.raises(AnytaskError, match=">= 10"):
        draw("carry", 3, 8, rng)


def test_batches_pad_and_mask_and_reject_impossible_requests():
    rng = np.random.default_rng(0)
    b = batch("sort", 32, (3, 9), 16, rng)
    voc = Vocab(16)
    assert b.tokens.shape[0] == 32 and set(b.lengths.tolist()) <= set(range(3, 10))
    assert (b.loss.sum(1) == b.lengths + 1).all()  # n sorted values + EOS per row
    assert not b.loss[b.tokens == voc["pad"]].any()
    for row, n in zip(b.tokens, b.lengths):  # distinct values by default
        assert len(set(row[1:n + 1].tolist())) == n
    with pytest.raises(AnytaskError, match="distinct"):
        batch("sort", 2, 20, 16, rng)
    with pytest.raises(AnytaskError, match="unknown task"):
        example("reverse", [1, 2], 16)
    with pytest.raises(AnytaskError, match="0..15"):
        example("sort", [1, 16], 16)


def test_every_batch_mixes_main_and_hint_as_asked(monkeypatch):
    seen = []
    real = algorithmic.batch

    def spy(task, n, *args, **kwargs):
        seen.append((task, n))
        return real(task, n, *args, **kwargs)

    monkeypatch.setattr(hinting, "batch", spy)
    HintedTransformer(hint="successor", mix=0.25, steps=3, batch_size=16, dim=16, heads=2, depth=1,
                      values=16, train_lengths=(2, 5)).fit()
    assert seen == [("sort", 12), ("successor", 4)] * 3
    seen.clear()
    HintedTransformer(hint=None, steps=2, batch_size=16, dim=16, heads=2, depth=1, values=16,
                      train_lengths=(2, 5)).fit()
    assert seen == [("sort", 16)] * 2


def test_the_tempered_softmax_starts_as_the_plain_one():
    kw = dict(hint=None, steps=1, dim=16, heads=2, depth=1, values=16, train_lengths=(2, 5), lr=0.0)
    plain, tempered = HintedTransformer(**kw).fit(), HintedTransformer(tempered=True, **kw).fit()
    b = batch("sort", 4, 5, 16, np.random.default_rng(1))
    with torch.no_grad():
        x = torch.as_tensor(b.tokens)
        n = torch.as_tensor(b.lengths)
        assert torch.allclose(plain.model_(x, n), tempered.model_(x, n), atol=1e-6)


@pytest.fixture(scope="module")
def sorter():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster, and fair to a busy machine
    try:
        return HintedTransformer(hint="successor", values=16, train_lengths=(2, 6), dim=64, heads=4, depth=1,
                                 steps=300, batch_size=32, lr=3e-3, seed=0).fit()
    finally:
        torch.set_num_threads(threads)


def test_a_one_layer_model_learns_to_sort_short_sequences(sorter):
    scores = sorter.score((4, 6), n=100)
    assert scores[4]["exact"] > 0.8 and scores[6]["token"] > 0.9
    assert sorter.history_[-1]["main"] < sorter.history_[0]["main"] / 4
    assert sorter.history_[-1]["hint"] < sorter.history_[0]["hint"] / 4
    assert sorter.generate([9, 2, 14, 5]) == [2, 5, 9, 14]


def test_a_small_model_learns_to_increment_short_numbers():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # copying digit i to output i needs positions: learned ones are the quickest to train at this size
        model = HintedTransformer(task="increment", hint="carry", values=10, train_lengths=(1, 4), dim=64, heads=4,
                                  depth=2, positions="learned", steps=600, batch_size=32, lr=3e-3, seed=0).fit()
    finally:
        torch.set_num_threads(threads)
    assert model.score((3,), n=100)[3]["exact"] > 0.9
    assert model.score((3,), n=100, task="carry")[3]["exact"] > 0.8
    assert model.generate([1, 9, 9]) == [2, 0, 0]
    with pytest.raises(AnytaskError, match="0..9"):
        model.generate([1, 12])


def test_teacher_forced_exact_match_is_greedy_decodings(sorter):
    b = batch("sort", 40, 6, 16, np.random.default_rng(7))
    exact, _ = sorter.token_accuracy(b)
    greedy = [sorter.generate(row[1:7]) == sorted(row[1:7].tolist()) for row in b.tokens]
    assert exact.tolist() == greedy


def test_bad_settings_are_clear_errors():
    with pytest.raises(AnytaskError, match="hint='reverse'"):
        HintedTransformer(hint="reverse").fit()
    with pytest.raises(AnytaskError, match="positions"):
        HintedTransformer(positions="rotary").fit()
    with pytest.raises(AnytaskError, match="train_lengths"):
        HintedTransformer(values=16, train_lengths=(5, 20)).fit()
    with pytest.raises(AnytaskError, match="steps=0"):
        HintedTransformer(steps=0).fit()
    with pytest.raises(AnytaskError, match="divisible"):
        HintedTransformer(dim=30, heads=4).fit()
    with pytest.raises(AnytaskError, match="does not apply to increment"):
        HintedTransformer(task="increment", hint="successor").fit()
    with pytest.raises(AnytaskError, match="ten digit"):
        HintedTransformer(task="increment", hint="carry", values=8).fit()
    model = HintedTransformer(hint=None, steps=1, dim=16, heads=2, depth=1, values=16, train_lengths=(2, 5)).fit()
    with pytest.raises(AnytaskError, match="vocabulary"):
        model.token_accuracy(batch("sort", 2, 3, 64, np.random.default_rng(0)))
    with pytest.raises(AnytaskError, match="copies are read"):
        model.generate([1, 2], task="successor")
