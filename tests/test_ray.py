"""Scale-out on Ray, on a local cluster the test starts (ray.init(num_cpus=2)): the corpus path and the
benchmark grid give what the single process gives."""

import json

import numpy as np
import pytest

pytest.importorskip("ray", reason="the Ray tests need ray (pip install 'anytask[ray]')")
pytestmark = pytest.mark.slow  # a local cluster and its actors take ~45 s: .ci/run's slow suite runs them

from anytask.backbones import EmbeddingCache, get_backbone, get_embedder  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    import ray

    from anytask.experiments.distributed import connect

    connect(None, num_cpus=2)
    yield ray
    ray.shutdown()


def test_ray_embedder_equals_the_local_path_and_fills_the_same_cache(cluster, tmp_path):
    from anytask.experiments.distributed import RayEmbedder

    texts = [f"sentence {i} about {'goals' if i % 2 else 'rates'}" for i in range(150)] + ["sentence 3 about goals"]
    ray_embedder = RayEmbedder("tiny", workers=2, cache_dir=tmp_path / "cache", block_size=32)
    X = ray_embedder.embed(texts)
    np.testing.assert_allclose(X, get_embedder("tiny", use_cache=False).embed(texts), atol=1e-6)
    tiny = get_backbone("tiny")
    cache = EmbeddingCache(tiny.identity, tiny.config.dim, tmp_path / "cache")
    hits = cache.get_many([cache.key(t) for t in set(texts)])
    assert len(hits) == len(set(texts))  # every distinct text, once, under the backbone's identity
    np.testing.assert_array_equal(get_embedder("tiny", cache_dir=tmp_path / "cache").embed(texts), X)


def test_embed_cli_with_ray_writes_the_same_npy_and_parquet(cluster, tmp_path, capsys):
    import pyarrow.parquet as pq

    from anytask.apps.cli import main

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"document number {i}" for i in range(60)))
    for where in ("local", "ray"):
        for suffix in ("npy", "parquet"):
            extra = ["--ray", "--workers", "2"] if where == "ray" else []
            assert main(["embed", "--backbone", "tiny", "--input", str(corpus), "--no-cache",
                         "--out", str(tmp_path / f"{where}.{suffix}"), *extra]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "ray.npy"), np.load(tmp_path / "local.npy"), atol=1e-6)
    ray_table, local_table = pq.read_table(tmp_path / "ray.parquet"), pq.read_table(tmp_path / "local.parquet")
    assert ray_table.column("text").to_pylist() == local_table.column("text").to_pylist()
    np.testing.assert_allclose(np.stack(ray_table.column("embedding").to_numpy(zero_copy_only=False)),
                               np.load(tmp_path / "local.npy"), atol=1e-6)


def test_bench_on_ray_equals_the_local_run_but_for_timings(cluster, tmp_path):
    from anytask.apps.cli import main

    args = ["bench", "--tasks", "sklearn:iris,synthetic:topics", "--heads", "centroid,knn", "--shots", "2,4",
            "--seeds", "2", "--backbone", "tiny", "--max-test", "60", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "local.json")]) == 0
    assert main([*args, "--ray", "--out", str(tmp_path / "ray.json")]) == 0
    local, ray = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("local", "ray"))
    timing = ("fit_seconds", "predict_seconds")
    strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]  # noqa: E731
    assert len(local["results"]) == 2 * 2 * 2 * 3
    assert strip(ray["results"]) == strip(local["results"])
    assert ray["skipped"] == local["skipped"]
