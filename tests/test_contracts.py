"""Contract checks run over every entry of every registry (scikit-learn's test_common.py style).

``CHECKS`` maps a registry kind to its contract; a registry without one fails
``test_every_registry_has_a_contract``, so a new family cannot land unchecked. Heads over
features have the fuller sklearn-style contract in test_heads.py; here they also round-trip
integer labels, and every saveable class round-trips its stateful options.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.methods import all_registries

REGISTRIES = [r for r in all_registries() if r.family != "test"]
ENTRIES = [pytest.param(r, e, id=f"{r.kind}:{e.name}") for r in REGISTRIES for e in r.entries()]
CHECKS = {}


def check(kind):
    def deco(fn):
        CHECKS[kind] = fn
        return fn
    return deco


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_every_registry_has_a_contract():
    assert {r.kind for r in REGISTRIES} <= set(CHECKS), set(r.kind for r in REGISTRIES) - set(CHECKS)


@pytest.mark.parametrize("reg,entry", ENTRIES)
def test_contract(reg, entry, request):
    CHECKS[reg.kind](entry, request)


# -- the contracts ---------------------------------------------------------------------------------

@check("backbone")
def _backbone(entry, request):
    from anytask.backbones import create_backbone, state_hash

    if entry.name == "minilm":
        backbone = request.getfixturevalue("minilm")
    elif entry.name == "hf":
        backbone = create_backbone(f"hf:{request.getfixturevalue('bert_folders')[0]}")
    elif entry.name == "hf-causal":
        backbone = create_backbone(f"hf-causal:{request.getfixturevalue('tiny_lm_folder')}")
    elif entry.name == "smollm2":
        backbone = request.getfixturevalue("smollm2")
    elif entry.name in ("int8", "int8-torch"):
        backbone = create_backbone(f"{entry.name}:hf:{request.getfixturevalue('bert_folders')[0]}")
    elif entry.name == "minilm-l3":  # a student trained here: the tiny BERT stands in for it where it is looked up
        import shutil

        from anytask.backbones.hf import student_path

        home = request.getfixturevalue("tmp_path")
        request.getfixturevalue("monkeypatch").setenv("ANYTASK_HOME", str(home))
        shutil.copytree(request.getfixturevalue("bert_folders")[0], student_path(entry.name))
        backbone = create_backbone(entry.name)
    else:
        backbone = create_backbone(entry.name)
    before = state_hash(backbone)
    X = backbone.embed(["a short text", "another, longer text about football"])
    assert X.shape == (2, backbone.config.dim) and torch.isfinite(X).all()
    assert not any(p.requires_grad for p in backbone.parameters()) and not backbone.training
    assert state_hash(backbone) == before


@check("distiller")
def _distiller(entry, request):
    from anytask.backbones import create_backbone, state_hash

    folder = request.getfixturevalue("bert_folders")[0]
    teacher = create_backbone(f"hf:{folder}")
    before = state_hash(teacher)
    texts = [f"text {i} about {w}" for i in range(16) for w in ("sport", "films")]
    extra = {"autodistil": {"subspace": {"layers": (1, 2), "heads": (2, 4), "ffn_ratio": (1, 2)}}}
    d = entry.obj(teacher=f"hf:{folder}", steps=1, batch_size=8, progress=False, **extra.get(entry.name, {}))
    d.fit(texts)
    if hasattr(d, "search"):  # a distiller that searches student shapes picks one first
        d.search(texts[:8])
    student = create_backbone(f"hf:{d.save_student(request.getfixturevalue('tmp_path') / 'student')}")
    assert student.embed(texts[:2]).shape[0] == 2
    assert state_hash(create_backbone(f"hf:{folder}")) == before


@check("task distiller")
def _task_distiller(entry, request):
    folders = request.getfixturevalue("bert_folders")
    X = [f"text {i} about {w}" for i in range(8) for w in ("sport", "films")]
    y = ["sport", "films"] * 8
    m = entry.obj(student=folders[1], teacher=f"hf:{folders[0]}", unlabelled=X[:4], steps=1, batch_size=4,
                  progress=False).fit(X, y)
    assert set(m.predict(X)) <= {"sport", "films"} and m.predict_proba(X).shape == (16, 2)


@check("image distiller")
def _image_distiller(entry, request):
    from anytask.methods.distill.g2sd import MAETeacher

    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (60, 8, 8)).astype(np.float32)
    y = np.where(X[:, :4].mean((1, 2)) > X[:, 4:].mean((1, 2)), "top", "bottom")
    teacher = MAETeacher(X, (y == "top").astype(int), image=8, patch=4, dim=16, depth=1, heads=2, dec_dim=8,
                         dec_depth=1, pretrain_steps=2, finetune_steps=2, batch_size=16)
    params = dict(teacher=teacher, patch=4, dim=8, depth=1, heads=2, dec_dim=8, dec_depth=1, pretrain_steps=2,
                  finetune_steps=2, batch_size=16, teacher_block=1, seed=0)
    m = entry.obj(**params).fit(X, y)
    assert set(m.predict(X)) <= {"top", "bottom"} and m.decision_function(X).shape == (60, 2)
    np.testing.assert_allclose(entry.obj(**params).fit(X, y).decision_function(X), m.decision_function(X), atol=1e-5)


@check("multitask model")
def _multitask(entry, request):
    """Two tasks of different label types and sizes, plain and as (N, L, D) views: probabilities sum to 1, string
    labels keep their order, a second fit with the same seed is identical, the folder round-trips bit-exactly."""
    rng = np.random.default_rng(0)
    for shape in [(16,), (2, 16)]:
        X1, X2 = rng.normal(size=(40, *shape)).astype(np.float32), rng.normal(size=(30, *shape)).astype(np.float32)
        tasks = {"a": (X1, np.where(X1.reshape(40, -1)[:, 0] > 0, "pos", "neg")),
                 "b": (X2, (X2.reshape(30, -1)[:, 1] > 0).astype(int) + 3)}
        m = entry.obj(steps=5, hidden=8, seed=0).fit(tasks)
        p = m.predict_proba(X1, task="a")
        assert p.shape == (40, 2) and np.allclose(p.sum(1), 1)
        assert m.classes_["a"].tolist() == ["neg", "pos"] and m.classes_["b"].tolist() == [3, 4]
        again = entry.obj(steps=5, hidden=8, seed=0).fit(tasks)
        assert np.array_equal(again.decision_function(X2, task="b"), m.decision_function(X2, task="b"))
        back = io.load(io.save(m, request.getfixturevalue("tmp_path") / f"{entry.name}-{len(shape)}"))
        assert np.array_equal(back.decision_function(X2, task="b"), m.decision_function(X2, task="b"))
        assert back.predict(X1, task="a").tolist() == m.predict(X1, task="a").tolist()


@check("score head")
def _score_head(entry, request):
    """Numeric targets in, one number per row out, in the targets' units; the backbone is untouched; the folder
    round-trips bit-exactly; ordered labels are read through ``order``."""
    from anytask.backbones import state_hash
    from anytask.methods.scores import create_scorer

    tiny = request.getfixturevalue("tiny")
    texts = [f"{w} review {i}" for i in range(12) for w in ("awful bad", "fine okay", "great wonderful")]
    X = tiny.embed(texts).numpy()
    y = np.tile([1.0, 5.0, 10.0], 12)
    params = {"backbone": "tiny", "epochs": 2} if entry.caps.needs_backbone else {}
    before = state_hash(tiny)
    head = create_scorer(entry.name, **params).fit(X, y)
    assert state_hash(tiny) == before
    pred = head.predict(X)
    assert pred.shape == (36,) and np.isfinite(pred).all()
    back = io.load(io.save(head, request.getfixturevalue("tmp_path") / entry.name))
    assert np.array_equal(back.predict(X), pred)
    levels = np.tile(["low", "mid", "high"], 12)
    ordered = create_scorer(entry.name, order=["low", "mid", "high"], **params).fit(X, levels)
    assert ordered.target_range_ == (0.0, 2.0)
    with pytest.raises(AnytaskError, match="numeric targets"):
        create_scorer(entry.name, **params).fit(X, levels)


@check("modality mapper")
def _mapper(entry, request):
    """Signals in, unit vectors of the target space out; seeded; the folder round-trips bit-exactly."""
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(40, 12)).astype(np.float32), rng.normal(size=(40, 6)).astype(np.float32)
    m = entry.obj(hidden=16, epochs=3, batch_size=16).fit(X, T, T)
    Z = m.transform(X)
    assert Z.shape == (40, 6) and np.allclose(np.linalg.norm(Z, axis=1), 1, atol=1e-5)
    assert np.array_equal(entry.obj(hidden=16, epochs=3, batch_size=16).fit(X, T, T).transform(X), Z)
    back = io.load(io.save(m, request.getfixturevalue("tmp_path") / entry.name))
    assert np.array_equal(back.transform(X), Z)


@check("bag encoder")
def _bag_encoder(entry, request):
    """Multi-view bags of different sizes in, one finite embedding per bag out (from the first view); the folder
    round-trips bit-exactly; a bag of zero instances is a clear error."""
    rng = np.random.default_rng(0)
    bags = [[rng.normal(size=(int(rng.integers(3, 9)), 5)).astype(np.float32) for _ in range(2)] for _ in range(12)]
    params = {"dim": 8, "epochs": 1, "batch_size": 6, "max_tokens": 3, "local_pairs": 2} if entry.name != "mean_pool" \
        else {}
    m = entry.obj(**params).fit(bags)
    Z = m.transform(bags)
    assert Z.shape[0] == 12 and np.isfinite(Z).all()
    back = io.load(io.save(m, request.getfixturevalue("tmp_path") / entry.name))
    assert np.array_equal(back.transform(bags), Z)
    with pytest.raises(AnytaskError, match="at least one instance"):
        m.transform([[np.zeros((0, 5), np.float32), bags[0][1]]])


@check("source allocation")
def _allocation(entry, request):
    nu = np.array([0.0, -2.0, 1.0, 0.0])
    w = entry.obj(nu)
    assert w.shape == (4,) and (w >= 0).all() and w.sum() > 0


@check("head")
def _head(entry, request):
    from anytask.backbones import state_hash
    from anytask.methods.heads import create_head

    if entry.caps.input == "texts":
        pytest.skip("raw-text heads have their own contract tests: test_prompt_tuning.py, test_contrastive.py, test_lm_prompt.py")
    tiny = request.getfixturevalue("tiny")
    params = {"zero_shot": {"backbone": "tiny"}, "auto": {"backbone": "tiny"}, "icl": {"backbone": "tiny"},
              "concept_bottleneck": {"concepts": str(request.getfixturevalue("tiny_concepts")), "l1": 1e-4}}
    rng = np.random.default_rng(0)
    texts = [f"{w} {' '.join(rng.choice(list('xyzw'), 3))} {i}" for i in range(10)
             for w in ("fruit apple", "animal zebra", "mango tropical")]
    X = tiny.embed(texts).numpy()
    y = np.tile([7, 3, 5], 10)  # integer labels, not 0..C-1, not sorted by first appearance
    before = state_hash(tiny)
    head = create_head(entry.name, **params.get(entry.name, {})).fit(X, y)
    assert state_hash(tiny) == before
    proba = head.predict_proba(X)
    assert proba.shape == (30, 3) and np.allclose(proba.sum(1), 1.0)
    assert head.classes_.tolist() == [3, 5, 7]
    if entry.caps.saveable:
        tmp = request.getfixturevalue("tmp_path")
        folder = head.save_pretrained(tmp / "head")  # Hugging Face's names over anytask's folders, with a card
        assert (folder / "README.md").is_file()
        loaded = type(head).from_pretrained(folder)
        assert loaded.predict(X).dtype.kind == "i" and loaded.classes_.tolist() == [3, 5, 7]
        np.testing.assert_allclose(loaded.predict_proba(X), proba, atol=1e-6)


@check("regressor")
def _regressor(entry, request):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6)).astype(np.float32)
    y = X @ rng.normal(size=6) + 0.5
    reg = entry.obj().fit(X, y)
    pred = reg.predict(X)
    assert pred.shape == (40,) and np.corrcoef(pred, y)[0, 1] > 0.9
    if entry.caps.saveable:
        loaded = type(reg).from_pretrained(reg.save_pretrained(request.getfixturevalue("tmp_path") / "reg"))
        np.testing.assert_allclose(loaded.predict(X), pred, atol=1e-6)


@check("continual learner")
def _learner(entry, request):
    from anytask.data import make_stream
    from anytask.methods.continual import make_learner

    tasks = make_stream("synthetic", seed=0)[:2]
    learner = make_learner(entry.name, n_tasks=2, seed=0)
    for t, task in enumerate(tasks):  # integer task ids: they must survive a save / load
        for i in range(0, 400, 50):
            learner.partial_fit(task.X_train[i:i + 50], task.y_train[i:i + 50],
                                task=t if entry.caps.task_ids else None)
    learner.finish()
    pred = learner.predict(tasks[0].X_test)
    assert pred.shape == (len(tasks[0].X_test),)
    if entry.caps.saveable:
        loaded = io.load(io.save(learner, request.getfixturevalue("tmp_path") / "learner"))
        np.testing.assert_array_equal(loaded.predict(tasks[0].X_test), pred)
        if entry.caps.task_ids:
            np.testing.assert_array_equal(loaded.predict(tasks[1].X_test, task=1),
                                          learner.predict(tasks[1].X_test, task=1))


@check("merge method")
def _merge(entry, request):
    from anytask.methods.merging import merge_state_dicts

    if entry.caps.learned:  # coefficients come from data: its identities are in test_atlas.py
        with pytest.raises(AnytaskError, match="learns its coefficients"):
            merge_state_dicts({"w": torch.zeros(2)}, [{"w": torch.ones(2)}], method=entry.name)
        return
    g = torch.Generator().manual_seed(0)
    base = {"w": torch.randn(4, 3, generator=g), "ids": torch.arange(3)}
    same = merge_state_dicts(base, [base, base], method=entry.name)
    assert all(torch.equal(same[k], base[k]) for k in base)  # merging the base with itself is the base
    tuned = {"w": base["w"] + torch.randn(4, 3, generator=g), "ids": base["ids"]}
    zero = merge_state_dicts(base, [tuned], method=entry.name, scale=0.0)
    assert torch.equal(zero["w"], base["w"]) and zero["w"].dtype == base["w"].dtype


@check("index")
def _index(entry, request):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 6)).astype(np.float32)
    index = entry.obj().fit(X, [f"d{i}" for i in range(60)])
    scores, ids = index.search(X[:5], k=3)
    assert scores.shape == ids.shape == (5, 3) and (np.diff(scores, axis=1) <= 1e-6).all()  # best first
    assert ids[:, 0].tolist() == [f"d{i}" for i in range(5)]  # every vector finds itself first
    index.add(-X[:2], ["n0", "n1"]).remove(["d0"])
    assert len(index) == 61 and "d0" not in index.search(X[:1], k=61)[1][0]
    if entry.caps.saveable:
        folder = io.save(index, Path(request.getfixturevalue("tmp_path")) / "index")
        loaded = io.load(folder)
        np.testing.assert_allclose(loaded.search(X[:5], k=3)[0], index.search(X[:5], k=3)[0], atol=1e-6)
        assert (loaded.search(X[:5], k=3)[1] == index.search(X[:5], k=3)[1]).all()


@check("ranker")
def _ranker(entry, request):
    from anytask.backbones import get_backbone, state_hash

    if entry.caps.needs_backbone:
        pytest.importorskip("transformers")
        backbone = f"hf:{request.getfixturevalue('bert_folders')[0]}"
        before = state_hash(get_backbone(backbone))
        ranker = entry.obj(backbone=backbone, steps=2)
    else:
        pytest.importorskip("bm25s")
        ranker = entry.obj()
    targets = ["the nurse works in a hospital", "a chef cooks in a kitchen", "the driver drives a truck"]
    ranker.fit(["hospital nurse", "kitchen chef"], targets[:2]).set_targets(targets)
    S = ranker.score(targets)
    assert S.shape == (3, 3) and np.isfinite(S).all()
    assert S.argmax(1).tolist() == [0, 1, 2]  # every target ranks itself first
    scores, top = ranker.search(["a truck driver"], k=3)
    assert top.shape == (1, 3) and sorted(top[0].tolist()) == [0, 1, 2] and (np.diff(scores) <= 1e-6).all()
    if entry.caps.needs_backbone:
        assert state_hash(get_backbone(backbone)) == before
    if entry.caps.saveable:
        loaded = io.load(io.save(ranker, Path(request.getfixturevalue("tmp_path")) / "ranker"))
        np.testing.assert_allclose(loaded.score(targets), S, atol=1e-5)


@check("optimizer")
def _optimizer(entry, request):
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(5))
    opt = entry.obj([w], lr=0.1)
    start = w.detach().clone()
    loss = (w ** 2).sum()
    loss.backward()
    opt.first_step(opt.radius(0.1 if entry.name == "tram" else None))
    assert not torch.equal(w.detach(), start)  # the ascent step moved the weights
    opt.zero_grad()
    (w ** 2).sum().backward()
    opt.second_step()
    assert (w ** 2).sum() < loss  # one descent step from the original weights lowered the loss


@check("fine-tuning mode")
def _finetune(entry, request):
    from anytask.backbones import create_backbone

    base = request.getfixturevalue("bert_folders")[0]
    out = request.getfixturevalue("tmp_path") / entry.name
    before = _digest(base)
    info = entry.obj(base, ["good fun", "bad day", "great", "awful"], [0, 1, 0, 1], ["good", "bad"], out,
                     steps=2, batch_size=4, progress=False)
    assert _digest(base) == before and len(info["history"]) == 2
    assert json.loads((out / "finetune.json").read_text())["linearized"] == (entry.name == "linearized")
    assert not (out / "README.md").exists() or "anytask" in (out / "README.md").read_text()
    if entry.name == "linearized":  # its weights are a tangent delta: not a plain backbone
        with pytest.raises(AnytaskError, match="linearised"):
            create_backbone(f"hf:{out}")
    else:
        assert create_backbone(f"hf:{out}").embed(["x"]).shape[0] == 1


@check("dataset source")
def _dataset(entry, request):
    from anytask.data import load_dataset

    tmp = request.getfixturevalue("tmp_path")
    if entry.name == "folder":
        (tmp / "tiny").mkdir()
        for split in ("train", "test"):
            (tmp / "tiny" / f"{split}.jsonl").write_text(
                "\n".join(json.dumps({"text": f"t{i}", "label": i % 2}) for i in range(6)))
        train, test = load_dataset("tiny", data_root=tmp)
    elif entry.name == "hf":
        datasets = pytest.importorskip("datasets", reason="the hf source needs `pip install datasets`")
        local = datasets.Dataset.from_dict(
            {"text": ["a", "b", "c", "d"], "label": [0, 1, 0, 1]},
            features=datasets.Features({"text": datasets.Value("string"),
                                        "label": datasets.ClassLabel(names=["neg", "pos"])}))
        monkeypatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setattr(datasets, "load_dataset", lambda name, config=None, split="train": local)
        train, test = load_dataset("hf:local/toy")
        assert train.y.tolist() == ["neg", "pos", "neg", "pos"]  # class ids become their names
    elif entry.name == "features":
        rng = np.random.default_rng(0)
        np.savez(tmp / "f.npz", X=rng.normal(size=(20, 3)), y=np.arange(20) % 2)
        train, test = load_dataset(f"features:{tmp / 'f.npz'}")
        assert (len(train), len(test)) == (14, 6)  # the fixed stratified 70 / 30 split
        np.savez(tmp / "g.npz", X=rng.normal(size=(20, 3)), y=np.arange(20) % 2, train_idx=np.arange(5),
                 test_idx=np.arange(5, 20))
        assert len(load_dataset(f"features:{tmp / 'g.npz'}")[0]) == 5
        with pytest.raises(AnytaskError, match="needs arrays X"):
            np.savez(tmp / "h.npz", A=np.zeros(3))
            load_dataset(f"features:{tmp / 'h.npz'}")
    else:
        spec = {"sklearn": "sklearn:iris", "synthetic": "synthetic:topics"}[entry.name]
        train, test = load_dataset(spec)
    assert len(train) and len(test) and len(train.X) == len(train.y)


@check("stream")
def _stream(entry, request):
    from anytask.data import make_stream

    if entry.name == "synthetic":
        tasks = make_stream("synthetic", seed=0)
    elif entry.name == "text":
        root = request.getfixturevalue("shared_text")
        tasks = make_stream("text", data_root=root, backbone="tiny", n_train=20, order=["trec", "sms_spam"])
    else:
        tasks = make_stream(entry.name, data_root=request.getfixturevalue("shared_text").parent)
    assert tasks and all(len(t.X_train) == len(t.y_train) and len(t.X_test) == len(t.y_test) for t in tasks)
    assert len({t.X_train.shape[1] for t in tasks}) == 1


@check("prompt task")
def _prompt_task(entry, request):
    from anytask.methods.mechanisms import make_prompts

    first, again = make_prompts(entry.name, 12, seed=1), make_prompts(entry.name, 12, seed=1)
    assert first == again and len(first) == 12  # seeded
    for clean, corrupt in zip(first.clean, first.corrupt):  # minimal pairs: one word differs
        assert sum(x != y for x, y in zip(clean.split(), corrupt.split())) == 1


@check("analysis")
def _analysis(entry, request):
    if entry.caps.input == "features":  # a measure of a data set
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(300, 4)), rng.integers(2, size=300)
        result = entry.obj(X, y)
        assert np.isfinite(result["bits"]) and result["inputs"]["classes"] == 2
        return
    from anytask.backbones import get_backbone, state_hash
    from anytask.methods.mechanisms import PromptSet

    lm = get_backbone("tiny-causal")
    words = ["cat", "dog", "fox", "owl", "bee"]
    toy = PromptSet("toy", tuple(f"the {w} ran" for w in words), tuple(f"the {w}s ran" for w in words[::-1]),
                    ("A",) * 5, ("B",) * 5)
    before = state_hash(lm)
    result = entry.obj(lm, toy, toy, fractions=(0.25,))
    assert result["overlaps"]["0.25"]["overlap"] == 1.0  # a task shares its whole circuit with itself
    assert state_hash(lm) == before


@check("model")
def _mechanisms_model(entry, request):
    from anytask.methods.mechanisms.bottleneck import factor_graph, split_target

    g, _ = factor_graph(seed=0)
    X, y = split_target(g, g.sample(400, np.random.default_rng(0)))
    model = entry.obj(n_values=3, epochs=5, seed=0).fit(X, y)
    proba = model.predict_proba(X[:20])
    assert proba.shape == (20, len(model.classes_)) and np.allclose(proba.sum(1), 1, atol=1e-5)
    again = entry.obj(n_values=3, epochs=5, seed=0).fit(X, y)  # seeded: the same fit
    np.testing.assert_allclose(again.predict_proba(X[:20]), proba, atol=1e-6)


@check("sequence model")
def _sequence_model(entry, request):
    small = dict(values=16, train_lengths=(2, 5), dim=16, heads=2, depth=1, steps=20, seed=0)
    model = entry.obj(**small).fit()
    scores = model.score((3, 8), n=20)
    assert set(scores) == {3, 8} and all(0 <= s["exact"] <= s["token"] <= 1 for s in scores.values())
    again = entry.obj(**small).fit()  # seeded: the same fit
    assert again.score((3, 8), n=20) == scores
    assert len(model.history_) >= 1 and np.isfinite(model.history_[-1]["main"])


@check("triple decoder")
def _triple_decoder(entry, request):
    from anytask.data.toyworld import toy_world

    world = toy_world(n_entities=8, n_scenes=40, seed=0)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(world.n_entities, 16)).astype(np.float32)
    X = np.stack([vectors[s].mean(0) for s in world.scenes])  # a scene is the mean of its entities' vectors
    y = [world.triples(s) for s in world.scenes]
    model = entry.obj(epochs=3, threshold=0.2, seed=0).fit(X, y)
    out = model.decode(X[:5])
    assert len(out) == 5 and all(isinstance(t, set) and all(len(x) == 3 for x in t) for t in out)
    assert entry.obj(epochs=3, threshold=0.2, seed=0).fit(X, y).decode(X[:5]) == out  # seeded: the same fit
    assert 0.0 <= model.score(X, y) <= 1.0


@pytest.fixture(scope="module")
def minatar_data():
    pytest.importorskip("minatar", reason="control encoders need the control extra (gymnasium, minatar)")
    from anytask.data.envs import collect

    return collect("MinAtar/Breakout-v1", 800, seed=0)


@check("state encoder")
def _state_encoder(entry, request):
    data = request.getfixturevalue("minatar_data")
    params = {k: v for k, v in dict(width=16, steps=20, batch_size=32, seed=0).items()
              if k in entry.obj().get_params()}
    enc = entry.obj(**params).fit(data)
    X = enc.embed(data.obs[:30])
    assert X.shape == (30, 16) and np.isfinite(X).all()
    np.testing.assert_allclose(entry.obj(**params).fit(data).embed(data.obs[:30]), X, atol=1e-5)  # seeded
    folder = request.getfixturevalue("tmp_path") / entry.name
    io.save(enc, folder)
    np.testing.assert_allclose(io.load(folder).embed(data.obs[:30]), X, atol=1e-6)
    with pytest.raises(AnytaskError, match="observations of shape"):
        enc.embed(np.zeros((2, 5, 5, 4), np.uint8))


@check("control learner")
def _control_learner(entry, request):
    data = request.getfixturevalue("minatar_data")
    extra = {}
    if "encoder" in entry.obj().get_params():
        from anytask.methods.control import ENCODERS

        extra["encoder"] = ENCODERS.get("random")(width=16, seed=0).fit(data)
    else:
        extra["width"] = 16
    agent = entry.obj(steps=200, learning_starts=50, seed=0, **extra).fit("MinAtar/Breakout-v1")
    actions = agent.predict(data.obs[:10])
    assert actions.shape == (10,) and set(actions) <= {0, 1, 2}
    folder = request.getfixturevalue("tmp_path") / entry.name
    io.save(agent, folder)
    np.testing.assert_allclose(io.load(folder).q_values(data.obs[:10]), agent.q_values(data.obs[:10]), atol=1e-6)


@check("manipulation policy")
def _manipulation_policy(entry, request):
    pytest.importorskip("gymnasium", reason="manipulation policies need the control extra (gymnasium)")
    from anytask.methods.control.rl100 import push_sim

    small = dict(demos=10, il_steps=50, offline_iters=1, rollouts=4, fqe_steps=20, ppo_steps=2, online_iters=1,
                 online_episodes=4, distill_steps=20, eval_episodes=4, hidden=16, seed=0, iterations=3, population=4,
                 elite=2, episodes=2)
    pol = entry.obj(**{k: v for k, v in small.items() if k in entry.obj().get_params()}).fit("anytask/Push-v0",
                                                                                           max_steps=15)
    states = push_sim("anytask/Push-v0", 5, **pol.env_kwargs_).reset(np.random.default_rng(0))
    actions = pol.predict(states)
    assert actions.shape == (5, 2) and np.abs(actions).max() <= 1
    assert 0 <= pol.evaluate(episodes=4)["success"] <= 1
    folder = request.getfixturevalue("tmp_path") / entry.name
    io.save(pol, folder)
    np.testing.assert_allclose(io.load(folder).predict(states), actions, atol=1e-6)


@check("navigation policy")
def _navigation_policy(entry, request):
    pytest.importorskip("gymnasium", reason="navigation policies need the control extra (gymnasium)")
    pol = entry.obj(k=8, rounds=1, episodes=4, updates=3, seed=0).fit("anytask/ObjectNav-v0", max_steps=12)
    res = pol.evaluate(episodes=3)
    assert 0 <= res["sel"] <= res["success"] <= 1
    again = entry.obj(k=8, rounds=1, episodes=4, updates=3, seed=0).fit("anytask/ObjectNav-v0", max_steps=12)
    assert again.evaluate(episodes=3) == res
    folder = request.getfixturevalue("tmp_path") / entry.name
    io.save(pol, folder)
    assert io.load(folder).evaluate(episodes=3) == res


@check("agent")
def _agent(entry, request):
    folder = request.getfixturevalue("tmp_path") / entry.name
    if entry.name == "maple":  # over the simulated phone, with a word-count stand-in for MiniLM
        from anytask.data.appworld import all_tasks

        def embed(texts):
            return np.array([[t.count(w) for w in ("Home", "Contacts", "Messages", "Notes", "Calendar", "Ana",
                                                    "Ben", "Chen", "Dara", "card", "Chat", "form", "editor")]
                             for t in texts], np.float32) + 1e-3

        agent = entry.obj(seed=0).set_components(embed=embed).fit(all_tasks()[:2])
        res = agent.evaluate(all_tasks()[2:4])
        again = entry.obj(seed=0).set_components(embed=embed).fit(all_tasks()[:2])
        assert again.evaluate(all_tasks()[2:4]) == res and 0 <= res["success"] <= 1  # seeded
        io.save(again, folder)
        assert io.load(folder).set_components(embed=embed).evaluate(all_tasks()[4:5]) == \
            agent.evaluate(all_tasks()[4:5])
        return
    if entry.name == "lma3":  # Mini-CookingWorld with the rule oracle
        agent = entry.obj(episodes=20, seed=0).fit()
        assert agent.mastered() == entry.obj(episodes=20, seed=0).fit().mastered()  # seeded
        io.save(agent, folder)
        assert io.load(folder).coverage() == agent.coverage()
        return
    from anytask.data.reasoning import SimulatedReasoner

    small = dict(episodes=30, buffer_size=30, batch_size=8, target_update=5, seed=0)
    agent = entry.obj(**small).fit(SimulatedReasoner("base"))
    res = agent.evaluate("base", episodes=20)
    assert 0 <= res["accuracy"] <= 1 and res["episodes"] == 20
    assert entry.obj(**small).fit(SimulatedReasoner("base")).evaluate("base", episodes=20) == res  # seeded
    io.save(agent, folder)
    assert io.load(folder).evaluate("base", episodes=20) == res


@check("graph encoder")
def _graph_encoder(entry, request):
    pytest.importorskip("torch_geometric", reason="graph encoders need the graph extra (torch-geometric)")
    from anytask.data.graphs import from_arrays

    rng = np.random.default_rng(0)
    A = np.triu(rng.random((20, 20)) < 0.2, 1)
    g = from_arrays(rng.normal(size=(20, 4)).astype(np.float32), np.array(np.nonzero(A | A.T)))[0]
    enc = entry.obj(epochs=3, seed=0).fit(g)
    X = enc.embed(g)
    assert X.shape[0] == 20 and np.isfinite(X).all()
    again = entry.obj(epochs=3, seed=0).fit(g)  # seeded: the same encoder
    np.testing.assert_allclose(again.embed(g), X, atol=1e-5)
    assert enc.embed([g, g], level="graph").shape == (2, X.shape[1])
    folder = request.getfixturevalue("tmp_path") / entry.name
    io.save(enc, folder)
    np.testing.assert_allclose(io.load(folder).embed(g), X, atol=1e-6)


@check("valuation")
def _valuation(entry, request):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 5))
    if entry.caps.input == "graphs":
        pytest.importorskip("torch_geometric", reason="graph valuation reads PyG graphs")
        ei = np.array([np.arange(29), np.arange(1, 30)])  # a path: connected
        same, other = (X, ei), (rng.normal(size=(30, 5)) * 3, ei)
    else:
        same, other = X, rng.normal(size=(40, 5)) * 3
    r = entry.obj(same, same)
    assert r["relevance"] == pytest.approx(1) and r["diversity"] == pytest.approx(0, abs=1e-6)
    r = entry.obj(same, other)
    assert 0 <= r["relevance"] <= 1 and 0 <= r["diversity"] <= 1 and r["relevance"] + r["diversity"] <= 1 + 1e-9


@check("infiller")
def _infiller(entry, request):
    from anytask.data.images import task_grids

    small = dict(dim=32, depth=1, heads=2, steps=4, batch_size=8, seed=0)
    model = entry.obj(**small).fit(["invert", "flip_v"])
    grids, _ = task_grids("transpose", 6, 1, seed=1)
    out = model.infill(grids)
    assert out.shape == (6, 16, 16) and np.isfinite(out).all()
    np.testing.assert_array_equal(entry.obj(**small).fit(["invert", "flip_v"]).infill(grids), out)  # seeded
    folder = request.getfixturevalue("tmp_path") / entry.name
    io.save(model, folder)
    np.testing.assert_array_equal(io.load(folder).infill(grids), out)


@check("infiller adapter")
def _infiller_adapter(entry, request):
    pytest.importorskip("peft", reason="IC-LoRA needs PEFT (the lm or bench extra)")
    from anytask.data.images import task_grids
    from anytask.methods.generative import GridInfiller

    base = GridInfiller(dim=32, depth=1, heads=2, steps=3, batch_size=8).fit(["invert"])
    before = {k: v.clone() for k, v in base.net_.state_dict().items()}
    grids, truth = task_grids("erode", 12, 0, seed=2)
    canv = [[[g[-1][0], truth[i]]] for i, g in enumerate(grids)]
    tuned = entry.obj(base, steps=4, seed=0).fit(canv)
    assert all(torch.equal(before[k], v) for k, v in base.net_.state_dict().items())  # the base is never changed
    out = tuned.infill(grids)
    np.testing.assert_array_equal(entry.obj(base, steps=4, seed=0).fit(canv).infill(grids), out)
    folder = request.getfixturevalue("tmp_path") / entry.name
    io.save(tuned, folder)
    np.testing.assert_allclose(io.load(folder).infill(grids), out, atol=1e-5)


@check("scene reader")
def _scene_reader(entry, request):
    from anytask.data.scenes import toy_scenes

    scenes = toy_scenes(64, regions=4, fine=2, colours=4, shapes=3, seed=0)
    small = dict(width=16, heads=2, layers=2, steps=4, batch_size=8, seed=0)
    reader = entry.obj(**small).fit(scenes)
    pred = reader.predict(scenes)
    assert pred.shape == (64,) and set(pred) <= {0, 1, 2}
    np.testing.assert_array_equal(entry.obj(**small).fit(scenes).predict(scenes), pred)
    folder = request.getfixturevalue("tmp_path") / entry.name
    io.save(reader, folder)
    np.testing.assert_array_equal(io.load(folder).predict(scenes), pred)
