"""Task vectors, merge methods (task arithmetic, TIES, DARE as sparsify x consensus), anytask merge."""

import shutil

import pytest
import torch
import yaml

from anytask.core.errors import AnytaskError
from anytask.methods.merging import MERGES, disentanglement_error, merge_folders, merge_state_dicts, read_config, task_vector
from anytask.methods.merging.methods import combine, sparsify


def _models(seed=0, n=3):
    g = torch.Generator().manual_seed(seed)
    base = {"w": torch.randn(4, 5, generator=g), "b": torch.randn(5, generator=g), "step": torch.tensor(3)}
    tuned = [{k: (v + 0.1 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v) for k, v in base.items()}
             for _ in range(n)]
    return base, tuned


def test_task_arithmetic_adds_and_negates():
    base, tuned = _models()
    merged = merge_state_dicts(base, tuned, [1.0, -1.0, 0.5], method="task_arithmetic", scale=0.3)
    taus = [task_vector(base, t) for t in tuned]
    expected = base["w"] + 0.3 * (taus[0]["w"] - taus[1]["w"] + 0.5 * taus[2]["w"])
    torch.testing.assert_close(merged["w"], expected)
    assert torch.equal(merged["step"], base["step"])  # integer buffers pass through
    # lambda = 1 with one model gives the model back
    torch.testing.assert_close(merge_state_dicts(base, tuned[:1])["b"], tuned[0]["b"])


def test_ties_by_hand():
    taus = [torch.tensor([0.5, -0.1, 0.3, 0.0, 0.6]), torch.tensor([-0.4, 0.25, 0.1, -0.2, -0.6])]
    trimmed = [sparsify(t, "magnitude", 0.6) for t in taus]  # keep floor(0.6 * 5) = 3 each
    assert torch.equal(trimmed[0], torch.tensor([0.5, 0.0, 0.3, 0.0, 0.6]))
    assert torch.equal(trimmed[1], torch.tensor([-0.4, 0.25, 0.0, 0.0, -0.6]))
    # elected signs of the sums: +, +, +, none, sgn(0) = 0; agreeing entries averaged
    torch.testing.assert_close(combine(trimmed, [1.0, 1.0], "sign"), torch.tensor([0.5, 0.25, 0.3, 0.0, 0.0]))


def test_dare_drops_and_rescales_unbiasedly():
    tau = torch.full((200_000,), 0.2)
    g = torch.Generator().manual_seed(0)
    out = sparsify(tau, "random", 0.25, g)
    kept = out != 0
    assert abs(kept.float().mean() - 0.25) < 0.01
    torch.testing.assert_close(out[kept], torch.full((int(kept.sum()),), 0.8))
    assert abs(out.mean() - 0.2) < 0.01  # same expectation as the task vector


def test_named_methods_are_points_of_the_generalized_one():
    base, tuned = _models(1)
    for name, params in [("ties", {"density": 0.3}), ("task_arithmetic", {}), ("dare_ties", {"density": 0.6})]:
        spec = MERGES.get(name)(**params)
        general = {"sparsify": spec["sparsify_method"], "density": spec["density"], "consensus": spec["consensus"]}
        a = merge_state_dicts(base, tuned, method=name, seed=3, **params)
        b = merge_state_dicts(base, tuned, method="generalized", seed=3, **general)
        for k in base:
            torch.testing.assert_close(a[k], b[k])


def test_disentanglement_error_is_zero_for_tasks_on_separate_inputs():
    w0 = torch.zeros(4)
    taus = [torch.tensor([1.0, 0, 0, 0]), torch.tensor([0, 1.0, 0, 0])]
    data = [torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0]]), torch.tensor([[0, 1.0, 0, 0], [0, -1.0, 0, 0]])]

    def predict(alphas, X):
        return torch.sign(X @ (w0 + sum(a * t for a, t in zip(alphas, taus))))

    assert disentanglement_error(predict, [1.0, 1.0], data) == 0.0
    taus[1] = torch.tensor([-3.0, 1.0, 0, 0])  # task 2's vector now overrides task 1's inputs
    assert disentanglement_error(predict, [1.0, 1.0], data) == 1.0


