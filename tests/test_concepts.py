import numpy as np
import pytest
import torch

from anytask.core import io
from anytask.methods.concepts import (ConceptModel, SAEConfig, SparseAutoencoder, build_vocabulary, evaluate_sae,
                              load_concept_model, name_concepts, train_sae)
from anytask.methods.concepts.sae import _resample
from anytask.core.errors import AnytaskError
from anytask.methods.heads import create_head


def sparse_dictionary(n=6000, d=16, atoms=32, active=3, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(atoms, d))
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    codes = np.zeros((n, atoms))
    for row in codes:
        row[rng.choice(atoms, size=active, replace=False)] = rng.uniform(0.5, 2.0, size=active)
    return (codes @ A).astype(np.float32), A


def test_sae_recovers_the_atoms_of_a_sparse_dictionary():
    X, A = sparse_dictionary(n=4000, d=32, atoms=24, active=3)
    sae, log = train_sae(X, SAEConfig(dim=32, expansion=2, l1=0.03, lr=3e-3, epochs=30, batch_size=256,
                                      resample_every=10), progress=False)
    assert log[-1]["mse"] < log[0]["mse"]
    D = sae.directions.detach().numpy()  # (h, d), unit rows
    np.testing.assert_allclose(np.linalg.norm(D, axis=1), 1.0, atol=1e-5)
    # directions live in the normalised space: compare with the centred atoms' directions
    best = np.abs(D @ A.T).max(0)
    assert np.mean(best > 0.9) > 0.75, best
    quality = evaluate_sae(sae, X)
    assert quality["explained_variance"] > 0.85 and quality["l0"] < 15


def test_topk_sae_keeps_exactly_k_active():
    X, _ = sparse_dictionary(n=1000)
    sae, _ = train_sae(X, SAEConfig(dim=16, expansion=2, kind="topk", k=4, epochs=3, batch_size=200), progress=False)
    f = sae.encode(torch.from_numpy(X[:50]))
    assert ((f > 0).sum(1) <= 4).all()


def test_resampling_revives_dead_latents():
    X, _ = sparse_dictionary(n=2000)
    sae = SparseAutoencoder(SAEConfig(dim=16, expansion=2))
    opt = torch.optim.Adam(sae.parameters())
    dead = torch.arange(5)
    with torch.no_grad():
        sae.W_e[dead] = 0
        sae.b_e[dead] = -10  # can never fire
    Xn = torch.from_numpy(X)
    assert (sae.encode_normalized(Xn)[:, dead] == 0).all()
    assert _resample(sae, opt, Xn, dead, torch.Generator().manual_seed(0)) == 5
    assert (sae.encode_normalized(Xn)[:, dead] > 0).any(0).all()
    np.testing.assert_allclose(sae.W_d.norm(dim=0).detach().numpy(), 1.0, atol=1e-5)


def test_naming_picks_the_word_along_each_direction():
    sae = SparseAutoencoder(SAEConfig(dim=4, expansion=1))
    with torch.no_grad():
        sae.W_d.copy_(torch.eye(4))
    vocab = ["north", "east", "south", "west", "up"]
    V = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0.6, 0.6, 0, 0]], np.float32)
    names, scores = name_concepts(sae, vocab, V)
    assert names == ["north", "east", "south", "west"] and np.allclose(scores, 1)
    with pytest.raises(AnytaskError, match="empty vocabulary"):
        name_concepts(sae, [], np.zeros((0, 4)))
    with pytest.raises(AnytaskError, match="expected"):
        name_concepts(sae, vocab, V[:, :3])


def test_vocabulary_from_the_pool():
    vocab = build_vocabulary(["The football match was great", "football fans love the match"] * 3, min_count=2)
    assert vocab[:2] == ["football", "match"] and "the" not in vocab and "football match" in vocab
    with pytest.raises(AnytaskError, match="vocabulary is empty"):
        build_vocabulary(["a b"], min_count=5)


def test_bad_pools_are_clear_errors():
    X, _ = sparse_dictionary(n=100)
    X[3, 1] = np.nan
    with pytest.raises(AnytaskError, match="NaN"):
        train_sae(X, SAEConfig(dim=16))
    with pytest.raises(AnytaskError, match="config.dim is 8"):
        train_sae(np.ones((10, 16), np.float32), SAEConfig(dim=8))


def test_concept_model_round_trip_and_lookup_errors(tiny_concepts, tmp_path):
    model = load_concept_model(str(tiny_concepts))
    assert isinstance(model, ConceptModel) and model.dim == 32 and len(model.names) == 64
    again = io.load(io.save(model, tmp_path / "copy"))
    X = np.random.default_rng(0).normal(size=(5, 32)).astype(np.float32)
    np.testing.assert_allclose(again.activations(X), model.activations(X), atol=1e-6)
    assert again.names == model.names
    with pytest.raises(AnytaskError, match="looked for config.json in"):
        load_concept_model("no-such-concepts")
    with pytest.raises(AnytaskError, match="takes 32-d embeddings"):
        model.sae.encode(torch.zeros(2, 384))


def test_concept_bottleneck_explains_and_l1_makes_it_sparse(tiny_concepts, tiny):
    from anytask.data import make_topic_task

    train, test = make_topic_task(30)
    X, Xt = tiny.embed(list(train.X)).numpy(), tiny.embed(list(test.X)).numpy()
    dense = create_head("concept_bottleneck", concepts=str(tiny_concepts), l1=0.0).fit(X, train.y)
    sparse = create_head("concept_bottleneck", concepts=str(tiny_concepts), l1=3e-2).fit(X, train.y)
    assert sparse.n_active_concepts() < dense.n_active_concepts()
    assert np.mean(dense.predict(Xt) == test.y) > 1 / 6
    explanations = dense.explain(Xt[:3], top=4)
    assert len(explanations) == 3
    e = explanations[0]
    assert e.label == dense.predict(Xt[:1])[0] and 0 < e.probability <= 1 and len(e.concepts) <= 4
    with pytest.raises(AttributeError):
        e.label = "changed"  # frozen
    assert all(isinstance(c.name, str) for c in e.concepts)
    with pytest.raises(AnytaskError, match="takes 32-d embeddings"):
        create_head("concept_bottleneck", concepts=str(tiny_concepts)).fit(np.ones((4, 8)), [0, 1, 0, 1])
    with pytest.raises(AnytaskError, match="trained on 'tiny'"):
        create_head("concept_bottleneck", concepts=str(tiny_concepts), backbone="minilm").fit(X, train.y)


@pytest.mark.minilm
def test_shipped_minilm_concepts_match_the_installed_backbone(minilm):
    model = load_concept_model("minilm")
    assert model.dim == 384 and model.backbone == minilm.identity
    assert len(set(model.names)) > 100  # many distinct names, not one word for everything
    X = minilm.embed(["The striker scored twice in the final.", "Shares fell after the earnings report."]).numpy()
    A = model.activations(X)
    assert A.shape == (2, model.sae.config.n_latents) and (A > 0).any(1).all()


@pytest.mark.minilm
def test_concept_bottleneck_on_minilm_names_sensible_concepts(minilm):
    from anytask.data import make_topic_task

    train, test = make_topic_task(30)
    head = create_head("concept_bottleneck", backbone="minilm")
    X = minilm.embed(list(train.X)).numpy()
    head.fit(X, train.y)
    assert np.mean(head.predict(minilm.embed(list(test.X)).numpy()) == test.y) > 0.8
    e = head.explain(minilm.embed(["The goalkeeper saved a penalty in the cup final."]).numpy())[0]
    assert e.label == "sports" and e.concepts
