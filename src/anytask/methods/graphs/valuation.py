"""Task-agnostic valuation: how relevant, how diverse and how structurally far a seller's data is for a buyer,
with no downstream task.

Falahati & Amiri 2024, "Disentangled Structural and Featural Representation for Task-Agnostic Graph
Valuation", https://arxiv.org/abs/2408.12659 (card 10), over the statistics of Amiri, Berdoz & Raskar 2023,
"Fundamentals of Task-Agnostic Data Valuation", https://arxiv.org/abs/2208.12354. No official code exists; the
graph matching, the structural distance and the blind message passing below are a reconstruction.

* ``relevance_diversity(buyer, seller)`` (``pca_value``): the buyer's principal directions u_j (those holding
  ``variance`` of its variance; null directions dropped), its eigenvalues l_j and the seller's variance along
  them l^_j = u_j' S_seller u_j; relevance R = geomean_j min(l, l^) / max(l, l^), diversity D = geomean_j
  |l - l^| / max(l, l^). R = 1, D = 0 for identical data; R + D <= 1 always. Any two matrices with the same
  columns: graph features, or texts embedded by one backbone.
* ``graph_value(buyer, seller)`` (``graph_value``): (1) match the seller's nodes to the buyer's on structure
  alone (``scipy.optimize.quadratic_assignment``, FAQ, the best of ``restarts`` random starts and the
  barycentre; the smaller graph is padded with isolated nodes); (2) the structural distance
  W^2 = tr(Lb+) + tr(Ls+) - 2 tr((Lb+^1/2 Ls+ Lb+^1/2)^1/2), the 2-Wasserstein distance between the graph signal
  distributions N(0, L+) (GOT, Maretic et al. 2019), with the seller's Laplacian permuted by the matching;
  (3) "blind" message passing: both feature sets propagated K times by one shared operator, the normalised
  average of the two aligned adjacencies, so neither party's structure is applied to the other's features
  alone; (4) R and D on the propagated features.

A disconnected graph makes W depend on how the pseudo-inverse treats each component: it is computed, with a
warning that names the number of components (sample connected subgraphs: ``connected_subgraph``).
"""

from __future__ import annotations

import warnings

import numpy as np

from anytask.core.errors import AnytaskError
from anytask.methods.graphs.base import VALUATIONS


