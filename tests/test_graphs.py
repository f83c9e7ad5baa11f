"""The graph family: loaders, the encoders' contract (isomorphism, frozen reuse, save / load), valuation."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("torch_geometric", reason="the graph family needs the graph extra (torch-geometric)")

from anytask.core import io  # noqa: E402
from anytask.core.errors import AnytaskError  # noqa: E402
from anytask.data.graphs import from_arrays, link_split, load_graphs, shared_graph_root  # noqa: E402
from anytask.methods.graphs import ENCODERS  # noqa: E402
from anytask.methods.graphs.valuation import graph_value, relevance_diversity  # noqa: E402

SHARED = shared_graph_root()
needs_shared = pytest.mark.skipif(SHARED is None, reason="needs ../shared/data/graph (the shared benchmark data)")


def random_graph(n=30, p=0.15, f=6, seed=0):
    rng = np.random.default_rng(seed)
    A = np.triu(rng.random((n, n)) < p, 1)
    ei = np.array(np.nonzero(A | A.T))
    x = rng.normal(size=(n, f)).astype(np.float32)
    return from_arrays(x, ei, rng.integers(0, 3, n), name="random")[0]


def small(name, **kw):
    defaults = {"gae": {}, "vgae": {}, "isoc_vgae": {"hidden": 16, "latent": 8}}[name]
    return ENCODERS.get(name)(**{**defaults, "epochs": 30, **kw})


# -- data ------------------------------------------------------------------------------------------------

def test_clean_graph_documents_what_it_changes():
    x = np.ones((4, 2), np.float32)
    g, notes = from_arrays(x, [[0, 0, 1, 1, 2], [1, 1, 0, 1, 3]])  # a duplicate, a self-loop, one-way 2->3
    assert notes == {"edges": 4, "self_loops_removed": 1, "duplicates_removed": 1}
    assert sorted(map(tuple, g.edge_index.T.tolist())) == [(0, 1), (1, 0), (2, 3), (3, 2)]
    with pytest.raises(AnytaskError, match="refers to node 7.*1-based"):
        from_arrays(x, [[0, 7], [1, 2]])
    with pytest.raises(AnytaskError, match=r"shape \(2, E\)"):
        from_arrays(x, np.zeros((3, 2)))
    empty, notes = from_arrays(x, np.zeros((2, 0)))
    assert empty.edge_index.shape == (2, 0) and notes["edges"] == 0
    with pytest.raises(AnytaskError, match="NaN"):
        from_arrays(np.full((2, 2), np.nan), [[0], [1]])


@needs_shared
def test_shared_graphs_load_with_their_splits():
    cora = load_graphs("cora")
    g = cora.graphs[0]
    assert (g.num_nodes, cora.num_features, len(cora.classes)) == (2708, 1433, 7)
    assert int(g.train_mask.sum()) == 140 and int(g.test_mask.sum()) == 1000
    cs = load_graphs("citeseer").graphs[0]
    missing = ~cs.label_mask
    assert int(missing.sum()) == 15  # kept in the graph, out of every split
    assert not (missing & (cs.train_mask | cs.val_mask | cs.test_mask)).any()
    assert cs.num_nodes == 3327
    mutag = load_graphs("mutag")
    assert len(mutag) == 188 and mutag.level == "graph" and mutag.classes == [-1, 1]
    assert set(mutag.labels) == {0, 1} and mutag.num_features == 7
    with pytest.raises(AnytaskError, match="no graph 'kora'"):
        load_graphs("kora")


def test_link_split_holds_test_edges_out_of_message_passing():
    g = random_graph(60, 0.2)
    train, _, test = link_split(g, seed=0)
    held = {tuple(e) for e in test.pos_edge_label_index.T.tolist()}
    seen = {tuple(e) for e in train.edge_index.T.tolist()}
    assert held and not held & seen
    with pytest.raises(AnytaskError, match="edges to hold out"):
        link_split(from_arrays(np.ones((5, 2)), np.zeros((2, 0)))[0])


# -- encoders --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["gae", "vgae", "isoc_vgae"])
def test_encoder_trains_embeds_and_never_changes_when_used(name, tmp_path):
    g = random_graph()
    enc = small(name).fit(g)
    first, last = enc.history_[0]["loss"], enc.history_[-1]["loss"]
    assert last < first, (first, last)
    before = {k: v.clone() for k, v in enc.net_.state_dict().items()}
    X = enc.embed(g)
    assert X.shape[0] == 30 and np.isfinite(X).all()
    assert all(torch.equal(before[k], v) for k, v in enc.net_.state_dict().items())  # frozen reuse
    scores = enc.link_scores(g, [[0, 1], [2, 3]])
    assert scores.shape == (2,) and ((scores >= 0) & (scores <= 1)).all()
    enc.save_pretrained(tmp_path / name)
    again = io.load(tmp_path / name)
    np.testing.assert_allclose(again.embed(g), X, atol=1e-6)
    with pytest.raises(AnytaskError, match="trained on 6 node features"):
        enc.embed(random_graph(f=5))


def test_isomorphic_copies_get_equal_pooled_embeddings():
    g = random_graph()
    enc = small("isoc_vgae").fit(g)
    perm = np.random.default_rng(1).permutation(30)
    inv = np.argsort(perm)
    copy = from_arrays(g.x.numpy()[perm], inv[g.edge_index.numpy()])[0]
    np.testing.assert_allclose(enc.embed(copy)[inv], enc.embed(g), atol=1e-4)  # equivariant nodes
    np.testing.assert_allclose(enc.embed([copy, g], level="graph")[0], enc.embed([copy, g], level="graph")[1],
                               rtol=1e-4, atol=1e-3)


def test_two_hops_tell_apart_what_one_hop_cannot():
    """P6 and C4 + K2 have the same degrees (1-hop views) but differ after two 1-WL rounds. One GIN layer can
    never separate them; two can, when the MLP is not linear across the two degree values (a finite, briefly
    trained GIN sometimes is: then sum pooling cancels the difference), so most seeds must separate them."""
    ones = np.ones((6, 1), np.float32)
    p6 = from_arrays(ones, [[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])[0]
    c4k2 = from_arrays(ones, [[0, 1, 2, 3, 4], [1, 2, 3, 0, 5]])[0]
    train = [random_graph(8, 0.4, f=1, seed=s) for s in range(6)]
    for g in train:
        g.x = torch.ones(g.num_nodes, 1)
    one_hop, two_hop = [], []
    for seed in range(5):
        e1 = small("vgae", conv="gin", head="linear", layers=1, seed=seed).fit(train).embed([p6, c4k2], level="graph")
        e2 = small("isoc_vgae", layers=2, seed=seed).fit(train).embed([p6, c4k2], level="graph")
        one_hop.append(np.abs(e1[0] - e1[1]).max())
        two_hop.append(np.abs(e2[0] - e2[1]).max())
    assert max(one_hop) < 1e-4, one_hop
    assert sum(d > 1e-3 for d in two_hop) >= 3, two_hop


def test_reconstruction_targets_are_detached(monkeypatch):
    from anytask.methods.graphs import isoc_vgae

    seen = []
    real = isoc_vgae._cosine_error
    monkeypatch.setattr(isoc_vgae, "_cosine_error", lambda p, t: seen.append(t.requires_grad) or real(p, t))
    small("isoc_vgae", epochs=2).fit(random_graph())
    assert seen and not any(seen)


def test_ablation_switches_change_the_decoder():
    g = random_graph()
    one = small("isoc_vgae", multi_hop=False, distribution_weight=0.0, epochs=2).fit(g)
    assert len(one.decoder_.steps) == 1 and one.decoder_.dist is None
    three = small("isoc_vgae", layers=3, epochs=2).fit(g)
    assert len(three.decoder_.steps) == 3 and len(three.decoder_.dist) == 3
    with pytest.raises(AnytaskError, match="conv='gat'"):
        small("vgae", conv="gat").fit(g)


def test_graph_without_edges_still_embeds():
    g = from_arrays(np.random.default_rng(0).normal(size=(8, 3)), np.zeros((2, 0)))[0]
    X = small("isoc_vgae", epochs=3).fit(g).embed(g)
    assert X.shape[0] == 8 and np.isfinite(X).all()


# -- valuation -------------------------------------------------------------------------------------------

def test_relevance_and_diversity_bounds():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 8))
    same = relevance_diversity(X, X)
    assert same["relevance"] == pytest.approx(1) and same["diversity"] == pytest.approx(0, abs=1e-6)
    for scale in (0.5, 2.0, 5.0):
        r = relevance_diversity(X, rng.normal(size=(300, 8)) * scale)
        assert r["relevance"] + r["diversity"] <= 1 + 1e-9
    near = relevance_diversity(X, X + rng.normal(size=X.shape) * 0.1)
    far = relevance_diversity(X, X * 3)
    assert near["relevance"] > far["relevance"] and near["diversity"] < far["diversity"]
    with pytest.raises(AnytaskError, match="one feature space"):
        relevance_diversity(X, X[:, :4])


def test_graph_value_of_a_permuted_copy_is_zero_distance():
    g = random_graph(25, 0.2)
    perm = np.random.default_rng(3).permutation(25)
    inv = np.argsort(perm)
    copy = (g.x.numpy()[perm], inv[g.edge_index.numpy()])
    r = graph_value(g, copy, seed=0)
    assert r["W"] == pytest.approx(0, abs=1e-6)
    assert r["relevance"] == pytest.approx(1, abs=1e-6) and r["diversity"] < 1e-6
    rewired = graph_value(g, random_graph(25, 0.2, seed=9), seed=0)
    assert rewired["W"] > 0.1


def test_graph_value_warns_on_a_disconnected_graph():
    x = np.random.default_rng(0).normal(size=(6, 3))
    two = (x, np.array([[0, 1, 3, 4], [1, 2, 4, 5]]))
    with pytest.warns(UserWarning, match="2 connected components"):
        graph_value(two, two)
    with pytest.raises(AnytaskError, match="project both"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph_value(two, (x[:, :2], two[1]))


# -- the command line ------------------------------------------------------------------------------------

@pytest.mark.slow  # five CLI subprocesses, each importing torch and PyG (~40 s); .ci/run's slow suite runs it
def test_cli_trains_embeds_and_benches_a_graph(tmp_path):
    g = random_graph(60, 0.1)
    np.savez(tmp_path / "g.npz", features=g.x.numpy(), edge_index=g.edge_index.numpy(), labels=g.y.numpy(),
             train_idx=np.arange(40), test_idx=np.arange(40, 60))
    run = lambda *a: subprocess.run([sys.executable, "-m", "anytask", *a, "-q"], capture_output=True,  # noqa: E731
                                    text=True, cwd=tmp_path)
    r = run("graph", "train", "--data", "g.npz", "--encoder", "vgae", "--epochs", "5", "--out", "enc")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["features"] == 6
    r = run("graph", "embed", "--model", "enc", "--data", "g.npz", "--out", "e.npz")
    assert r.returncode == 0, r.stderr
    z = np.load(tmp_path / "e.npz")
    assert z["X"].shape == (60, 48) and list(z["test_idx"]) == list(range(40, 60))
    r = run("bench", "--tasks", "features:e.npz", "--shots", "2", "--seeds", "1", "--out", "b.json")
    assert r.returncode == 0, r.stderr
    r = run("graph", "embed", "--model", "enc", "--data", "g.npz", "--out", "e.npz")
    assert r.returncode == 2 and "--force" in r.stderr
    np.save(tmp_path / "a.npy", np.random.default_rng(0).normal(size=(50, 4)))
    r = run("value", "--buyer", "a.npy", "--seller", "a.npy")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["relevance"] == pytest.approx(1)
