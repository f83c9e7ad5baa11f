"""SAM / ASAM / TRAM (anytask.methods.finetune.optim) on a small MLP, and TRAM inside the fine-tuning loop."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from anytask.core.errors import AnytaskError
from anytask.methods.finetune.optim import OPTIMIZERS, SharpnessAware, kl_divergence

X = torch.randn(16, 5, generator=torch.Generator().manual_seed(0))
Y = torch.arange(16) % 3


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))


def two_pass(model, opt, radius=None):
    opt.zero_grad()
    F.cross_entropy(model(X), Y).backward()
    opt.first_step(radius)
    opt.zero_grad()
    F.cross_entropy(model(X), Y).backward()
    opt.second_step()


def params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_tram_with_a_constant_distance_is_asam_exactly():
    a, t = mlp(), mlp()
    asam = SharpnessAware(a.parameters(), torch.optim.AdamW, mode="asam", rho=0.3, lr=1e-2)
    tram = SharpnessAware(t.parameters(), torch.optim.AdamW, mode="tram", lr=1e-2)
    for _ in range(5):
        two_pass(a, asam)
        two_pass(t, tram, tram.radius(0.3))
    assert torch.equal(params(a), params(t))


def test_tram_with_zero_distance_is_the_base_optimizer():
    t, b = mlp(), mlp()
    tram = SharpnessAware(t.parameters(), torch.optim.AdamW, mode="tram", lr=1e-2)
    base = torch.optim.AdamW(b.parameters(), lr=1e-2)
    for _ in range(5):
        two_pass(t, tram, tram.radius(torch.tensor(0.0)))
        base.zero_grad()
        F.cross_entropy(b(X), Y).backward()
        base.step()
    assert torch.equal(params(t), params(b))


@pytest.mark.parametrize("mode,expected", [("sam", lambda p, g: g), ("asam", lambda p, g: p * p * g)])
def test_first_step_moves_along_the_papers_direction_and_second_step_restores(mode, expected):
    model = mlp()
    before = params(model).clone()
    opt = SharpnessAware(model.parameters(), torch.optim.SGD, mode=mode, rho=0.1, lr=0.0)
    F.cross_entropy(model(X), Y).backward()
    grad = torch.cat([p.grad.flatten() for p in model.parameters()])
    opt.first_step()
    eps = params(model) - before
    direction = expected(before, grad)
    assert torch.allclose(eps, direction / direction.norm() * eps.norm(), atol=1e-7)
    scale = before.abs() if mode == "asam" else torch.ones_like(before)
    assert math.isclose(float((eps / scale.where(scale > 0, torch.ones_like(scale))).norm()), 0.1, rel_tol=1e-4)
    opt.zero_grad()
    F.cross_entropy(model(X), Y).backward()
    opt.second_step()  # lr 0: the weights must come back bit for bit
    assert torch.equal(params(model), before)


def test_kl_distance_is_zero_for_identical_outputs_and_matches_a_hand_computation():
    z = torch.randn(4, 3)
    assert float(kl_divergence(z, z)) == pytest.approx(0.0, abs=1e-7)
    p, q = torch.softmax(torch.tensor([[2.0, 0.0]]), -1), torch.softmax(torch.tensor([[0.0, 1.0]]), -1)
    hand = float((p * (p / q).log()).sum())
    assert float(kl_divergence(torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 1.0]]))) == pytest.approx(hand, rel=1e-5)


def test_bad_use_gets_clear_errors():
    model = mlp()
    with pytest.raises(AnytaskError, match="unknown sharpness-aware mode"):
        SharpnessAware(model.parameters(), mode="adam")
    with pytest.raises(AnytaskError, match="rho must be"):
        SharpnessAware(model.parameters(), mode="sam", rho=-1.0)
    tram = SharpnessAware(model.parameters(), mode="tram", lr=1e-3)
    with pytest.raises(AnytaskError, match="trust-region distance"):
        tram.radius(None)
    with pytest.raises(AnytaskError, match="finite number"):
        tram.radius(float("nan"))
    with pytest.raises(AnytaskError, match="two passes"):
        tram.step()
    assert set(OPTIMIZERS.names()) == {"sam", "asam", "tram"}


def test_a_scheduler_sees_the_base_learning_rate():
    model = mlp()
    opt = SharpnessAware(model.parameters(), torch.optim.SGD, mode="sam", lr=0.5)
    for g in opt.param_groups:
        g["lr"] = 0.25
    assert opt.base_optimizer.param_groups[0]["lr"] == 0.25


@pytest.mark.parametrize("optimizer,target", [("sam", "previous"), ("tram", "previous"), ("tram", "initial"),
                                              ("tram", "noise")])
def test_finetune_with_sharpness_aware_optimizers(bert_folders, tmp_path, optimizer, target):
    from anytask.methods.finetune.finetune import finetune

    base = bert_folders[0]
    before = (base / "model.safetensors").read_bytes()
    texts = ["great film", "loved it", "a joy", "brilliant", "terrible", "awful plot", "a waste", "dull"]
    info = finetune(base, texts, [1, 1, 1, 1, 0, 0, 0, 0], ["negative", "positive"], tmp_path / "ft", steps=6,
                    lr=3e-3, batch_size=8, optimizer=optimizer, tram_target=target, progress=False)
    assert (base / "model.safetensors").read_bytes() == before
    saved = json.loads((tmp_path / "ft" / "finetune.json").read_text())
    assert saved["optimizer"] == optimizer
    if optimizer == "tram":
        d = [h["distance"] for h in info["history"]]
        assert all(np.isfinite(d)) and min(d) >= 0 and max(d) > 0


def test_finetune_rejects_unknown_optimizer_and_noise_on_linearised(bert_folders, tmp_path):
    from anytask.methods.finetune.finetune import finetune

    with pytest.raises(AnytaskError, match="unknown optimizer"):
        finetune(bert_folders[0], ["a", "b"], [0, 1], ["x", "y"], tmp_path / "o", optimizer="lion", progress=False)
    with pytest.raises(AnytaskError, match="standard fine-tuning"):
        finetune(bert_folders[0], ["a", "b"], [0, 1], ["x", "y"], tmp_path / "o", optimizer="tram",
                 tram_target="noise", linearized=True, progress=False)
