import multiprocessing as mp
import sqlite3

import numpy as np
import pytest

from anytask.backbones import Embedder, create_backbone
from anytask.backbones.cache import EmbeddingCache

TEXTS = [f"sentence {i} about {'cats' if i % 2 else 'stocks'}" for i in range(40)] + ["sentence 3 about cats"]


def test_cached_equals_uncached(tiny, tmp_path):
    uncached = Embedder(tiny, use_cache=False).embed(TEXTS)
    cold = Embedder(tiny, cache_dir=tmp_path).embed(TEXTS)
    warm = Embedder(tiny, cache_dir=tmp_path).embed(TEXTS)
    np.testing.assert_allclose(cold, uncached, atol=1e-6)
    np.testing.assert_array_equal(warm, cold)  # what was stored is exactly what comes back
    np.testing.assert_allclose(warm, tiny.embed(TEXTS).numpy(), atol=1e-6)


def test_cache_keys_on_backbone_weights(tmp_path):
    a, b = create_backbone("tiny"), create_backbone("tiny:seed=1")
    ea, eb = Embedder(a, cache_dir=tmp_path), Embedder(b, cache_dir=tmp_path)
    assert ea.cache.path != eb.cache.path
    assert ea.cache.key("x") != eb.cache.key("x")
    assert not np.allclose(ea.embed(["x"]), eb.embed(["x"]))


def test_corrupted_entry_is_detected_and_recomputed(tiny, tmp_path):
    emb = Embedder(tiny, cache_dir=tmp_path)
    good = emb.embed(TEXTS)
    with sqlite3.connect(emb.cache.path) as conn:
        key = emb.cache.key(TEXTS[5])
        conn.execute("UPDATE emb SET vec = ? WHERE key = ?", (np.ones(32, np.float32).tobytes(), key))
    fresh = Embedder(tiny, cache_dir=tmp_path)
    with pytest.warns(UserWarning, match="corrupted"):
        again = fresh.embed(TEXTS)
    np.testing.assert_allclose(again, good, atol=1e-6)
    assert fresh.cache.n_corrupt == 1
    np.testing.assert_allclose(Embedder(tiny, cache_dir=tmp_path).embed(TEXTS), good, atol=1e-6)  # repaired


def test_a_file_that_is_not_a_database_is_moved_aside(tiny, tmp_path):
    emb = Embedder(tiny, cache_dir=tmp_path)
    emb.cache.path.write_bytes(b"garbage" * 1000)
    with pytest.warns(UserWarning, match="moved to"):
        out = emb.embed(TEXTS[:3])
    np.testing.assert_allclose(out, tiny.embed(TEXTS[:3]).numpy(), atol=1e-6)
    assert list(tmp_path.glob("*.corrupt-*"))


def _writer(cache_dir, offset, queue):
    from anytask.backbones import Embedder, create_backbone

    emb = Embedder(create_backbone("tiny"), cache_dir=cache_dir)
    texts = [f"shared text {i}" for i in range(200)] + [f"own text {offset}-{i}" for i in range(100)]
    for start in range(0, len(texts), 25):
        emb.embed(texts[start : start + 25])
    queue.put(len(emb.cache))


def test_two_processes_writing_at_once_leave_a_consistent_cache(tiny, tmp_path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), k, queue)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    cache = EmbeddingCache(tiny.identity, 32, tmp_path)
    assert len(cache) == 400
    texts = [f"shared text {i}" for i in range(200)] + [f"own text 1-{i}" for i in range(100)]
    keys = [cache.key(t) for t in texts]
    hits = cache.get_many(keys)
    assert len(hits) == 300 and cache.n_corrupt == 0
    np.testing.assert_allclose(np.stack([hits[k] for k in keys]), tiny.embed(texts).numpy(), atol=1e-6)


def test_empty_input_gives_an_empty_matrix(tiny, tmp_path):
    assert Embedder(tiny, cache_dir=tmp_path).embed([]).shape == (0, 32)


def test_the_cache_keeps_to_its_size_cap_by_evicting_the_least_recently_used(tmp_path):
    import time as _time

    import numpy as np

    from anytask.backbones.cache import EmbeddingCache

    cache = EmbeddingCache("test|w=1", 256, tmp_path, max_bytes=10**9)
    rng = np.random.default_rng(0)
    old = [(cache.key(f"old {i}"), rng.normal(size=256)) for i in range(300)]
    cache.put_many(old)
    cache._conn.execute("UPDATE emb SET used = ?", (_time.time() - 10 * 3600,))  # used ten hours ago
    cache.put_many([(cache.key(f"new {i}"), rng.normal(size=256)) for i in range(300)])
    cache._conn.execute("UPDATE emb SET used = ? WHERE used > ?", (_time.time() - 5 * 3600, _time.time() - 3600))
    cache.get_many([k for k, _ in old[:50]])  # 50 of the oldest are read again now: most recently used
    cap = cache.live_bytes() // 2
    dropped = cache.prune(cap)
    assert dropped > 0 and cache.live_bytes() <= cap
    left = cache.get_many([k for k, _ in old])
    assert all(k in left for k, _ in old[:50])  # the recently read ones survived
    assert len(left) < 300 and len(cache) == 600 - dropped


def test_cache_command_stats_prune_and_clear(tmp_path, capsys):
    import json

    import numpy as np

    from anytask.apps.cli import main
    from anytask.backbones.cache import EmbeddingCache

    cache = EmbeddingCache("test|w=2", 64, tmp_path, max_bytes=10**9)
    cache.put_many([(cache.key(f"t{i}"), np.ones(64)) for i in range(2000)])
    cache.close()
    assert main(["cache", "stats", "--cache-dir", str(tmp_path)]) == 0
    rows = json.loads(capsys.readouterr().out.splitlines()[0])["rows"]
    assert rows == 2000
    assert main(["cache", "prune", "--cache-dir", str(tmp_path), "--max-mb", "0.05"]) == 0
    assert "evicted" in capsys.readouterr().out
    assert main(["cache", "stats", "--cache-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["rows"] < 2000
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 2  # needs --yes
    assert main(["cache", "clear", "--cache-dir", str(tmp_path), "--yes"]) == 0
    assert not list(tmp_path.glob("*.sqlite"))