def test_bad_models_and_parameters_are_clear_errors():
    base, tuned = _models()
    with pytest.raises(AnytaskError, match="at least one"):
        merge_state_dicts(base, [])
    with pytest.raises(AnytaskError, match=r"missing keys \['w'\]"):
        merge_state_dicts(base, [{k: v for k, v in tuned[0].items() if k != "w"}])
    with pytest.raises(AnytaskError, match="has shape"):
        merge_state_dicts(base, [{**tuned[0], "w": torch.zeros(5, 4)}])
    with pytest.raises(AnytaskError, match="float64.*one dtype"):
        merge_state_dicts(base, [{**tuned[0], "w": tuned[0]["w"].double()}])
    bad = tuned[0]["w"].clone()
    bad[1, 2] = float("nan")
    with pytest.raises(AnytaskError, match="NaN or inf"):
        merge_state_dicts(base, [{**tuned[0], "w": bad}])
    with pytest.raises(AnytaskError, match=r"lambda \(scale\) must be a finite number in \[-10, 10\]"):
        merge_state_dicts(base, tuned, scale=float("nan"))
    with pytest.raises(AnytaskError, match="density must be in"):
        merge_state_dicts(base, tuned, method="ties", density=0.0)
    with pytest.raises(AnytaskError, match=r"bad parameters \['lamda'\] for merge method 'ties'; valid parameters: "
                                            "scale, density"):
        merge_state_dicts(base, tuned, method="ties", lamda=0.5)
    with pytest.raises(AnytaskError, match="unknown merge method 'tie'"):
        merge_state_dicts(base, tuned, method="tie")


def test_merge_cli_writes_a_loadable_backbone(bert_folders, tmp_path):
    from safetensors.torch import load_file

    from anytask.backbones import create_backbone
    from anytask.apps.cli import main

    base, t0, t1 = bert_folders
    cfg = tmp_path / "merge.yaml"
    cfg.write_text(yaml.safe_dump({"base": str(base), "method": "ties", "parameters": {"scale": 0.7, "density": 0.3},
                                   "models": [{"path": str(t0)}, {"path": str(t1), "weight": 0.5}]}))
    before = (base / "model.safetensors").read_bytes()
    main(["merge", str(cfg), str(tmp_path / "out"), "--no-progress"])
    assert (base / "model.safetensors").read_bytes() == before  # inputs untouched
    merged = load_file(str(tmp_path / "out" / "model.safetensors"))
    expected = merge_state_dicts(*[load_file(str(f / "model.safetensors")) for f in (base,)],
                                 [load_file(str(t0 / "model.safetensors")), load_file(str(t1 / "model.safetensors"))],
                                 [1.0, 0.5], method="ties", scale=0.7, density=0.3)
    for k in expected:
        torch.testing.assert_close(merged[k], expected[k])
    card = (tmp_path / "out" / "README.md").read_text()  # its own model card: method, models, weights
    assert "ties" in card and str(t1) in card
    emb = create_backbone(f"hf:{tmp_path / 'out'}").embed(["a merged model embeds text"])
    assert emb.shape == (1, 32) and torch.isfinite(emb).all()


def test_merge_config_and_model_errors_leave_no_output(bert_folders, tmp_path):
    from safetensors.torch import load_file, save_file

    base, t0, _ = bert_folders
    cfg = tmp_path / "m.yaml"
    cfg.write_text(yaml.safe_dump({"base": str(base), "models": []}))
    with pytest.raises(AnytaskError, match="models: List should have at least 1 item"):
        read_config(cfg)
    cfg.write_text("base: [unclosed")
    with pytest.raises(AnytaskError, match="not valid YAML"):
        read_config(cfg)
    cfg.write_text(yaml.safe_dump({"base": str(base), "models": [{"path": str(t0)}], "lamda": 1}))
    with pytest.raises(AnytaskError, match="lamda: Extra inputs are not permitted"):
        read_config(cfg)
    # every problem in one message, not one per attempt
    cfg.write_text(yaml.safe_dump({"base": str(tmp_path / "nowhere"), "models": [{"path": str(t0), "weight": "x"}],
                                   "method": "tiez", "lamda": 1}))
    with pytest.raises(AnytaskError, match="has 4 problem") as e:
        read_config(cfg)
    for part in ("models.0.weight", "lamda: Extra inputs", "Did you mean 'ties'", "base: no model.safetensors"):
        assert part in str(e.value)
    broken = tmp_path / "broken"
    shutil.copytree(t0, broken)
    sd = load_file(str(t0 / "model.safetensors"))
    key = sorted(sd)[-1]
    sd[key] = sd[key].clone()
    sd[key].view(-1)[0] = float("nan")
    save_file(sd, str(broken / "model.safetensors"))
    cfg.write_text(yaml.safe_dump({"base": str(base), "models": [{"path": str(broken)}]}))
    with pytest.raises(AnytaskError, match="NaN or inf"):
        merge_folders(read_config(cfg), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
