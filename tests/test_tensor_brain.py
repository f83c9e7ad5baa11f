"""The Tensor Brain's bilayer (card 37) on a small toy world with a lookup "encoder" (a fixed random vector per
sentence), so the tests check the decoder, the memory modes and concept learning rather than a text model."""

import hashlib

import numpy as np
import pytest
import torch

from anytask.core.errors import AnytaskError
from anytask.data.toyworld import CLASSES, describe, new_scenes, novel_entities, toy_world
from anytask.methods.mechanisms.tensor_brain import FlatTriples, TensorBrain, micro_f1


class Lookup:
    """A sentence is the mean of fixed random word vectors (so a relation sentence shares its names' vectors)."""

    def __init__(self, dim=64, seed=0):
        self.dim, self.seed = dim, seed

    def word(self, w):
        digest = hashlib.sha256(f"{self.seed}:{w}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little")).normal(size=self.dim)

    def __call__(self, sentences):
        words = [s.lower().replace(".", " ").replace(",", " ").replace(":", " ").split() for s in sentences]
        return np.stack([np.mean([self.word(w) for w in ws], 0) for ws in words]).astype(np.float32)

    def scenes(self, groups):
        return np.stack([self(g).mean(0) for g in groups])


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is faster, and fair to a busy machine
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup():
    world = toy_world(n_entities=20, n_scenes=200, seed=0)
    enc = Lookup()
    X = enc.scenes([world.sentences(s) for s in world.scenes])
    y = [world.triples(s) for s in world.scenes]
    test = new_scenes(world, 40, np.random.default_rng(1))
    with torch.random.fork_rng():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        tb = TensorBrain(n_concepts=len(world.concepts), n_predicates=6, dim=64, epochs=80, seed=0).fit(X, y)
        torch.set_num_threads(threads)
    return world, enc, tb, test


def test_world_triples_and_sentences_agree():
    world = toy_world(n_entities=12, n_scenes=5, seed=3)
    scene = world.scenes[0]
    triples = world.triples(scene)
    assert len([t for t in triples if t[1] == 3]) == len(scene) - 1  # left_of between neighbours
    assert sum(" is left of " in s for s in world.sentences(scene)) == len(scene) - 1
    e = scene[0]
    c, col, size = world.kinds[e]
    assert (e, 0, world.concept("class", c)) in triples
    assert world.concepts[world.concept("class", c)] == CLASSES[c]
    assert world.entity_sentence(e, 1) == describe(world.names[e], world.kinds[e], 1)
    assert not {n for n, _ in novel_entities(world, 5)} & set(world.names)


def test_the_bilayer_decodes_unseen_scenes_and_the_write_back_is_what_binds(setup):
    world, enc, tb, test = setup
    Xte = enc.scenes([world.sentences(s) for s in test])
    yte = [world.triples(s) for s in test]
    score = micro_f1(tb.decode(Xte), yte)
    assert score["f1"] > 0.5, score
    assert tb.threshold_ in (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
    assert tb.history_[-1] < tb.history_[0]
    flat = TensorBrain(n_concepts=len(world.concepts), n_predicates=6, dim=64, epochs=80, alpha=0.0,
                       threshold=tb.threshold_, seed=0).fit(enc.scenes([world.sentences(s) for s in world.scenes]),
                                                           [world.triples(s) for s in world.scenes])
    assert micro_f1(flat.decode(Xte), yte)["f1"] < score["f1"] - 0.2
    p = tb.triple_probability(Xte[:3], yte[0][:4])
    assert p.shape == (3, 4) and (p > 0).all() and (p <= 1).all()


def test_a_cue_recalls_its_episode(setup):
    world, enc, tb, test = setup
    brain = TensorBrain(n_concepts=1).set_params(**tb.get_params())
    brain.__dict__.update({k: v for k, v in tb.__dict__.items() if k.endswith("_")})  # a copy to store episodes in
    with pytest.raises(AnytaskError, match="memorise"):
        brain.recall(enc.scenes([world.sentences(test[0])[:1]]))
    ids = brain.memorise(enc.scenes([world.sentences(s) for s in test]))
    assert ids.tolist() == list(range(len(test)))
    cues = enc.scenes([[s for s in world.sentences(sc) if " is left of " in s][:1] for sc in test])
    hit, recalled = brain.recall(cues)
    assert np.mean(hit == ids) > 8 / len(test)  # chance is 1 / len(test); pairs repeat in a 20-entity world
    truth = [world.triples(s) for s in test]
    assert micro_f1(recalled, truth)["recall"] > 2 * micro_f1(brain.decode(cues), truth)["recall"]


def test_novel_entities_get_new_indices_that_are_recognised_again(setup):
    world, enc, tb, _ = setup
    before = tb.model_.A.detach().clone()
    brain = TensorBrain().set_params(**tb.get_params())
    brain.__dict__.update({k: v for k, v in tb.__dict__.items() if k.endswith("_")})
    known = enc.scenes([world.sentences([e]) for e in range(world.n_entities)])
    novel = novel_entities(world, 6)
    fresh = enc.scenes([[describe(n, k, 0)] for n, k in novel])
    assert brain.novelty(fresh).mean() > brain.novelty(known).mean()
    new = brain.allocate(fresh, threshold=0.0)
    assert new.tolist() == list(range(len(before), len(before) + len(novel)))
    assert torch.equal(brain.model_.A[: len(before)], before)  # old indices unchanged
    top = brain.model_.logp(brain.states(fresh), brain.model_.A).exp().argmax(1).numpy()
    assert (top == new).all()


def test_flat_baseline_and_bad_input():
    world = toy_world(n_entities=10, n_scenes=60, seed=1)
    enc = Lookup(dim=32)
    X = enc.scenes([world.sentences(s) for s in world.scenes])
    y = [world.triples(s) for s in world.scenes]
    flat = FlatTriples(epochs=100).fit(X, y)
    assert micro_f1(flat.decode(X), y)["f1"] > 0.5
    with pytest.raises(AnytaskError, match="triple lists"):
        TensorBrain().fit(X, y[:-1])
    with pytest.raises(AnytaskError, match="subject, predicate, object"):
        TensorBrain().fit(X, [[(0, 1)]] * len(X))
    with pytest.raises(AnytaskError, match="beyond n_concepts"):
        TensorBrain(n_concepts=3, threshold=0.1, epochs=1).fit(X, y)
    tb = TensorBrain(epochs=1, threshold=0.1).fit(X, y)
    with pytest.raises(AnytaskError, match="features"):
        tb.decode(X[:, :8])
