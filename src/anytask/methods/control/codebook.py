"""Task-conditioned codebook bottleneck for embodied agents (Eftekhar, Zeng, Duan, Farhadi, Kembhavi, Krishna,
"Selective Visual Representations Improve Convergence and Generalization for Embodied AI", ICLR 2024,
https://arxiv.org/abs/2311.04193; official code allenai/procthor-rl, ``ResnetTensorNavActorCriticCodebook``).

The EmbCLIP pipeline at grid-world scale: frozen visual features per view cell (a fixed random conv, the stand-in
for frozen CLIP) -> 1x1 conv compressor -> the goal's embedding broadcast over the cells -> 1x1 conv combiner ->
flatten, concatenated with the previous action's embedding = ``E``; a GRU and a linear actor on top. The codebook
sits between ``E`` and the GRU (the paper's module)::

    P = softmax(Linear(E -> K)(ReLU(E)));  P = Dropout(0.1)(P)     # on the probabilities, not renormalised
    E_hat = Linear(D_c -> |E|)(P @ C),     C in R^{K x D_c} ~ N(0, 1), K = 256, D_c = 10

trained only through the task loss (no codebook loss). ``codebook="none"`` is EmbCLIP, ``"random"`` freezes ``C``.
Training here is the card's behaviour-cloning proxy for PPO: episodes of the environment's shortest-path expert, then
DAgger rounds (the policy acts, the expert labels what it saw), cross-entropy over whole episodes through the GRU.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn
from tqdm.auto import tqdm

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.core.registry import Registry
from anytask.methods.control.base import adam

POLICIES: Registry = Registry("navigation policy", family="control")
N_ACTIONS = 4


class Codebook(nn.Module):
    """``E -> E_hat`` through a soft combination of ``K`` learnable codes (the paper's module, exactly)."""

    def __init__(self, dim: int, k: int = 256, code_dim: int = 10, dropout: float = 0.1, learned: bool = True):
        super().__init__()
        self.indexer, self.up = nn.Linear(dim, k), nn.Linear(code_dim, dim)
        self.codes = nn.Parameter(torch.randn(k, code_dim), requires_grad=learned)
        self.drop = nn.Dropout(dropout)
        self.last_probs: torch.Tensor | None = None

    def probs(self, e: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.indexer(torch.relu(e)), -1)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        p = self.probs(e)
        self.last_probs = p.detach()
        return self.up(self.drop(p) @ self.codes)


def perplexity(probs: torch.Tensor) -> float:
    """exp(entropy) of the average code usage: how many codes are in use (K at best, 1 when collapsed)."""
    mean = probs.reshape(-1, probs.shape[-1]).mean(0)
    return float(torch.exp(-(mean * torch.log(mean.clamp_min(1e-12))).sum()))


class NavNet(nn.Module):
    def __init__(self, view_shape, n_goals: int, codebook: str, k: int, code_dim: int, dropout: float, seed: int):
        super().__init__()
        h, w, _ = view_shape
        g = torch.Generator().manual_seed(int(seed) + 104729)
        self.visual = nn.Conv2d(3, 64, 3, stride=3)  # frozen random features, one 64-d vector per 3x3 cell
        for prm in self.visual.parameters():
            prm.data = torch.randn(prm.shape, generator=g) * 0.1
            prm.requires_grad_(False)
        cells = (h // 3) * (w // 3)
        self.compress = nn.Sequential(nn.Conv2d(64, 64, 1), nn.ReLU(), nn.Conv2d(64, 16, 1), nn.ReLU())
        self.goal = nn.Embedding(n_goals, 16)
        self.combine = nn.Sequential(nn.Conv2d(32, 64, 1), nn.ReLU(), nn.Conv2d(64, 16, 1), nn.ReLU())
        self.prev_action = nn.Embedding(N_ACTIONS + 1, 6)  # index N_ACTIONS = "no action yet"
        self.dim = 16 * cells + 6
        self.codebook = None if codebook == "none" else Codebook(self.dim, k, code_dim, dropout, codebook == "learned")
        self.gru = nn.GRU(self.dim, 128, batch_first=True)
        self.actor = nn.Linear(128, N_ACTIONS)

    def embed(self, view: torch.Tensor, goal: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """``E`` for views ``(B, T, H, W, 3)`` uint8, goals ``(B,)``, previous actions ``(B, T)``."""
        B, T = view.shape[:2]
        x = self.visual(view.reshape(B * T, *view.shape[2:]).permute(0, 3, 1, 2).float() / 255)
        x = self.compress(x)
        gmap = self.goal(goal).repeat_interleave(T, 0)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        x = self.combine(torch.cat([x, gmap], 1)).flatten(1).view(B, T, -1)
        return torch.cat([x, self.prev_action(prev)], -1)

    def forward(self, view, goal, prev, h=None):
        e = self.embed(view, goal, prev)
        z = self.codebook(e) if self.codebook is not None else e
        out, h = self.gru(z, h)
        return self.actor(out), h, e, z


class NavPolicy(BaseEstimator, Pretrained):
    """A recurrent object-goal navigation policy over frozen visual features, trained by BC + DAgger."""

    codebook_default = "learned"

    def __init__(self, codebook: str | None = None, k: int = 256, code_dim: int = 10, dropout: float = 0.1,
                 rounds: int = 4, episodes: int = 200, updates: int = 300, batch_size: int = 32, lr: float = 1e-3,
                 seed: int = 0, progress: bool = False):
        self.codebook, self.k, self.code_dim, self.dropout = codebook, k, code_dim, dropout
        self.rounds, self.episodes, self.updates, self.batch_size, self.lr = rounds, episodes, updates, batch_size, lr
        self.seed, self.progress = seed, progress

    @property
    def mode(self) -> str:
        return self.codebook or self.codebook_default

    def _check_params(self) -> None:
        if self.mode not in ("learned", "random", "none"):
            raise AnytaskError(f"codebook={self.codebook!r}: use 'learned', 'random' (frozen codes) or 'none'")
        for name in ("k", "code_dim", "rounds", "episodes", "updates", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise AnytaskError(f"{name}={v!r}: must be a positive integer")

    # -- rollouts -------------------------------------------------------------------------------------------------
    def _rollout(self, env, seed: int, *, expert_acts: bool, labels: bool = True, record: bool = False) -> dict:
        """One episode: the expert acts (``expert_acts``) or the policy acts greedily; with ``labels`` the expert's
        action is the label at every step either way (DAgger). Evaluation asks for no labels: no expert search."""
        obs, info = env.reset(seed=seed)
        views, labels_, prevs, infos, h, prev = [], [], [], [], None, N_ACTIONS
        shortest, moves, start = info["shortest"], 0, tuple(env.unwrapped.pos)
        base = env.unwrapped
        success = False
        for _ in range(base.max_steps):
            label = base.expert_action() if (labels or expert_acts) else -1
            views.append(obs["view"])
            labels_.append(label)
            prevs.append(prev)
            if record:
                infos.append(info)
            if expert_acts:
                a = label
            else:
                with torch.no_grad():
                    logits, h, _, _ = self.net_(torch.as_tensor(obs["view"])[None, None],
                                                torch.tensor([obs["goal"]]), torch.tensor([[prev]]), h)
                a = int(logits[0, -1].argmax())
            pos = tuple(base.pos)
            obs, _, term, trunc, info = env.step(a)
            moves += int(tuple(base.pos) != pos)
            prev = a
            if term or trunc:
                success = bool(info.get("success", False))
                break
        n = len(views)
        return {"view": np.stack(views), "label": np.array(labels_), "prev": np.array(prevs), "goal": obs["goal"],
                "success": success, "steps": n, "shortest": shortest, "moves": moves,
                "shortest_moves": int(base.dist_map[start]) if np.isfinite(base.dist_map[start]) else 0,
                "infos": infos}

    def _batch(self, episodes: list[dict], rng):
        """``batch_size`` episodes drawn at random, padded to the longest: views, goals, previous actions, expert
        labels, mask."""
        eps = [episodes[j] for j in rng.integers(len(episodes), size=int(self.batch_size))]
        T = max(e["steps"] for e in eps)
        view = np.zeros((len(eps), T, *eps[0]["view"].shape[1:]), np.uint8)
        label, prev = np.zeros((len(eps), T), np.int64), np.full((len(eps), T), N_ACTIONS, np.int64)
        mask = np.zeros((len(eps), T), bool)
        for b, e in enumerate(eps):
            n = e["steps"]
            view[b, :n], label[b, :n], prev[b, :n], mask[b, :n] = e["view"], e["label"], e["prev"], True
        return (torch.as_tensor(view), torch.tensor([e["goal"] for e in eps]), torch.as_tensor(prev),
                torch.as_tensor(label), torch.as_tensor(mask))

    def fit(self, env_id: str = "anytask/ObjectNav-v0", y=None, **env_kwargs):
        """Behaviour cloning from the environment's expert, then ``rounds - 1`` DAgger rounds of ``episodes``
        episodes each, ``updates`` gradient steps on all episodes so far after each round; ``history_`` keeps the
        success rate of the policy's own episodes after every round."""
        from anytask.data.envs import make_env

        self._check_params()
        env = make_env(env_id, **env_kwargs)
        if not hasattr(env.unwrapped, "expert_action"):
            raise AnytaskError(f"{env_id} has no expert_action(): NavPolicy trains by imitation of an environment's "
                               "shortest-path expert (anytask/ObjectNav-v0 has one)")
        torch.manual_seed(int(self.seed))
        rng = np.random.default_rng(int(self.seed))
        space = env.observation_space
        self.env_id_, self.env_kwargs_ = env_id, dict(env_kwargs)
        self.view_shape_, self.n_goals_ = tuple(space["view"].shape), int(space["goal"].n)
        self.net_ = NavNet(self.view_shape_, self.n_goals_, self.mode, int(self.k), int(self.code_dim),
                           float(self.dropout), int(self.seed))
        opt = adam([p for p in self.net_.parameters() if p.requires_grad], lr=float(self.lr), eps=1e-8)
        data, self.history_, next_seed = [], [], 0
        bar = tqdm(range(int(self.rounds)), desc=f"NavPolicy {self.mode}", disable=not self.progress, leave=False)
        for r in bar:
            self.net_.eval()
            new = [self._rollout(env, next_seed + i, expert_acts=(r == 0)) for i in range(int(self.episodes))]
            next_seed += int(self.episodes)
            if r > 0:
                self.history_.append({"round": r, "episodes": len(data), "success": float(np.mean(
                    [e["success"] for e in new]))})
            data += new
            self.net_.train()
            for _ in range(int(self.updates)):
                view, goal, prev, label, mask = self._batch(data, rng)
                logits, _, _, _ = self.net_(view, goal, prev)
                loss = nn.functional.cross_entropy(logits[mask], label[mask])
                opt.zero_grad()
                loss.backward()
                opt.step()
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        self.net_.eval()
        new = [self._rollout(env, next_seed + i, expert_acts=False, labels=False) for i in range(int(self.episodes))]
        self.history_.append({"round": int(self.rounds), "episodes": len(data),
                              "success": float(np.mean([e["success"] for e in new]))})
        env.close()
        return self

    # -- use ------------------------------------------------------------------------------------------------------
    def evaluate(self, env_id: str | None = None, *, episodes: int = 200, seed: int = 1_000_000, record: bool = False,
                 **env_kwargs) -> dict:
        """Success rate, SPL (success x shortest path / max(shortest, path moved)) and SEL (success x shortest
        episode length / max(shortest, actions taken)) of the greedy policy over seeded episodes (seeds not used in
        training); ``record=True`` also returns per-step ``E``, the GRU input and the environment's info."""
        from anytask.data.envs import make_env

        check_is_fitted(self, "net_")
        env_id = env_id or self.env_id_
        env = make_env(env_id, **{**self.env_kwargs_, **env_kwargs})
        if tuple(env.observation_space["view"].shape) != self.view_shape_:
            raise AnytaskError(f"this policy sees views {self.view_shape_}; {env_id} gives "
                               f"{tuple(env.observation_space['view'].shape)}")
        rows, E, Z, infos, probs = [], [], [], [], []
        for i in range(int(episodes)):
            ep = self._rollout(env, seed + i, expert_acts=False, labels=False, record=record)
            rows.append(ep)
            if record:
                with torch.no_grad():
                    _, _, e, z = self.net_(torch.as_tensor(ep["view"])[None], torch.tensor([ep["goal"]]),
                                           torch.as_tensor(ep["prev"])[None])
                E.append(e[0].numpy())
                Z.append(z[0].numpy())
                infos += ep["infos"]
                if self.net_.codebook is not None:
                    probs.append(self.net_.codebook.probs(e[0]))
        env.close()
        s = np.array([e["success"] for e in rows], float)
        spl = s * np.array([e["shortest_moves"] / max(e["shortest_moves"], e["moves"], 1) for e in rows])
        sel = s * np.array([e["shortest"] / max(e["shortest"], e["steps"]) for e in rows])
        out = {"success": float(s.mean()), "spl": float(spl.mean()), "sel": float(sel.mean()),
               "steps": float(np.mean([e["steps"] for e in rows]))}
        if probs:
            out["perplexity"] = perplexity(torch.cat(probs))
        if record:
            out.update(E=np.concatenate(E), Z=np.concatenate(Z), infos=infos,
                       episode=np.concatenate([np.full(e["steps"], i) for i, e in enumerate(rows)]))
        return out

    # -- save / load ----------------------------------------------------------------------------------------------
    def _get_state(self):
        check_is_fitted(self, "net_")
        extra = {"env_id": self.env_id_, "env_kwargs": self.env_kwargs_, "view_shape": list(self.view_shape_),
                 "n_goals": self.n_goals_, "history": self.history_}
        return extra, dict(self.net_.state_dict())

    @classmethod
    def _from_state(cls, params, extra, tensors):
        pol = cls(**params)
        pol.env_id_, pol.env_kwargs_ = extra["env_id"], dict(extra["env_kwargs"])
        pol.view_shape_, pol.n_goals_, pol.history_ = tuple(extra["view_shape"]), int(extra["n_goals"]), \
            extra["history"]
        pol.net_ = NavNet(pol.view_shape_, pol.n_goals_, pol.mode, int(pol.k), int(pol.code_dim),
                          float(pol.dropout), int(pol.seed))
        pol.net_.load_state_dict(tensors)
        pol.net_.eval()
        return pol


@POLICIES.register("codebook", reference="Eftekhar et al. 2024, https://arxiv.org/abs/2311.04193", saveable=True,
                   input="environments", output="actions")
class CodebookNav(NavPolicy):
    """EmbCLIP with the task-conditioned codebook bottleneck (K = 256 codes of 10 dims, dropout 0.1 on P)."""

    codebook_default = "learned"


@POLICIES.register("embclip", reference="Khandelwal et al. 2022 (EmbCLIP), https://arxiv.org/abs/2111.09888; the "
                   "codebook paper's baseline", saveable=True, input="environments", output="actions")
class EmbCLIPNav(NavPolicy):
    """The same pipeline with E fed straight to the GRU (no bottleneck): the baseline."""

    codebook_default = "none"