def _matrix(X, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) < 2:
        raise AnytaskError(f"{name}: need a 2-D array with at least 2 rows, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise AnytaskError(f"{name} contains NaN or infinity")
    return X


@VALUATIONS.register("pca_value", reference="Amiri, Berdoz & Raskar 2023, https://arxiv.org/abs/2208.12354",
                     input="features", output="values",
                     summary="relevance and diversity of a seller's data along the buyer's principal directions")
def relevance_diversity(buyer, seller, *, variance: float = 0.95, eps: float = 1e-12) -> dict:
    """``{"relevance", "diversity", "components"}`` of ``seller`` (n_s, F) for ``buyer`` (n_b, F)."""
    Xb, Xs = _matrix(buyer, "buyer"), _matrix(seller, "seller")
    if Xb.shape[1] != Xs.shape[1]:
        raise AnytaskError(f"buyer has {Xb.shape[1]} columns, seller {Xs.shape[1]}: value data in one feature space "
                           "(the same backbone, or a shared projection)")
    if not 0 < variance <= 1:
        raise AnytaskError(f"variance={variance}: a fraction in (0, 1]")
    cb = np.cov(Xb, rowvar=False).reshape(Xb.shape[1], Xb.shape[1])
    cs = np.cov(Xs, rowvar=False).reshape(Xs.shape[1], Xs.shape[1])
    lam, U = np.linalg.eigh(cb)
    order = np.argsort(lam)[::-1]
    lam, U = lam[order], U[:, order]
    keep = lam > eps * max(lam.max(), eps)
    lam, U = lam[keep], U[:, keep]
    if not len(lam):
        raise AnytaskError("the buyer's data has no variance: every row is the same")
    d = int(np.searchsorted(np.cumsum(lam) / lam.sum(), variance - 1e-12) + 1)
    lam, U = lam[:d], U[:, :d]
    seen = np.einsum("fj,fg,gj->j", U, cs, U).clip(min=0)
    hi = np.maximum(lam, seen)
    ratio = np.minimum(lam, seen) / hi
    gap = np.abs(lam - seen) / hi

    def geomean(v):
        return 0.0 if (v <= 0).any() else float(np.exp(np.mean(np.log(v))))

    return {"relevance": geomean(ratio), "diversity": geomean(gap), "components": d}


def _adjacency(graph, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(A, X)`` dense from a PyG Data or an ``(X, edge_index)`` pair."""
    if isinstance(graph, tuple) and len(graph) == 2:
        X, ei = graph
    elif hasattr(graph, "edge_index") and hasattr(graph, "x"):
        X, ei = graph.x.numpy(), graph.edge_index.numpy()
    else:
        raise AnytaskError(f"{name}: give a PyG Data or an (X, edge_index) pair")
    X = _matrix(X, f"{name} features")
    ei = np.asarray(ei, dtype=np.int64).reshape(2, -1)
    if ei.size and (ei.min() < 0 or ei.max() >= len(X)):
        raise AnytaskError(f"{name}: edge_index refers to nodes outside 0..{len(X) - 1}")
    A = np.zeros((len(X), len(X)))
    A[ei[0], ei[1]] = 1
    A = np.maximum(A, A.T)
    np.fill_diagonal(A, 0)
    return A, X


def _components(A: np.ndarray) -> int:
    from scipy.sparse.csgraph import connected_components

    return int(connected_components(A, directed=False)[0])


def _signature_start(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """A permutation matrix pairing the nodes of A and B in the order of their (degree, neighbours' degree sum,
    2-hop walk count) signatures: a start that FAQ refines (random starts alone rarely recover a permutation of
    a sparse, tree-like graph)."""
    def order(M):
        d = M.sum(1)
        return np.lexsort((M @ (M @ d), M @ d, d))

    P = np.zeros_like(A, dtype=float)
    P[order(A), order(B)] = 1
    return P


def match_graphs(A_buyer: np.ndarray, A_seller: np.ndarray, *, seed: int = 0, restarts: int = 3) -> np.ndarray:
    """``perm`` with seller node ``perm[i]`` matched to buyer node i (equal sizes), maximising the overlap
    tr(A_b P A_s P'): FAQ from a degree-signature pairing, the barycentre and ``restarts`` random starts,
    the best kept."""
    from scipy.optimize import quadratic_assignment

    best, best_score = None, -np.inf
    starts = [_signature_start(A_buyer, A_seller), "barycenter"] + ["randomized"] * int(restarts)
    for r, start in enumerate(starts):
        res = quadratic_assignment(A_buyer, A_seller, method="faq",
                                   options={"maximize": True, "P0": start, "rng": np.random.default_rng(seed + r)})
        if res.fun > best_score:
            best, best_score = res.col_ind, res.fun
    return np.asarray(best)


def _pinv_laplacian(A: np.ndarray) -> np.ndarray:
    L = np.diag(A.sum(1)) - A
    return np.linalg.pinv(L, hermitian=True)


def _sqrt_psd(M: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh((M + M.T) / 2)
    return (V * np.sqrt(w.clip(min=0))) @ V.T


def structural_distance(A_buyer: np.ndarray, A_seller_aligned: np.ndarray) -> float:
    """The 2-Wasserstein distance between N(0, Lb+) and N(0, Ls+) (aligned seller)."""
    Pb, Ps = _pinv_laplacian(A_buyer), _pinv_laplacian(A_seller_aligned)
    root = _sqrt_psd(Pb)
    cross = np.trace(_sqrt_psd(root @ Ps @ root))
    return float(np.sqrt(max(np.trace(Pb) + np.trace(Ps) - 2 * cross, 0.0)))


def _shared_operator(A1: np.ndarray, A2: np.ndarray) -> np.ndarray:
    A = (A1 + A2) / 2 + np.eye(len(A1))
    d = A.sum(1) ** -0.5
    return A * d[:, None] * d[None, :]


def _pad(A: np.ndarray, n: int) -> np.ndarray:
    """``A`` with isolated nodes added up to ``n``."""
    Ap = np.zeros((n, n))
    Ap[:len(A), :len(A)] = A
    return Ap


@VALUATIONS.register("graph_value", reference="Falahati & Amiri 2024, https://arxiv.org/abs/2408.12659",
                     input="graphs", output="values",
                     summary="structural distance (matched graph Wasserstein) and featural relevance / diversity")
def graph_value(buyer, seller, *, hops: int = 2, variance: float = 0.95, seed: int = 0, restarts: int = 3) -> dict:
    """``{"W", "relevance", "diversity", "components", "nodes"}`` of a seller graph for a buyer graph (PyG Data or
    ``(X, edge_index)``; the same feature columns)."""
    Ab, Xb = _adjacency(buyer, "buyer")
    As, Xs = _adjacency(seller, "seller")
    if Xb.shape[1] != Xs.shape[1]:
        raise AnytaskError(f"buyer nodes have {Xb.shape[1]} features, seller nodes {Xs.shape[1]}: project both into "
                           "one feature space first")
    if hops < 0:
        raise AnytaskError(f"hops={hops}: 0 or more rounds of message passing")
    for A, who in ((Ab, "buyer"), (As, "seller")):
        k = _components(A)
        if k > 1:
            warnings.warn(f"the {who} graph has {k} connected components; W is then unstable (the Laplacian "
                          "pseudo-inverse treats each apart). Sample connected subgraphs (connected_subgraph)",
                          stacklevel=2)
    n = max(len(Ab), len(As))
    Ab_p, As_p = _pad(Ab, n), _pad(As, n)
    perm = match_graphs(Ab_p, As_p, seed=seed, restarts=restarts)
    As_aligned = As_p[np.ix_(perm, perm)]
    W = structural_distance(Ab_p, As_aligned)
    S = _shared_operator(Ab_p, As_aligned)
    # both feature sets travel by the same operator; padded (isolated) rows carry zeros and are left out
    Xb_full = np.pad(Xb, ((0, n - len(Xb)), (0, 0)))
    Xs_full = np.pad(Xs, ((0, n - len(Xs)), (0, 0)))[perm]
    real_s = perm < len(Xs)  # the aligned rows that hold a real seller node
    for _ in range(int(hops)):
        Xb_full, Xs_full = S @ Xb_full, S @ Xs_full
    rd = relevance_diversity(Xb_full[:len(Xb)], Xs_full[real_s], variance=variance)
    return {"W": W, **rd, "nodes": [len(Xb), len(Xs)]}


def connected_subgraph(graph, size: int, *, seed: int = 0, exclude=None):
    """A PyG Data: the subgraph induced by ``size`` nodes reached breadth-first from a random start (a random
    neighbour order), so it is connected; nodes in ``exclude`` (a boolean mask) are never taken."""
    import torch

    rng = np.random.default_rng(seed)
    n = graph.num_nodes
    ei = graph.edge_index.numpy()
    nbrs = [[] for _ in range(n)]
    for a, b in ei.T:
        nbrs[a].append(b)
    banned = np.zeros(n, bool) if exclude is None else np.asarray(exclude, bool).copy()
    for _ in range(100):
        start = int(rng.choice(np.flatnonzero(~banned)))
        seen, queue, order = {start}, [start], [start]
        while queue and len(order) < size:
            v = queue.pop(0)
            for u in rng.permutation(nbrs[v]):
                if u not in seen and not banned[u] and len(order) < size:
                    seen.add(int(u))
                    queue.append(int(u))
                    order.append(int(u))
        if len(order) == size:
            nodes = torch.tensor(sorted(order))
            data = graph.subgraph(nodes)  # induced, nodes relabelled 0..size-1 in sorted order
            data.node_ids = nodes
            return data
    raise AnytaskError(f"no connected subgraph of {size} nodes found from 100 random starts; ask for fewer")
