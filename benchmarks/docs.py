"""Write docs/results/<family>.md from the committed result files: the one writer of results tables.

    python benchmarks/docs.py            # rewrite docs/results/
    python benchmarks/docs.py --check    # exit 1 if a committed page differs from what the files give

Each section is (title, result files, a renderer that turns their contents into Markdown tables,
plot, notes). The notes (``<result>.notes.md`` beside a result file) are the hand-written part: the
set-up and what the numbers mean. Every table comes from a renderer, so a table cannot drift from
its JSON; tests/test_docs.py runs ``--check``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
OUT = ROOT / "docs" / "results"
sys.path.insert(0, str(BENCH))


def _load(path: str) -> dict:
    return json.loads((BENCH / path).read_text(encoding="utf-8"))


def ms(m: float, s: float, digits: int = 3, scale: float = 1.0) -> str:
    return f"{scale * m:.{digits}f} ± {scale * s:.{digits}f}"


def table(header: list[str], rows: list[list]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


# -- renderers: result file contents -> Markdown ----------------------------------------------------

def bench_tables(r: dict) -> str:
    """`anytask bench` result: the average over tasks with the gap to the baseline, ECE, then every task."""
    from anytask.experiments.report import markdown, task_average

    acc, ece = task_average(r), task_average(r, "ece") if all("ece" in x for x in r["results"]) else {}
    base, shots = r["baseline"], r["shots"]
    rows = []
    for head in r["heads"]:
        cells = [ms(*acc[(head, k)]) if (head, k) in acc else "—" for k in shots]
        if head == base:
            gap = "baseline"
        else:
            gap = " / ".join(f"{acc[(head, k)][0] - acc[(base, k)][0]:+.3f}" for k in shots
                             if (head, k) in acc and (base, k) in acc)
        rows.append([f"`{head}`", *cells, gap])
    text = (f"Mean accuracy over the {len(r['tasks'])} tasks, ± the spread of that mean over "
            f"{len(r['seeds'])} seeds:\n\n" + table(["head", *[f"k={k}" for k in shots], f"minus {base}"], rows))
    if ece:
        rows = [[f"`{h}`", *[f"{ece[(h, k)][0]:.3f}" if (h, k) in ece else "—" for k in shots]] for h in r["heads"]]
        text += "\n\nTop-label expected calibration error (lower is better):\n\n" + table(
            ["head", *[f"k={k}" for k in shots]], rows)
    return text + "\n\nPer task:\n\n" + markdown(r).strip()


def best_head(*parts: dict) -> str:
    from spine.best_head_summary import render

    return render(*parts).strip()


def calibration(r: dict) -> str:
    from spine.calibration import render

    return render(r).strip()


def wall_time(r: dict) -> str:
    rows = [[k, r[k]["wall_seconds"], f"{r[k]['texts_embedded']:,}", r[k]["embed_seconds"]] for k in ("cold", "warm")]
    return (table(["embedding cache", "wall seconds", "texts embedded", "embedding seconds"], rows)
            + f"\n\nAccuracies identical: {r['accuracies_identical']}; speed-up {r['speedup']}×.")


def throughput(r: dict) -> str:
    t = r["texts_per_second"]
    names = {"sentence_transformers": "sentence-transformers `encode`", "anytask_no_cache": "anytask, no cache",
             "anytask_cold": "anytask Embedder, cold cache (embed + write)", "anytask_warm": "anytask Embedder, warm cache"}
    rows = [[names[k], f"{v['mean']:,.1f} ± {v['std']:,.1f}"] for k, v in t.items()]
    return (table(["path", "texts/s"], rows) + f"\n\nCold overhead vs sentence-transformers "
            f"{r['cold_overhead_vs_sentence_transformers_pct']} %, warm / cold {r['warm_speedup_vs_cold']}×, largest "
            f"difference from sentence-transformers' embeddings {r['max_abs_difference_vs_sentence_transformers']:.1e}.")


def icl_headroom(r: dict) -> str:
    acc = r["mean_accuracy"]
    base = next(k for k in acc if "baseline" in k)
    shots = list(acc[base])
    rows = [[name, *[f"{100 * acc[base][k]:.1f}" if name == base else f"{100 * (v[k] - acc[base][k]):+.1f}"
                     for k in shots]] for name, v in acc.items()]
    return (f"Mean accuracy over the tasks ({r['seeds']} seeds): the baseline in %, every other row in points "
            "against it:\n\n" + table(["learner", *[f"k={k}" for k in shots]], rows))


def icl_variants(r: dict) -> str:
    rows = []
    for variant, groups in r["points_minus_probe"].items():
        for group, values in groups.items():
            rows.append([variant, group, *[f"{v:+.1f}" for v in values.values()]])
    shots = list(next(iter(next(iter(r["points_minus_probe"].values())).values())))
    return "Points against the linear probe in the same run:\n\n" + table(
        ["module", "over", *[f"k={k}" for k in shots]], rows)


def icl_regression(r: dict) -> str:
    s = r["summary"]
    sizes = list(s["icl"])
    names = {"icl": "`ICLRegressor` (no gradient step)", "ridge_cv": "RidgeCV (leave-one-out penalty)",
             "ols": "least squares", "context_mean": "the context's mean"}
    rows = [[names.get(m, m), *[f"{s[m][n]['mean']:.3f} ± {s[m][n]['std']:.3f}" for n in sizes]] for m in s]
    return (f"R² on the rows outside a random context of n ({r['seeds']} seeds; {r['data']}):\n\n"
            + table(["method", *[f"n={n}" for n in sizes]], rows))


def icl_speed(r: dict) -> str:
    rows = [[case, f"{1000 * v['icl']['median_s']:.1f}", f"{1000 * v['linear_probe']['median_s']:.1f}"]
            for case, v in r["cases"].items()]
    return (table(["context", "icl fit + predict, median ms", "linear_probe fit + predict, median ms"], rows)
            + f"\n\n{r['queries']:,} queries of dimension {r['dim']}, {r['repeats']} repeats, {r['torch_threads']} "
            f"torch threads; peak resident memory {r['peak_rss_mb']} MB ({r['rss_before_timing_mb']} MB before timing).")


def merging_tables(r: dict) -> str:
    from merging.summary import tables

    return tables(r).strip()


def peft_check(r: dict) -> str:
    import statistics

    rows = [[f"`{m}`", f"{v['max_abs_diff']:.1e}", f"{v['max_abs_diff_outside_exact_sign_ties']:.1e}",
             v["entries_with_exact_sign_ties"], f"{statistics.mean(v['anytask_seconds']):.2f}",
             f"{statistics.mean(v['peft_seconds']):.2f}"] for m, v in r["methods"].items()]
    return (f"{r['models']} checkpoints, PEFT {r['peft_version']}, mean of {r['repeats']} repeats:\n\n"
            + table(["method", "max difference", "outside exact sign ties", "entries in exact sign ties",
                     "anytask seconds (read, check, merge, write)", "PEFT seconds (read, merge in memory)"], rows))


def tram_table(r: dict) -> str:
    from tram.summary import render

    return render(r).strip()


def base_to_novel(*runs: dict) -> str:
    from prompting.summary import render

    return render(list(runs)).strip()


def prompt_few_shot(r: dict) -> str:
    from prompting.few_shot_summary import render

    return render(r).strip()


def sae_quality(r: dict) -> str:
    rows = [[s["expansion"], s["validation"]["n_latents"], f"{s['validation']['explained_variance']:.3f}",
             s["validation"]["l0"], f"{100 * s['validation']['dead_fraction']:.0f} %", f"{s['train_seconds'] / 60:.1f}"]
            for s in r["sizes"]]
    sweep = [[x["l1"], f"{x['explained_variance']:.3f}", x["l0"], f"{100 * x['dead_fraction']:.0f} %"]
             for x in r["l1_sweep_at_expansion_4"]]
    return (f"On {r['validation_texts']:,} held-out pool texts (pool {r['pool_texts']:,}); L1 {r['chosen_l1']} "
            f"chosen by the sweep; shipped expansion {r['shipped']['expansion']}:\n\n"
            + table(["expansion", "concepts", "explained variance", "L0 (mean active)", "dead", "CPU minutes"], rows)
            + "\n\nL1 sweep at expansion 4:\n\n" + table(["l1", "explained variance", "L0", "dead"], sweep))


def concepts_full(r: dict) -> str:
    rows = [[t["task"], t["n_train"], f"{t['linear_probe']['accuracy']:.3f}", f"{t['concept_bottleneck']['accuracy']:.3f}",
             f"{100 * t['gap']:+.1f}", f"{t['naming']['top3_hit_rate']:.2f} / {t['naming']['random_concepts_hit_rate']:.2f}"
             f" / {t['naming']['chance']:.2f}"] for t in r["tasks"]]
    m, n = r["mean_accuracy"], r["mean_naming"]
    rows.append(["**mean**", "", f"**{m['linear_probe']:.3f}**", f"**{m['concept_bottleneck']:.3f}**",
                 f"**{100 * r['mean_gap']:+.1f}**", f"{n['top3_hit_rate']:.2f} / {n['random_concepts_hit_rate']:.2f} / "
                 f"{n['chance']:.2f}"])
    return table(["task", "train texts", "linear_probe", "concept_bottleneck", "gap (points)",
                  "naming hit rate: top-3 / random 3 / chance"], rows)


def stream_table(r: dict) -> str:
    from anytask.experiments.stream_report import stream_markdown

    return stream_markdown(r).strip()


def cli_wall_time(r: dict) -> str:
    import statistics

    runs = r["runs"]
    labels = [k for k in ("before", "after") if k in runs] + [k for k in runs if k not in ("before", "after")]
    calls = list(dict.fromkeys(c for lb in labels for c in runs[lb]["seconds"]))
    rows = [[c if c.startswith("(") else f"`anytask {c}`",
             *[f"{statistics.mean(runs[lb]['seconds'][c]):.2f} ± {statistics.pstdev(runs[lb]['seconds'][c]):.2f}"
               if c in runs[lb]["seconds"] else "—" for lb in labels]] for c in calls]
    commands = "; ".join(f"{lb}: `{runs[lb]['command']}`" for lb in labels)
    return (table(["call", *[f"{lb} (s)" for lb in labels]], rows)
            + f"\n\n{r['what']}; mean ± std over {runs[labels[0]]['repeats']} fresh processes. Commands: {commands}.")


def serve_faults(r: dict) -> str:
    rows = [[k.replace("_", " "), r[k]] for k in ("kills", "creates_acknowledged", "adds_acknowledged",
                                                  "deletes_acknowledged", "second_writer_refused", "readers_started",
                                                  "tasks_present_at_end", "checked_bit_identical", "lost",
                                                  "predictions_changed", "orphan_head_folders", "seconds")]
    return table(["", "count"], rows)


def serve_load(r: dict) -> str:
    def mstd(lv, key):
        return f"{lv[key]['mean']:.0f} ± {lv[key]['std']:.0f}" if key in lv else "—"

    rows = [[lv.get("traffic", "predict"), lv["clients"],
             ms(lv["requests_per_second"]["mean"], lv["requests_per_second"]["std"], 1), mstd(lv, "p50_ms"),
             mstd(lv, "p99_ms"), mstd(lv, "write_p99_ms"), f"{lv['max_ms']:.0f}" if "max_ms" in lv else "—",
             lv["errors"], f"{lv['fraction_of_offline_throughput']:.2f}"] for lv in r["levels"]]
    return table(["traffic", "clients", "requests/s", "predict p50 ms", "predict p99 ms", "write p99 ms",
                  "slowest request ms", "errors",
                  f"share of offline batch embedding ({r['offline_batch_embedding_texts_per_second']} texts/s)"], rows)


def serve_load_backbones(*results: dict) -> str:
    return "\n\n".join(f"**`{r.get('backbone', 'minilm')}`**\n\n" + serve_load(r) for r in results)


# -- the pages --------------------------------------------------------------------------------------

def lm_prompting(r: dict) -> str:
    from lm.prompting_summary import render

    return render(r).strip()


def lm_hso_beam(r: dict) -> str:
    sel = r["lr_selection"]
    out = ["HSO learning rate chosen on imdb *training* review halves (mean change of next-segment NLL per rate: "
           + ", ".join(f"{lr}: {d:+.4f}" for lr, d in sel["delta_nll"].items()) + f"; chosen {sel['chosen']}).", ""]
    lm = r["lm"]
    out += [table(["held-out text (imdb test review halves)", "pairs", "NLL/token, plain cache", "NLL/token, after HSO",
                   "pairs improved"],
                  [["second half given the first", lm["n"], f"{lm['nll']:.4f}", f"{lm['nll_hso']:.4f}",
                    f"{lm['improved']} of {lm['n']}"]]), ""]
    rows, by_task = [], {}
    for row in r["few_shot"]:
        by_task.setdefault(row["task"], []).append(row)
    for task, rs in by_task.items():
        a0, a3 = [x["acc_hso0"] for x in rs], [x["acc_hso3"] for x in rs]
        rows.append([task, len(rs), ms(sum(a0) / len(a0), _std(a0)), ms(sum(a3) / len(a3), _std(a3)),
                     f"{sum(a3) / len(a3) - sum(a0) / len(a0):+.3f}",
                     f"{sum(x['seconds_hso0'] for x in rs) / len(rs):.1f} / {sum(x['seconds_hso3'] for x in rs) / len(rs):.1f}"])
    out += [f"Few-shot, K = {r['args']['k']} demonstrations from 8 per class, contextual calibration, with and without "
            "3 HSO steps on the prompt (mean ± std over seeds):", "",
            table(["task", "seeds", "accuracy, plain", "accuracy, HSO", "HSO minus plain", "seconds plain / HSO"], rows), ""]
    d = r["decoding"]
    out += [f"Decoding {len(d['plain']['outputs'])} SST-2 reviews as \"Review: ...\\nOne-sentence summary:\" "
            "(beam 4, ≤ 24 new tokens):", "",
            table(["search", "degenerate (empty or repeated 3-gram)", "empty", "mean log p", "mean tokens"],
                  [[m, f"{v['degenerate_share']:.2f}", f"{v['empty_share']:.2f}", f"{v['mean_logp']:.2f}",
                    f"{v['mean_tokens']:.1f}"] for m, v in d.items()]), "",
            "First outputs, plain / conditional:", ""]
    for a, b in list(zip(d["plain"]["outputs"], d["conditional"]["outputs"]))[:4]:
        out.append(f"- `{a['text'].strip()[:90]!r}` / `{b['text'].strip()[:90]!r}`")
    return "\n".join(out)


def _std(values: list[float]) -> float:
    m = sum(values) / len(values)
    return (sum((v - m) ** 2 for v in values) / len(values)) ** 0.5


def lm_mtf(r: dict) -> str:
    models = ["base", "base+instr", "mtf", "mtf+instr"]
    cell = {}
    for row in r["rows"]:
        cell.setdefault((row["model"], row["task"]), []).append(row["accuracy"])
    rows = []
    for task in r["held_out"]:
        rows.append([task, *[ms(sum(v) / len(v), _std(v)) if (v := cell.get((m, task))) else "—" for m in models]])
    means = []
    for m in models:
        per_task = [sum(v) / len(v) for t in r["held_out"] if (v := cell.get((m, t)))]
        means.append(f"**{sum(per_task) / len(per_task):.3f}**" if per_task else "—")
    rows.append(["**mean**", *means])
    out = [f"Zero-shot rank classification on held-out clusters (mean ± std over seeds; `base` rows do not depend on "
           f"the seed). Trained on {', '.join(r['seen'])}.", "", table(["held-out task", *models], rows), ""]
    tr = r["training"]
    out.append("LoRA training: " + "; ".join(f"{t['model']} seed {t['seed']}: loss {t['loss_first5']:.2f} → "
                                             f"{t['loss_last5']:.2f} in {t['seconds']:.0f} s" for t in tr) + ".")
    return "\n".join(out)


def lm_auto(test: dict, validation: dict) -> str:
    """auto with SmolLM2 as a candidate: the rule chosen on training rows, then the test rows."""
    from lm.auto_lm import RULES, replay, rule_name

    def mean(v):
        return sum(v) / len(v)

    shots = sorted({r["k"] for r in validation["rows"]})
    rows, best = [], None
    for default, margin in RULES:
        cells, total = [], []
        for k in shots:
            draws = [r for r in validation["rows"] if r["k"] == k]
            picks = [replay(r, default, margin) for r in draws]
            accs = [r["held"][c] for r, c in zip(draws, picks)]
            total += accs
            cells.append(f"{mean(accs):.3f} ({sum('lm' in c for c in picks)}/{len(picks)})")
        rows.append([rule_name(default, margin), *cells, f"{mean(total):.3f}"])
        best = max(best or (rows[-1], mean(total)), (rows[-1], mean(total)), key=lambda t: t[1])
    best[0][0] = f"**{best[0][0]}**"
    n_tasks = len({r["task"] for r in validation["rows"]})
    out = [f"**Choosing the rule** on held-out rows of the training splits ({n_tasks} tasks, "
           f"{len({r['seed'] for r in validation['rows']})} draws per k): mean held-out accuracy of what each rule "
           "picks (in brackets: draws where it picked an LM candidate); the most accurate in bold.", "",
           table(["rule", *[f"k={k}" for k in shots], "all"], rows), ""]
    methods = ["linear_probe", "auto", "auto+lm", "auto+lm+prompt"]
    shots = sorted({r["k"] for r in test["rows"]})
    seeds = sorted({r["seed"] for r in test["rows"]})
    rows = []
    for m in methods:
        cells = []
        for k in shots:
            per_seed = [mean([r["accuracy"] for r in test["rows"] if r["method"] == m and r["k"] == k and r["seed"] == s])
                        for s in seeds if any(r["method"] == m and r["k"] == k and r["seed"] == s for r in test["rows"])]
            cells.append(ms(mean(per_seed), _std(per_seed)) if per_seed else "—")
        mine = [r for r in test["rows"] if r["method"] == m]
        chosen = sum(bool(r["chosen"] and "lm" in r["chosen"]) for r in mine)
        rows.append([f"`{m}`", *cells, f"{mean([r['fit_seconds'] for r in mine]):.1f}",
                     f"{100 * mean([r['predict_seconds'] / r['n_test'] for r in mine]):.2f}",
                     f"{chosen}/{len(mine)}" if "lm" in m else ""])
    out += [f"**On the test rows** ({len({r['task'] for r in test['rows']})} tasks, seeds {seeds}): mean accuracy over "
            "tasks ± its spread over seeds; fit and predict wall times from raw texts (one core); how often `auto` "
            "took an LM candidate.", "",
            table(["method", *[f"k={k}" for k in shots], "fit s", "predict s / 100 texts", "LM chosen"], rows), ""]
    tasks = sorted({r["task"] for r in test["rows"]})
    for variant in ("auto+lm", "auto+lm+prompt"):
        rows = []
        for t in tasks:
            cells = []
            for k in shots:
                a = [r["accuracy"] for r in test["rows"] if r["task"] == t and r["k"] == k and r["method"] == "auto"]
                b = [r for r in test["rows"] if r["task"] == t and r["k"] == k and r["method"] == variant]
                cells.append(f"{mean(a):.3f} → {mean([r['accuracy'] for r in b]):.3f} "
                             f"({sum(bool(r['chosen'] and 'lm' in r['chosen']) for r in b)}/{len(b)})" if a and b else "—")
            rows.append([t, *cells])
        out += ["", f"Per task, `auto` → `{variant}` (mean over seeds; in brackets: seeds where an LM candidate was "
                "taken):", "", table(["task", *[f"k={k}" for k in shots]], rows)]
    return "\n".join(out)


def lm_cipher(r: dict) -> str:
    cols = [("base", "english"), ("mtf", "english"), ("base", "cipher"), ("cpt", "cipher"), ("mtf", "cipher"),
            ("cpt+mtf", "cipher")]
    cell: dict = {}
    for row in r["rows"]:
        cell.setdefault((row["model"], row["language"], row["task"]), []).append(row["accuracy"])
    rows = []
    for task in r["held_out"]:
        rows.append([task, *[ms(sum(v) / len(v), _std(v)) if (v := cell.get((m, lang, task))) else "—"
                             for m, lang in cols]])
    means = []
    for m, lang in cols:
        per_task = [sum(v) / len(v) for t in r["held_out"] if (v := cell.get((m, lang, t)))]
        means.append(f"**{sum(per_task) / len(per_task):.3f}**" if per_task else "—")
    rows.append(["**mean**", *means])
    seeds = sorted({row["seed"] for row in r["rows"] if row["model"] != "base"})
    out = [f"Zero-shot rank classification on the held-out clusters, mean ± std over seeds {seeds} (`base` does not "
           f"depend on the seed). Inputs enciphered by a fixed letter substitution (\"the movie was great\" → "
           f"\"{r['example']}\"); multitask fine-tuning on {', '.join(r['seen'])} in English.", "",
           table(["held-out task", *[f"{m} ({lang})" for m, lang in cols]], rows), ""]
    out.append("LoRA training: " + "; ".join(f"{t['model']} seed {t['seed']}: loss {t['loss_first5']:.2f} → "
                                             f"{t['loss_last5']:.2f} in {t['seconds']:.0f} s" for t in r["training"]) + ".")
    return "\n".join(out)


def lm_kate(r: dict) -> str:
    cell: dict = {}
    for row in r["rows"]:
        for cal in ("raw", "contextual"):
            cell.setdefault((row["task"], row["selection"], cal), []).append(row[cal])
    selections = ["fixed", "balanced", "similar"]
    tasks = sorted({row["task"] for row in r["rows"]})
    header = ["task", *[f"{s} {c}" for c in ("raw", "contextual") for s in selections]]
    rows = []
    for t in tasks:
        rows.append([t, *[f"{sum(v) / len(v):.3f}" if (v := cell.get((t, s, c))) else "—"
                          for c in ("raw", "contextual") for s in selections]])
    means = []
    for c in ("raw", "contextual"):
        for s in selections:
            per_task = [sum(v) / len(v) for t in tasks if (v := cell.get((t, s, c)))]
            means.append(f"**{sum(per_task) / len(per_task):.3f}**" if per_task else "—")
    rows.append(["**mean**", *means])
    secs = {s: sum(x["seconds"] for x in r["rows"] if x["selection"] == s) / max(1, sum(x["n_test"] for x in r["rows"]
            if x["selection"] == s)) for s in selections}
    a = r["args"]
    return "\n".join([f"k = {a['k']} demonstrations from a pool of {a['pool']} labelled texts per class, "
                      f"{a['max_test']} test texts per task, mean accuracy over {a['seeds']} seeds:", "",
                      table(header, rows), "",
                      "Seconds per scored text: " + ", ".join(f"{s} {v:.2f}" for s, v in secs.items()) + "."])


INDEX_ORDER = {"exact": 0, "hnsw": 1, "faiss_hnsw": 2}


def retrieval_index(r: dict) -> str:
    rows = [[f"{x['n']:,}", f"{x['n_real']:,}", f"`{x['index']}`", f"{x['build_seconds']:.1f}", f"{x['memory_mb']:.0f}",
             f"{x['p50_ms']:.2f}", f"{x['p99_ms']:.2f}",
             "baseline" if x["index"] == "exact" else (f"{x['recall_at_10']:.3f}" if x["recall_at_10"] is not None else "—")]
            for x in sorted(r["rows"], key=lambda x: (x["n"], INDEX_ORDER.get(x["index"], 9)))]
    return (f"One query at a time, {r['args']['queries']} queries after {r['args']['warmup']} untimed ones, "
            f"{r['args']['threads']} threads; recall@10 against the exact index on the same queries.\n\n"
            + table(["vectors", "of them real", "index", "build s", "memory MB", "p50 ms", "p99 ms", "recall@10"], rows))


def scale_embed(r: dict) -> str:
    rows = [[name, f"{s['texts_per_second'][0]:.1f} ± {s['texts_per_second'][1]:.1f}",
             f"{s['fixed_seconds'][0]:.1f} ± {s['fixed_seconds'][1]:.1f}",
             f"{s['overall_texts_per_second'][0]:.1f} ± {s['overall_texts_per_second'][1]:.1f}"]
            for name, s in r["summary"].items()]
    return (f"MiniLM on {r['corpus']}: {r['n_small']:,} and {r['n_large']:,} texts per call, cache off, "
            f"{r['repeats']} repeats (mean ± sd); Ray {r['environment']['ray']} on a local cluster.\n\n"
            + table(["configuration", "steady texts/s", "fixed s per call", f"texts/s over {r['n_large']:,}"], rows))


def mechanisms_circuits(r: dict) -> str:
    import numpy as np

    runs = r["runs"]

    def ms_(values, digits=2):
        return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"

    names = {"ioi": "IOI", "colored_objects": "Colored Objects"}
    rows = []
    for key, name in names.items():
        effects = np.mean([np.asarray(run[key]["effects"]) for run in runs], axis=0)
        top = np.argsort(-effects, axis=None)[:5]
        heads = ", ".join(f"L{i // effects.shape[1]}H{i % effects.shape[1]} ({effects.flat[i]:.2f})" for i in top)
        rows.append([name, ms_([run[key]["ld_clean"] for run in runs]), ms_([run[key]["ld_corrupt"] for run in runs]),
                     f"{runs[0][key]['n']} ({sum(run[key]['skipped'] for run in runs)} skipped)", heads])
    parts = [table(["task", "logit diff, clean", "corrupted", "prompts / seed", "top heads by mean effect"], rows)]
    rows = []
    for f, first in runs[0]["overlaps"].items():
        o = [run["overlaps"][f] for run in runs]
        rows.append([f"{float(f):.0%}", str(first["size"]), ms_([x["overlap"] for x in o]),
                     ms_([x["jaccard"] for x in o]), f"{first['chance']:.2f}"])
    parts.append(table(["circuit = top", "heads", "overlap: share of CO heads in IOI", "Jaccard", "chance overlap"], rows))
    rows = [["before (no edit)", ms_([run["steer_shared"]["before"] for run in runs], 3), "—"]]
    for key, name in (("steer_shared", "shared heads scaled"), ("steer_random", "as many random heads scaled")):
        rows.append([name, ms_([run[key]["after"] for run in runs], 3),
                     ", ".join(f"{run[key]['alpha']:g}" for run in runs)])
    held = runs[0]["steer_shared"]["n_held"]
    parts.append(f"Colored Objects accuracy over the 8 colours on the held-out half ({held} prompts per seed); the "
                 "scale was chosen on the other half:\n\n"
                 + table(["intervention", "accuracy", "scale chosen per seed"], rows))
    return f"SmolLM2-135M-Instruct, {len(runs)} seeds (fresh prompts each; mean ± sd).\n\n" + "\n\n".join(parts)


def mechanisms_bottleneck(r: dict) -> str:
    import numpy as np

    rows, out = r["rows"], []
    for graph, title in (("sparse", "Sparse graph (the target has 2 parents)"),
                         ("dense", "Dense control (the target has 8 parents)")):
        mine = [x for x in rows if x["graph"] == graph]
        sizes = sorted({x["n"] for x in mine})
        body = []
        for model in r["models"]:
            for key, label in (("accuracy", "test"), ("shift_accuracy", "shifted")):
                cells = []
                for n in sizes:
                    v = [x[key] for x in mine if x["model"] == model and x["n"] == n]
                    cells.append(f"{np.mean(v):.3f} ± {np.std(v):.3f}")
                body.append([model, label, *cells])
        for key, label in (("bayes", "test"), ("bayes_shift", "shifted")):
            body.append(["Bayes-optimal", label, *[f"{np.mean([x[key] for x in mine]):.3f}"] * len(sizes)])
        recall = [np.mean([x["blanket_recall"] for x in mine if x["n"] == n and "blanket_recall" in x]) for n in sizes]
        precision = [np.mean([x["blanket_precision"] for x in mine if x["n"] == n and "blanket_precision" in x])
                     for n in sizes]
        body.append(["top-3: Markov blanket recall / precision", "", *[f"{a:.2f} / {b:.2f}"
                                                                        for a, b in zip(recall, precision)]])
        out.append(f"**{title}**, accuracy by training rows ({len({x['seed'] for x in mine})} seeds, one graph "
                   "each):\n\n" + table(["model", "rows", *[f"{n:,}" for n in sizes]], body))
    return "\n\n".join(out)


def mechanisms_tensor_brain(r: dict) -> str:
    s = r["summary"]

    def pm(v, digits=3):
        return "—" if v is None else f"{v[0]:.{digits}f} ± {v[1]:.{digits}f}"

    kinds = ("all", "attributes", "left_of", "owns / part_of")
    rows = [[name, *[pm(d[f"{k}.f1"]) for k in kinds], f"{d['all.precision'][0]:.2f} / {d['all.recall'][0]:.2f}",
             f"{d['fit_s'][0]:.0f}"] for name, d in s["decoders"].items()]
    perception = table(["decoder", *[f"F1: {k}" for k in kinds], "P / R (all)", "fit s"], rows)
    e = s["episodic"]
    episodic = table(["", "value"], [
        ["time index hit rate (cue: one 'A is left of B' sentence)", pm(e["hit_rate"])],
        ["cues whose pair occurs in one test scene only (the best any lookup could do)", pm(e["cue_unique_share"])],
        ["recalled episode vs the whole scene: F1 / recall",
         f"{pm(e['recalled_episode_f1'])} / {pm(e['recalled_episode_recall'])}"],
        ["decoding the cue alone: F1 / recall", f"{pm(e['cue_alone_f1'])} / {pm(e['cue_alone_recall'])}"]])
    c = s["concept_learning"]
    concept = table(["", "value"], [
        ["novelty AUC, 50 new vs 50 known entities", pm(c["novelty_auc"])],
        ["known entities: attributes decoded from an unseen sentence template", pm(c["known_attribute_recall_unseen_template"])],
        ["new entities given an index at threshold 0.5", pm(c["allocated_at_0.5"])],
        ["... recognised again (top subject) from another template", pm(c["reidentified"])],
        ["... their attributes decoded with the new index", pm(c["new_attribute_recall"])]])
    rates = c["allocation_rate"]
    sens = table(["novelty threshold", *sorted(rates, key=float)],
                 [[who, *[f"{rates[t][who][0]:.2f}" for t in sorted(rates, key=float)]] for who in ("known", "novel")])
    return (f"{r['seeds']} seeds (a fresh world each; mean ± sd); 600 training scenes + 100 glimpses, 200 test "
            "scenes of new combinations of the same 50 entities.\n\n**Perception**: micro F1 of the decoded triples "
            "on the test scenes\n\n" + perception + "\n\n**Episodic memory** (the 200 test scenes stored as time "
            "indices)\n\n" + episodic + "\n\n**Concept learning**\n\n" + concept
            + "\n\nShare given a new index, by threshold (the card's sensitivity check):\n\n" + sens
            + f"\n\n**Semantic memory**: Spearman correlation between a training triple's frequency and its mean "
            f"decoded probability over the test states: {pm(s['semantic_memory_spearman'], 2)}.")


def mechanisms_difficulty(r: dict) -> str:
    import numpy as np

    ref = table(["task", "n", "m", "R", "δ", "ε", "Ĩ bits (ours)", "Ĩ bits (card)"],
                [[x["task"], f"{x['n']:,}", str(x["m"]), f"{x['R']:.3f}", f"{x['delta']:.4g}", str(x["error"]),
                  f"{x['bits']:.4g}", f"{x['card_bits']:.3g}"] for x in r["reference"]])
    pix = {}
    for x in r["pixels"]:
        pix.setdefault((x["task"], x["delta_method"]), []).append(x)
    pixels = table(["data", "δ estimator", "n", "m̂", "R", "δ̂", "ε", "log10 Ĩ bits"],
                   [[task, method, f"{xs[0]['n']:,}", f"{np.mean([x['m'] for x in xs]):.1f}", f"{xs[0]['R']:.2f}",
                     f"{np.mean([x['delta'] for x in xs]):.3f} ± {np.std([x['delta'] for x in xs]):.3f}",
                     str(xs[0]["error"]),
                     f"{np.mean([x['log10_bits'] for x in xs]):.2f} ± {np.std([x['log10_bits'] for x in xs]):.2f}"]
                    for (task, method), xs in pix.items()])
    by = {}
    for x in r["text"]:
        by.setdefault(x["task"], []).append(x)
    def logs(t: str) -> list[float]:  # 0 bits (no hypothesis left to choose) shown and ranked as below the rest
        return [x["log10_bits"] if x["log10_bits"] is not None else -1.0 for x in by[t]]

    order = sorted(by, key=lambda t: np.median(logs(t)))
    text = table(["task", "classes", "n", "m̂", "δ̂", "log10 Ĩ bits, per seed", "probe error at 16/class"],
                 [[t, str(by[t][0]["classes"]), f"{by[t][0]['n']:,}", f"{np.mean([x['m'] for x in by[t]]):.1f}",
                   f"{np.mean([x['delta'] for x in by[t]]):.3f}",
                   " / ".join("0 bits" if v < 0 else f"{v:.2f}" for v in logs(t)),
                   f"{by[t][0]['probe_error_16']:.3f}"] for t in order])
    s = r["spearman_log_bits_vs_probe_error"]
    return ("**The card's reference values** (official parameters):\n\n" + ref
            + "\n\n**Pixel space** (the inputs estimated from the data, 3 seeds):\n\n" + pixels
            + f"\n\n**The shared text tasks as MiniLM sees them** (ε = {r['args']['error']}, unit embeddings so R = 1; "
            f"sorted by Ĩ):\n\n" + text
            + f"\n\nSpearman correlation between the median log Ĩ and the linear probe's error at 16 per class over "
            f"{s['tasks']} tasks: **ρ = {s['rho']:.2f}** (p = {s['p']:.2f}; per seed "
            + ", ".join(f"{v:.2f}" for v in s["per_seed"]) + ").")


UWE_TASKS = ("job_norm", "job_norm_unseen", "desc2occ", "job_sim")


def _cisi_cell(rs: list[dict], metric: str, cell) -> str:
    judged = [x for x in rs if "cisi" in x]
    if not judged:
        return "—"
    text = cell(judged, lambda x: x["cisi"][metric])
    return text if len(judged) == len(rs) else f"{text} (seed {judged[0]['seed']})"


def retrieval_uwe(r: dict) -> str:
    by: dict[str, list[dict]] = {}
    for row in r["rows"]:
        by.setdefault(row["config"], []).append(row)

    def cell(rows, get, digits=1):
        vals = [get(x) for x in rows]
        m = sum(vals) / len(vals)
        return f"{m:.{digits}f}" + (f" ± {_std(vals):.{digits}f}" if len(vals) > 1 else "")

    out = []
    for metric, name in (("map", "MAP"), ("rp@10", "RP@10")):
        rows = [[f"`{c}`", str(len(rs))] + [cell(rs, lambda x, t=t: x["tasks"][t][metric]) for t in UWE_TASKS]
                + [f"**{cell(rs, lambda x: x['esco_macro'][metric])}**",
                   _cisi_cell(rs, metric, cell)]
                for c, rs in by.items()]
        out += [f"{name} (×100; mean ± sd over seeds where trained):", "",
                table(["configuration", "seeds", *UWE_TASKS, "ESCO macro", "CISI"], rows), ""]
    rows = [[f"`{c}`", cell(rs, lambda x: x["fit_seconds"], 0),
             cell(rs, lambda x: x["tasks"]["job_norm"]["score_ms_per_query"], 2),
             " → ".join(f"{v:.2f}" for v in rs[0]["loss_first_last"]) if "loss_first_last" in rs[0] else "—"]
            for c, rs in by.items()]
    out += ["Cost: fit seconds (lower states + tuning), job_norm milliseconds per query against the cached target "
            "space (encoding the query included, batched), mean training loss over the first and last 20 steps "
            "(first seed):", "", table(["configuration", "fit s", "ms / query", "loss"], rows), ""]
    sel = r.get("selection")
    if sel:
        rows = [[x["scorer"], f"{x['lr']:g}", x["steps"], f"{x['map']:.1f}", f"{x['rp@10']:.1f}"] for x in sel["rows"]]
        out += [f"Learning-rate selection on {sel['validation_queries']} validation aliases carved from the training "
                f"pairs ({sel['train_pairs']} pairs left to train on; the test queries unread):", "",
                table(["scorer", "lr", "steps", "val MAP", "val RP@10"], rows), ""]
    split = r["split"]
    out += [f"Split: {split['train_pairs']:,} training pairs, {split['sibling_sets']} sibling sets, unseen ISCO major "
            f"groups {split['unseen_major_groups']}; test queries per task: "
            + ", ".join(f"{k} {v}" for k, v in split["tasks"].items())
            + f". Skill alias alignment in the shared file: {split['skill_alignment']['of_which_their_own_row']} of "
            f"{split['skill_alignment']['aliases_equal_to_a_label']:,} label-equal aliases on their own row "
            f"(occupations: {split['occupation_alignment']['of_which_their_own_row']} of "
            f"{split['occupation_alignment']['aliases_equal_to_a_label']})."]
    return "\n".join(out)


def retrieval_generalist(r: dict) -> str:
    by: dict[str, list[dict]] = {}
    for row in r["rows"]:
        by.setdefault(row["config"], []).append(row)
    cols = [("ag_news", "ag_news acc", 1), ("trec", "trec acc", 1), ("banking77", "banking77 acc", 1),
            ("cisi_map", "CISI MAP", 1), ("mean_score", "mean", 1), ("loss_std", "loss sd", 3),
            ("fit_seconds", "fit s", 0)]

    def cell(rs, key, digits):
        vals = [x[key] for x in rs]
        m = sum(vals) / len(vals)
        return f"{m:.{digits}f}" + (f" ± {_std(vals):.{digits}f}" if len(vals) > 1 else "")

    rows = [[f"`{c}`", str(len(rs))] + [cell(rs, k, d) for k, _, d in cols] for c, rs in by.items()]
    sizes = ", ".join(f"{k} {v:,}" for k, v in r["sizes"].items())
    return (f"{r['args']['steps']} steps of {r['args']['batch_size']} examples, lr {r['args']['lr']:g}; training "
            f"examples (pairs for CISI): {sizes}. Mean ± sd over seeds; loss sd: each task's training-loss "
            "standard deviation over the second half of the steps, averaged over tasks.\n\n"
            + table(["configuration", "seeds"] + [name for _, name, _ in cols], rows))


def retrieval_uni_perceiver(r: dict) -> str:
    s = r["summary"]

    def pm(v, scale=100.0, digits=1):
        return f"{scale * v[0]:.{digits}f} ± {scale * v[1]:.{digits}f}"

    rows = []
    for row in ("frozen MiniLM", "multi-task encoder"):
        seen, zero = s["seen"][row], s["zero_shot"][row]
        rows.append([row, pm(seen["ag_news"]), pm(seen["dbpedia"]), pm(seen["cisi_map"]), pm(zero["trec"]),
                     pm(zero["banking77"])])
    first = table(["encoder (cosine to label names / documents)", "ag_news acc (trained)", "dbpedia acc (trained)",
                   "CISI MAP (trained, held-out queries)", "trec acc (zero-shot)", "banking77 acc (zero-shot)"], rows)
    one = table(["1 % of banking77", "accuracy", "fit s"],
                [[name, pm(v["accuracy"]), f"{v['fit_s'][0]:.0f}" if "fit_s" in v else "—"]
                 for name, v in sorted(s["one_percent"].items(), key=lambda kv: -kv[1]["accuracy"][0])])
    a = r["args"]
    taus = ", ".join(f"{k} {v[0]:.3f}" for k, v in s["tau"].items())
    return (f"{r['seeds']} seeds (mean ± sd, in %); multi-task training {a['steps']} steps, {a['train']:,} examples per "
            f"classification task, {a['test']:,} test examples per task; learned temperatures: {taus}.\n\n" + first
            + f"\n\nAbout 100 training examples (1 % of banking77's 10,003; about 1.3 per intent), accuracy on "
            f"{a['test']:,} test examples over all 77 intents:\n\n" + one)


def mechanisms_hinting(r: dict) -> str:
    s = r["summary"]
    lengths = r["lengths"]

    def pm(v):
        return f"{v[0]:.2f} ± {v[1]:.2f}"

    exact = table(["variant", *[f"n = {n}" for n in lengths]],
                  [[v, *[pm(s[v][f"exact@{n}"]) for n in lengths]] for v in r["variants"]])
    token = table(["variant", *[f"n = {n}" for n in lengths]],
                  [[v, *[pm(s[v][f"token@{n}"]) for n in lengths]] for v in r["variants"]])
    hint = table(["variant", "hint task exact @ 20", "hint task exact @ 100", "parameters", "fit s"],
                 [[v, pm(s[v]["hint_exact@20"]) if "hint_exact@20" in s[v] else "—",
                   pm(s[v]["hint_exact@100"]) if "hint_exact@100" in s[v] else "—", f"{s[v]['parameters']:,}",
                   f"{s[v]['fit_s']:.0f}"] for v in r["variants"]])
    whole = "the whole sorted output" if r.get("task", "sort") == "sort" else "every digit of the number + 1"
    return (f"{r['seeds']} seeds, {r['steps']:,} steps each, trained on lengths 5-20 (mean ± sd).\n\n**Exact match** "
            f"({whole} right):\n\n" + exact + "\n\n**Per-token accuracy** (teacher-forced):\n\n"
            + token + "\n\n**The hint tasks themselves, and cost**:\n\n" + hint)


def mechanisms_paths(r: dict) -> str:
    import numpy as np

    runs, rows = r["runs"], []
    kv = r.get("into") == "keys_values"
    for task, name in (("ioi", "IOI"), ("colored_objects", "Colored Objects")):
        with warnings.catch_warnings():  # rows of non-senders are all NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            effects = np.nanmean([np.asarray(run[task]["effects"], dtype=float) for run in runs], axis=0)
        flat = np.where(np.isfinite(effects), effects, -np.inf)
        top = np.argsort(-flat, axis=None)[:5]
        heads = ", ".join(f"L{i // effects.shape[1]}H{i % effects.shape[1]} ({effects.flat[i]:.3f})" for i in top)
        total = np.mean([np.nansum(np.asarray(run[task]["effects"], dtype=float)) for run in runs])
        prompts = f"{np.mean([run[task]['n'] for run in runs]):.0f}"
        if kv:
            prompts += f" ({sum(run[task].get('unaligned', 0) for run in runs)} unaligned skipped)"
        rows.append([name, ", ".join(f"L{a}H{b}" for a, b in r["receivers"][task]), prompts, heads, f"{total:.3f}"])
    parts = [table(["task", "receivers (top-3 first-stage heads)", "prompts per seed", "top senders by mean path "
                    "effect", "sum of all senders' effects"], rows)]
    body = []
    for f in runs[0]["overlaps"]:
        o = [run["overlaps"][f] for run in runs]
        body.append([f"{float(f):.0%}", str(o[0]["size"]), f"{np.mean([x['overlap'] for x in o]):.2f} ± "
                     f"{np.std([x['overlap'] for x in o]):.2f}", f"{o[0]['chance']:.2f}"])
    parts.append(f"Sender circuits compared over the senders both tasks measure (layers 0-"
                 f"{r['common_sender_layers'] - 1}):\n\n" + table(["senders = top", "heads", "overlap", "chance"], body))
    into = ("the receivers' keys and values at earlier positions" if kv else "the receivers' final-token queries")
    return f"SmolLM2-135M-Instruct, {len(runs)} seeds (mean over seeds); paths into {into}.\n\n" + "\n\n".join(parts)


def _ms_rows(rows, key, digits=3):
    import numpy as np

    vals = [r[key] for r in rows if r.get(key) is not None]
    return f"{np.mean(vals):.{digits}f} ± {np.std(vals):.{digits}f}" if vals else "—"


def _configs(rows):
    return list(dict.fromkeys(r["config"] for r in rows))


def graphs_node(r: dict) -> str:
    rows, parts = r["rows"], []
    for ds in dict.fromkeys(x["dataset"] for x in rows):
        sub = [x for x in rows if x["dataset"] == ds]
        body = []
        for c in _configs(sub):
            cr = [x for x in sub if x["config"] == c]
            body.append([c, str(len(cr)), _ms_rows(cr, "auc"), _ms_rows(cr, "ap"), _ms_rows(cr, "node_acc"),
                         _ms_rows(cr, "fit_s", 0), _ms_rows(cr, "embed_s_per_1k", 3)])
        parts.append(f"**{ds}** (link prediction on held-out edges; node classification on the Planetoid split)\n\n"
                     + table(["encoder", "seeds", "link AUC", "link AP", "node accuracy (LR)", "fit s",
                              "embed s / 1k nodes"], body))
        shots = sorted({int(k.split("@")[1]) for x in sub for k in x if k.startswith("linear_probe@")})
        body = [[c] + [_ms_rows([x for x in sub if x["config"] == c], f"{h}@{k}")
                       for k in shots for h in ("linear_probe", "icl")] for c in _configs(sub)]
        parts.append(f"**{ds}**, few-shot node classification on the same frozen embeddings\n\n"
                     + table(["encoder"] + [f"{h} @{k}" for k in shots for h in ("linear_probe", "icl")], body))
    return "\n\n".join(parts)


def graphs_graph(*results: dict) -> str:
    body = []
    for r in results:
        rows = r["rows"]
        for ds in dict.fromkeys(x["dataset"] for x in rows):
            sub = [x for x in rows if x["dataset"] == ds]
            for c in _configs(sub):
                cr = [x for x in sub if x["config"] == c]
                body.append([ds, c, str(cr[0]["epochs"]), str(len(cr)), _ms_rows(cr, "graph_acc"),
                             _ms_rows(cr, "fit_s", 0), _ms_rows(cr, "embed_s_per_1k", 3)])
    return ("SVM on sum-pooled embeddings, 10-fold CV accuracy (mean over folds), mean ± sd over seeds.\n\n"
            + table(["data", "encoder", "epochs", "seeds", "accuracy", "fit s", "embed s / 1k nodes"], body))


def graphs_valuation(r: dict) -> str:
    rows = r["graph_rows"]
    body = []
    for name in dict.fromkeys(x["seller"] for x in rows):
        sub = [x for x in rows if x["seller"] == name]
        body.append([name, _ms_rows(sub, "W", 2), _ms_rows(sub, "relevance"), _ms_rows(sub, "diversity"),
                     _ms_rows(sub, "gain"), _ms_rows(sub, "value_seconds", 1)])
    corr = r["spearman_with_gain"]
    parts = [table(["seller", "W", "relevance R", "diversity D", "GCN gain", "value s"], body),
             "Spearman correlation with the GCN gain over every (seed, seller) that has one (not *identical* or "
             "*buyer rewired*, whose labels are the buyer's own): "
             + ", ".join(f"{k} {v:+.2f}" for k, v in corr.items()) + "."]
    if r.get("text_rows"):
        parts.append("Text sets in MiniLM's space, buyer sst2:\n\n" + table(
            ["seller", "relevance R", "diversity D", "components"],
            [[x["seller"], f"{x['relevance']:.3f}", f"{x['diversity']:.3f}", str(x["components"])]
             for x in r["text_rows"]]))
    return "\n\n".join(parts)


def graphs_select_lr(r: dict) -> str:
    return (f"Chosen: lr {r['chosen']:g} ({r['args']['epochs']} epochs, Cora seed-0 validation edges).\n\n"
            + table(["lr", "validation AUC", "fit s"],
                    [[f"{x['lr']:g}", f"{x['val_auc']:.3f}", f"{x['fit_s']:.0f}"] for x in r["rows"]]))


@dataclass(frozen=True)
class Section:
    title: str
    files: tuple[str, ...]           # result files under benchmarks/, given to the renderer in order
    render: Callable[..., str]
    plot: str | None = None

    @property
    def notes(self) -> Path:
        return BENCH / Path(self.files[0]).with_suffix(".notes.md")


def distill_frontier(r: dict) -> str:
    import numpy as np

    rows = r["rows"]
    base = rows[0]
    b32, b1 = np.mean(base["texts_per_s_b32"]), np.mean(base["texts_per_s_b1"])
    body = []

    def speedup(x, batch: str, default) -> str:
        # a row timed in another run than the teacher's row has no reference to divide by: the machine's speed
        # varies from run to run, so a ratio against the teacher's latest figure would be wrong
        ref = x.get(f"speed_ref_{batch}", None if "speed_ref_b32" in base else default)
        return "–" if ref is None else f"{np.mean(x[f'texts_per_s_{batch}']) / np.mean(ref):.2f}×"

    for x in rows:
        d8, d64 = x["mean_acc@8"] - base["mean_acc@8"], x["mean_acc@64"] - base["mean_acc@64"]
        body.append([x["label"], f"{x['parameters'] / 1e6:.1f}M", x["dim"],
                     f"{np.mean(x['texts_per_s_b32']):.0f} ± {np.std(x['texts_per_s_b32']):.0f}",
                     speedup(x, "b32", b32),
                     f"{np.mean(x['texts_per_s_b1']):.0f} ± {np.std(x['texts_per_s_b1']):.0f}",
                     speedup(x, "b1", b1),
                     x.get("speed_run", "earlier")[:16],
                     ms(x["mean_acc@8"], x["mean_acc@8_std"], 3), f"{100 * d8:+.1f}",
                     ms(x["mean_acc@64"], x["mean_acc@64_std"], 3), f"{100 * d64:+.1f}"])
    main = table(["backbone", "parameters", "dim", "texts/s (batch 32)", "speed-up", "texts/s (batch 1)", "speed-up",
                  "speed run", "acc @8/class", "Δ pts", "acc @64/class", "Δ pts"], body)
    tasks = r["tasks"]
    per = [[x["label"]] + [f"{np.mean([v for k, v in x['accuracy'].items() if k.startswith(t + '|64|')]):.3f}"
                           for t in tasks] for x in rows]
    note = ("Speed-ups are against the teacher measured in the same speed run (runs on different days differ: the "
            "teacher's own texts/s is in each row's run).\n\n" if any("speed_ref_b32" in x for x in rows) else "")
    return (note + main + "\n\nPer task, 64 labelled examples per class (mean of 3 seeds)\n\n"
            + table(["backbone"] + tasks, per))


def distill_student(r: dict) -> str:
    rep = r["report"]
    if r.get("init"):  # a student trained further from another's folder (anytask distill --init)
        total = f" ({r['total_align_steps']:,} alignment steps in all)" if r.get("total_align_steps") else ""
        return (f"Started from `{r['init']}` (the student of the section made by `{r['init_result']}`'s command) "
                f"and aligned to the teacher's sentence embeddings for {r['settings']['align_steps']:,} more steps"
                f"{total}; held-out cosine to the teacher, on the first run's held-out texts: "
                f"**{rep['held_out_cosine']:.3f}**. {r['align_wall_note']}. Made the same way by {r['equivalent']}.")
    rows = [[", ".join(map(str, c["keep"])), f"{c['held_out_cosine']:.3f}"] for c in rep["candidates"]]
    return (f"Layers kept: **{', '.join(map(str, rep['keep']))}**, chosen by the cosine to the teacher on "
            f"{r['settings']['held_out']} held-out corpus texts before training (top five of the 20 choices below); "
            f"after {r['settings']['align_steps']} {r.get('steps_name', 'alignment')} steps the held-out cosine is "
            f"**{rep['held_out_cosine']:.3f}**. {r['align_wall_note']}. Made the same way by `{r['equivalent']}`.\n\n"
            + table(["layers kept", "held-out cosine before training"], rows))


def distill_autodistil(r: dict) -> str:
    parts = [f"Teacher (MiniLM-L6) frozen linear-probe accuracy, mean of {', '.join(r['probe_tasks'])}: "
             f"**{r['teacher']['mean']:.3f}**."]
    keys = [k for k in r if k.startswith("superlm:")]
    net = lambda x: f"L{x['layers']} H{x['heads']} F{x['ffn']}"  # noqa: E731
    body = []
    space = lambda k: r[k].get("scored_space", "tiny")  # noqa: E731
    for k in keys:
        top = min(r[k]["rows"], key=lambda x: x["relation_loss"])
        body.append([k.split(":")[1], space(k), len(r[k]["history"]), f"{r[k]['fit_seconds']:.0f}",
                     f"{r[k]['spearman']:+.2f}", net(top), f"{top['accuracy']:.3f}",
                     f"{max(x['accuracy'] for x in r[k]['rows']):.3f}"])
    parts.append(table(["SuperLM", "nets scored (27)", "training steps", "fit s", "Spearman(-relation loss, accuracy)",
                        "best-ranked net", "its accuracy", "best accuracy of any net"], body))
    tiny = [k for k in keys if space(k) == "tiny"]
    if len(tiny) > 1:
        names = [k.split(":")[1] for k in tiny]
        body = [[net(rows[0]), f"{rows[0]['flops'] / 1e6:.0f}", *(f"{x['relation_loss']:.2f}" for x in rows),
                 *(f"{x['accuracy']:.3f}" for x in rows)] for rows in zip(*(r[k]["rows"] for k in tiny))]
        avg = lambda k, f: sum(x[f] for x in r[k]["rows"]) / len(r[k]["rows"])  # noqa: E731
        means = ["mean", "", *(f"{avg(k, 'relation_loss'):.2f}" for k in tiny),
                 *(f"{avg(k, 'accuracy'):.3f}" for k in tiny)]
        parts.append("The same tiny sub-networks under each SuperLM that scored them (tiny: one per sub-space; both: "
                     "one for both ranges; @0: untrained, plain slices of the teacher)\n\n"
                     + table(["net", "MFLOPs / text", *(f"loss ({n})" for n in names), *(f"acc ({n})" for n in names)],
                             body + [means]))
    for k in [k for k in keys if len(tiny) == 1 or space(k) != "tiny"]:
        rows = sorted(r[k]["rows"], key=lambda x: x["relation_loss"])
        parts.append(f"Every {space(k)} sub-network under the {k.split(':')[1]} SuperLM, by proxy rank\n\n" + table(
            ["rank", "net", "MFLOPs / text", "parameters", "relation loss", "accuracy"],
            [[i + 1, net(x), f"{x['flops'] / 1e6:.0f}", f"{x['parameters'] / 1e6:.1f}M", f"{x['relation_loss']:.2f}",
              f"{x['accuracy']:.3f}"] for i, x in enumerate(rows)]))
    if r.get("students"):
        parts.append("Students written for the frontier\n\n" + table(
            ["student", "layers", "heads", "FFN", "FLOPs vs teacher", "init", "aligned"],
            [[k, s["layers"], s["heads"], s["ffn"], f"{s['flops_vs_teacher']:.2f}", s["init"], s["aligned"]]
             for k, s in r["students"].items()]))
    return "\n\n".join(parts)


def distill_g2sd(r: dict) -> str:
    s = r["summary"]
    names = {"teacher": "MAE teacher (fine-tuned)", "logreg_pixels": "baseline: logistic regression on pixels",
             "scratch": "student from scratch", "mae": "student MAE-pre-trained alone",
             "generic": "generic distillation only", "specific": "specific distillation only (DeiT token)",
             "g2sd": "**G2SD** (generic + specific)", "g2sd masked-only": "G2SD, masked-only generic targets"}
    rows = []
    for k, name in names.items():
        c = s[k]
        pct = f"{100 * c['of_teacher']:.1f} %" if "of_teacher" in c else ""
        rows.append([name, c["n"], ms(c["accuracy"], c["accuracy_sd"], 4), pct,
                     f"{c['parameters'] / 1e3:.0f} k" if "parameters" in c else "", f"{c['fit_s']:.0f}"])
    return (f"MNIST (the shared 10,000 test images split 8,000 / 2,000, stratified), {r['seeds']} seeds (mean ± sd; "
            f"each seed its own teacher). Teacher {r['teacher_config']['dim']}-d x {r['teacher_config']['depth']}, "
            f"student {r['student_config']['dim']}-d x {r['student_config']['depth']}, patch "
            f"{r['student_config']['patch']}; % of teacher per seed, then averaged. Fit seconds on one core of a "
            "busy 2-core machine.\n\n"
            + table(["model", "seeds", "test accuracy", "% of teacher", "parameters", "fit s"], rows))


def distill_g2sd_text_specific(r: dict) -> str:
    s, tasks = r["summary"], r["tasks"]
    names = {"teacher": "baseline and teacher: linear probe on frozen MiniLM-L6",
             "generic only": "generic only: linear probe on the frozen G2SD student",
             "fine-tune, no teacher": "G2SD student fine-tuned on the labels alone",
             "specific only": "specific only: the teacher's layers, no generic stage",
             "G2SD": "**G2SD** (generic + specific)"}
    rows = [[names[k], ms(c["mean"], c["sd"]), ms(100 * c["of_teacher"], 100 * c["of_teacher_sd"], 1) + " %"]
            + [ms(c["per_task"][t]["mean"], c["per_task"][t]["sd"]) for t in tasks] + [f"{c['fit_s']:.0f}"]
            for k, c in s.items()]
    st = r["settings"]
    return (f"{r['shots_per_class']} labelled rows per class and {r['unlabelled']:,} unlabelled texts of the task, "
            f"seeds 0-{r['seeds'] - 1} (mean ± sd over seeds of the task mean; per task mean ± sd over seeds); % of "
            f"teacher per task and seed, then averaged. Fine-tuning: {st['steps']} steps, batch {st['batch_size']}, "
            f"lr {st['lr']} (encoder) / {st['head_lr']} (heads, token), fixed before the run. Fit seconds on one "
            "core of a 2-core machine (the teacher's include embedding the labelled rows).\n\n"
            + table(["model", "mean accuracy", "% of teacher", *tasks, "fit s"], rows))


def distill_rlq_image(r: dict) -> str:
    s = r["summary"]
    keys = [("lq_rank1", "rank-1, LQ queries"), ("lq_mAP", "mAP, LQ queries"), ("hq_rank1", "rank-1, clean queries"),
            ("hq_mAP", "mAP, clean queries"), ("hq_lq_distance", "clean/LQ distance"),
            ("pose_leakage", "pose probe acc."), ("fit_seconds", "fit s")]
    rows = [[f"**{v}**" if v == "RLQ" else v, c["seeds"]]
            + [f"{c[k]['mean']:.0f}" if k == "fit_seconds" else ms(c[k]["mean"], c[k]["sd"]) for k, _ in keys]
            for v, c in s.items()]
    majority = next(iter(s.values()))["pose_majority"]["mean"]
    return (f"20 test identities per seed (chance rank-1 0.05), gallery clean from session 0, queries from session 1 "
            f"(other clothes), mean ± sd over seeds {r['seeds']}; {r['steps']} re-identification steps per variant. "
            f"Pose probe: 3-fold CV accuracy predicting the pose cluster from identity features (majority class "
            f"{majority:.3f}; lower = less pose in the identity feature).\n\n"
            + table(["variant", "seeds"] + [label for _, label in keys], rows))


def distill_rlq(r: dict) -> str:
    import numpy as np

    views = ["clean", *r["kinds"]]
    names = list(r["rows"])
    base = r["rows"][names[0]]

    def mean_std(row, view):
        per_seed = [np.mean([row["accuracy"][f"{t}|{view}|{s}"] for t in r["tasks"]]) for s in r["seeds"]]
        return float(np.mean(per_seed)), float(np.std(per_seed))

    body = []
    for n in names:
        row = r["rows"][n]
        cells = []
        for v in views:
            m, sd = mean_std(row, v)
            delta = "" if row is base else f" ({100 * (m - mean_std(base, v)[0]):+.1f})"
            cells.append(f"{ms(m, sd, 3)}{delta}")
        dist = [np.mean([row["cosine_distance"][f"{t}|{k}"] for t in r["tasks"]]) for k in r["kinds"]]
        body.append([n, *cells, *[f"{d:.4f}" for d in dist]])
    main = table(["backbone", *[f"accuracy, {v} queries" for v in views],
                  *[f"clean-{k} cosine distance" for k in r["kinds"]]], body)
    per = [[t, *[f"{np.mean([r['rows'][n]['accuracy'][f'{t}|{v}|{s}'] for s in r['seeds']]):.3f}"
                 for n in names for v in views]] for t in r["tasks"]]
    head = ["task", *[f"{'teacher' if n == names[0] else 'RLQ'}: {v}" for n in names for v in views]]
    return (f"Linear probe on {r['shots']} clean examples per class, mean over 11 tasks, ± over seeds "
            f"{r['seeds']}; in brackets the difference from the teacher in points. RLQ training: "
            f"{r['params']['steps']} steps, {r['fit_seconds'] / 60:.0f} min.\n\n" + main
            + "\n\nPer task (mean of the seeds)\n\n" + table(head, per))


def renderer(package: str, name: str) -> Callable[..., str]:
    """A renderer of benchmarks/<package>/render.py (a family's tables live beside its benchmarks)."""
    def render(*results: dict) -> str:
        import importlib

        return getattr(importlib.import_module(f"{package}.render"), name)(*results)

    return render


def multitask(name: str) -> Callable[..., str]:
    return renderer("multitask", name)


PAGES: dict[str, tuple[str, list[Section]]] = {
    "heads": ("Few-shot heads on frozen features", [
        Section("The best few-shot classifier: every head, the contrastive head and SetFit, with wall times",
                ("spine/best_head_slow.json", "spine/best_head_slow_seed1.json", "spine/best_head_fast.json"), best_head, "spine/best_head.png"),
        Section("Few-shot heads on frozen MiniLM (11 text tasks, 5 seeds)", ("spine/few_shot.json",), bench_tables,
                "spine/few_shot.png"),
        Section("Calibration of the linear probe (temperature scaling on the support set)", ("spine/calibration.json",), calibration),
        Section("Wall time of that benchmark, cold and warm embedding cache", ("spine/wall_time.json",), wall_time),
        Section("Embedding throughput", ("spine/throughput.json",), throughput),
    ]),
    "icl": ("In-context learning (TART, BraInCoRL)", [
        Section("In-context head vs linear probe", ("icl/few_shot.json",), bench_tables, "icl/few_shot.png"),
        Section("Headroom: learners that see only the examples", ("icl/headroom.json",), icl_headroom),
        Section("Module variants that were tried", ("icl/variants.json",), icl_variants),
        Section("In-context regression on scikit-learn's diabetes data", ("icl/regression.json",), icl_regression),
        Section("Speed", ("icl/speed.json",), icl_speed),
    ]),
    "merging": ("Weight-space composition (task arithmetic, tangent fine-tuning, TIES, DARE, aTLAS)", [
        Section("Six tasks on MiniLM, standard vs linearised fine-tuning", ("merging/tasks.json",), merging_tables,
                "merging/tasks.png"),
        Section("Correctness and speed against PEFT's merges", ("merging/peft_check.json",), peft_check),
    ]),
    "finetune": ("Fine-tuning with sharpness-aware optimisers (SAM, TRAM)", [
        Section("Out-of-domain fine-tuning: AdamW vs SAM vs TRAM", ("tram/ood.json",), tram_table),
    ]),
    "prompting": ("Prompt tuning (plain deep prompts, PromptSRC) vs SetFit", [
        Section("Base-to-novel generalisation", ("prompting/base_to_novel.json", "prompting/base_to_novel_large.json"),
                base_to_novel, "prompting/base_to_novel.png"),
        Section("Few-shot accuracy and adaptation time", ("prompting/few_shot.json",), prompt_few_shot,
                "prompting/few_shot.png"),
    ]),
    "concepts": ("Concepts: sparse autoencoder, concept bottleneck (DN-CBM)", [
        Section("Sparse autoencoder quality", ("concepts/sae_quality.json",), sae_quality),
        Section("Concept bottleneck vs linear probe, few-shot", ("concepts/few_shot.json",), bench_tables,
                "concepts/few_shot.png"),
        Section("Concept bottleneck vs linear probe, full training sets", ("concepts/full_data.json",), concepts_full),
    ]),
    "continual": ("Continual learning without task ids (TAME)", [
        Section("Text stream", ("continual/text.json",), stream_table, "continual/text.png"),
        Section("Text stream, experts pruned to 80 % sparsity", ("continual/text_pruned.json",), stream_table,
                "continual/text_pruned.png"),
        Section("Split-MNIST", ("continual/split_mnist.json",), stream_table, "continual/split_mnist.png"),
        Section("Permuted-MNIST", ("continual/permuted_mnist.json",), stream_table, "continual/permuted_mnist.png"),
    ]),
    "lm": ("Causal language models: few-shot prompting, calibration, HSO, conditional beam search, MTF", [
        Section("Few-shot prompting of SmolLM2 against probes on the same examples", ("lm/prompting.json",),
                lm_prompting, "lm/prompting.png"),
        Section("Hidden-state optimisation and conditional beam search", ("lm/hso_beam.json",), lm_hso_beam),
        Section("Multitask prompted fine-tuning (LoRA), zero-shot on held-out clusters", ("lm/mtf.json",), lm_mtf),
        Section("Crosslingual transfer to a ciphered language seen only in continued pre-training", ("lm/cipher.json",),
                lm_cipher),
        Section("Demonstrations chosen by similarity (KATE)", ("lm/kate.json",), lm_kate),
        Section("`auto` with SmolLM2 as a candidate", ("lm/auto_lm.json", "lm/auto_lm_validation.json"), lm_auto),
    ]),
    "retrieval": ("Retrieval: vector indexes, rankers, one similarity head", [
        Section("Exact and approximate (HNSW) indexes: build, latency, memory, recall", ("retrieval/index.json",),
                retrieval_index),
        Section("UWE on ESCO and CISI: BM25, frozen MiniLM and many-to-many tuning under each scorer",
                ("retrieval/uwe.json",), retrieval_uwe),
        Section("Uni-Perceiver v2 on text: specialists vs one generalist (mixed, unmixed, unmixed + balanced)",
                ("retrieval/generalist.json",), retrieval_generalist),
        Section("Uni-Perceiver v1 on text: multi-task training, zero-shot label spaces, 1 % of banking77",
                ("retrieval/uni_perceiver.json",), retrieval_uni_perceiver),
    ]),
    "scale": ("Scale-out on Ray: embedding throughput", [
        Section("One process vs Ray with 1 and 2 local workers", ("scale/embed.json",), scale_embed),
    ]),
    "mechanisms": ("Mechanisms: circuit reuse, task difficulty, an attention bottleneck, task hinting, the Tensor Brain", [
        Section("IOI and Colored Objects: per-head patching, circuit overlap, steering", ("mechanisms/circuits.json",),
                mechanisms_circuits, "mechanisms/circuits.png"),
        Section("Path patching's second stage: the heads that feed each circuit's top heads", ("mechanisms/paths.json",),
                mechanisms_paths, "mechanisms/paths.png"),
        Section("Path patching into keys and values: what reaches the top heads at earlier positions",
                ("mechanisms/paths_kv.json",), mechanisms_paths, "mechanisms/paths_kv.png"),
        Section("Inductive-bias complexity: the reference table, pixels, and the text tasks through MiniLM",
                ("mechanisms/difficulty.json",), mechanisms_difficulty),
        Section("The Consciousness Prior's bottleneck on sparse factor graphs, and a dense control",
                ("mechanisms/bottleneck.json",), mechanisms_bottleneck, "mechanisms/bottleneck.png"),
        Section("Task hinting: sorting beyond the trained lengths, with and without hints",
                ("mechanisms/hinting.json",), mechanisms_hinting, "mechanisms/hinting.png"),
        Section("Task hinting, the second check: increment beyond the trained lengths, with and without the carry hint",
                ("mechanisms/hinting_increment.json",), mechanisms_hinting, "mechanisms/hinting_increment.png"),
        Section("The Tensor Brain's bilayer: perception, episodic recall, concept learning, semantic memory",
                ("mechanisms/tensor_brain.json",), mechanisms_tensor_brain, "mechanisms/tensor_brain.png"),
    ]),
    "graphs": ("Graphs: one frozen encoder for node, link and graph tasks; task-agnostic valuation", [
        Section("Node level: link prediction and node classification on Cora and CiteSeer", ("graphs/node.json",),
                graphs_node, "graphs/node.png"),
        Section("Graph level: MUTAG (with IsoC-VGAE's ablations) and PROTEINS",
                ("graphs/graph.json", "graphs/proteins.json"), graphs_graph, "graphs/graph.png"),
        Section("How IsoC-VGAE's learning rate was chosen (validation edges only)", ("graphs/select_lr.json",),
                graphs_select_lr),
        Section("Valuation: W, relevance and diversity under controlled changes, and a GCN's gain",
                ("graphs/valuation.json",), graphs_valuation, "graphs/valuation.png"),
    ]),
    "distill": ("Distillation: smaller, faster backbones", [
        Section("The speed / accuracy frontier on the 11 shared tasks", ("distill/frontier.json",), distill_frontier,
                "distill/frontier.png"),
        Section("The layer-drop student minilm-l3: which layers, and how close it gets",
                ("distill/minilm_l3.json",), distill_student),
        Section("The same student aligned 4x longer (1,200 steps)", ("distill/minilm_l3_1200.json",), distill_student),
        Section("... and 8x longer (2,400 steps, in two runs)", ("distill/minilm_l3_2400.json",), distill_student),
        Section("... and 16x longer (4,800 steps, in three runs)", ("distill/minilm_l3_4800.json",), distill_student),
        Section("G2SD's generic distillation (text): the same layers distilled on masked-text token states",
                ("distill/g2sd_text.json",), distill_student),
        Section("G2SD text, the paper's ablation: masked tokens only supervised", ("distill/g2sd_text_masked.json",),
                distill_student),
        Section("G2SD text, then sentence alignment: generic token distillation followed by 1,200 alignment steps",
                ("distill/g2sd_text_aligned.json",), distill_student),
        Section("G2SD text, the specific stage: the student fine-tuned on one task with the teacher's predictions",
                ("distill/g2sd_text_specific.json",), distill_g2sd_text_specific),
        Section("AutoDistil: does the proxy rank sub-networks as downstream accuracy does? One SuperLM or two?",
                ("distill/autodistil.json",), distill_autodistil, "distill/autodistil.png"),
        Section("RLQ, text analogue: noisy queries against clean-trained heads", ("distill/rlq.json",), distill_rlq),
        Section("RLQ in its own setting: clothes-changing re-identification of low-quality queries (synthetic)",
                ("distill/rlq_image.json",), distill_rlq_image, "distill/rlq_image.png"),
        Section("G2SD on MNIST: a small ViT from an MAE teacher, by each of the card's recipes", ("distill/g2sd.json",),
                distill_g2sd),
    ]),
    "multitask": ("Multi-task: many tasks trained together on one frozen backbone", [
        Section("The 11 text tasks trained jointly, against per-task linear probes", ("multitask/text.json",),
                multitask("text"), "multitask/text.png"),
        Section("How the defaults were chosen (cross-validation inside the training rows)",
                ("multitask/select_defaults.json",), multitask("select")),
        Section("The guard: each task keeps the joint model only where cross-validation says it helps",
                ("multitask/text_guarded.json",), multitask("guarded"), "multitask/text_guarded.png"),
        Section("How the guard's rule was chosen (cross-validation on training rows only)",
                ("multitask/select_guard.json",), multitask("select_guard")),
        Section("Task conflict: synthetic label functions on real MiniLM embeddings", ("multitask/conflict.json",),
                multitask("conflict"), "multitask/conflict.png"),
        Section("The task-token router: adding tasks one at a time", ("multitask/router.json",), multitask("router")),
        Section("Lasso A-MTRL, synthetic linear setting", ("multitask/amtrl_linear.json",), multitask("amtrl_linear"),
                "multitask/amtrl_linear.png"),
        Section("Lasso A-MTRL on text: choosing source tasks for a held-out target", ("multitask/amtrl_text.json",),
                multitask("amtrl_text")),
    ]),
    "scores": ("Scores: a number from frozen features", [
        Section("UniQA's anchored scorer on text: zero-shot anchors, learned levels, adapter; ridge and a linear probe",
                ("scores/uniqa.json",), renderer("scores", "uniqa"), "scores/uniqa.png"),
    ]),
    "alignment": ("Alignment: new signals into the frozen space, multi-view bags into frozen embeddings", [
        Section("BrainCLIP on synthetic voxels: zero-shot decoding of unseen classes, retrieval, ablations, a second "
                "subject", ("alignment/brainclip.json",), renderer("alignment", "brainclip")),
        Section("MADELEINE on synthetic multi-stain slides: few-shot probes on frozen slide embeddings",
                ("alignment/madeleine.json",), renderer("alignment", "madeleine"), "alignment/madeleine.png"),
    ]),
    "control": ("Control: representations trained once, reused frozen by learners", [
        Section("Proto-Value Networks on MinAtar: a linear Q-function on frozen features vs DQN from scratch",
                ("control/pvn.json",), renderer("control", "pvn"), "control/pvn.png"),
        Section("PVN: auxiliary tasks × feature width on Breakout, beside random features of each width",
                ("control/pvn_sweep.json",), renderer("control", "pvn_sweep"), "control/pvn_sweep.png"),
        Section("The codebook bottleneck in grid-world object-goal navigation: success, SPL, SEL, probes",
                ("control/codebook.json",), renderer("control", "codebook"), "control/codebook.png"),
        Section("RL-100 on the push world: imitation, OPE-gated offline RL, online RL and a one-step student",
                ("control/rl100.json",), renderer("control", "rl100"), "control/rl100.png"),
        Section("Ag2Manip on the push world: a masked-video reward across bodies; proxy vs native actions for an arm",
                ("control/ag2manip.json",), renderer("control", "ag2manip")),
    ]),
    "agents": ("Agents: one frozen LM reused across reasoning and tasks", [
        Section("RL of Thoughts: a learned navigator over logic blocks, on the simulated reasoner and on SmolLM2",
                ("agents/rlot.json",), renderer("agents", "rlot"), "agents/rlot.png"),
        Section("MAPLE: a persistent FSM memory for a GUI agent on a simulated phone, against its ablations",
                ("agents/maple.json",), renderer("agents", "maple"), "agents/maple.png"),
        Section("LMA3: an autotelic loop in Mini-CookingWorld, its ablations, and SmolLM2 in the loop",
                ("agents/lma3.json",), renderer("agents", "lma3"), "agents/lma3.png"),
    ]),
    "generative": ("Generative: one small infiller serving unseen image tasks, a LoRA per new relation, a magnifier", [
        Section("VisualCloze: infilling unseen tasks from 0, 1, 2 in-context rows, visual-only and with a text prompt",
                ("generative/visualcloze.json",), renderer("generative", "visualcloze_tables"),
                "generative/visualcloze.png"),
        Section("IC-LoRA: rank-4 LoRA vs full fine-tuning vs no tuning on 20 / 50 / 100 canvases of a new relation",
                ("generative/ic_lora.json",), renderer("generative", "ic_lora_tables"), "generative/ic_lora.png"),
        Section("LSceneLLM on the card's toy scenes: coarse only, all fine tokens, the magnifier",
                ("generative/lscenellm.json",), renderer("generative", "lscenellm_tables"),
                "generative/lscenellm.png"),
        Section("LSceneLLM on smaller toy scenes (8 regions)", ("generative/lscenellm_small.json",),
                renderer("generative", "lscenellm_tables"), "generative/lscenellm_small.png"),
        Section("LSceneLLM, text-backed: dbpedia documents as regions, MiniLM token states as fine tokens",
                ("generative/lscenellm_text.json",), renderer("generative", "lscenellm_text_tables")),
    ]),
    "cli": ("The command line: what a user waits for", [
        Section("Wall time of everyday commands, before and after", ("cli/wall_time.json",), cli_wall_time),
    ]),
    "serve": ("The HTTP service under load", [
        Section("Many tasks behind one endpoint", ("serve/load.json",), serve_load),
        Section("The same load on the int8 fast path, beside MiniLM (one session, one round each)",
                ("serve/load_minilm_r1.json", "serve/load_int8.json"), serve_load_backbones),
        Section("The same load on the fastest student (minilm-l3, 1,200 steps, int8), beside MiniLM (one session)",
                ("serve/load_minilm_1205.json", "serve/load_l3_int8.json"), serve_load_backbones),
        Section("The same load on the student that meets the distillation goal (minilm-l3, 4,800 steps, int8), beside "
                "MiniLM (one session)", ("serve/load_minilm_1205_s3.json", "serve/load_l3_4800_int8.json"),
                serve_load_backbones),
        Section("Fault injection: kill -9 during mixed writes", ("serve/faults.json",), serve_faults),
    ]),
}


def _command(results: list[dict]) -> str:
    cmds = [r.get("command") or r.get("command_cold") for r in results]
    return "\n".join(c for c in cmds if c)


def page(family: str) -> str:
    title, sections = PAGES[family]
    out = [f"# Results: {title}", "",
           "<!-- generated by `python benchmarks/docs.py` from the result files linked below; edit the "
           "*.notes.md files beside them, not this page -->", "",
           "Every number was measured on the project's 2-core CPU machine; baselines ran in the same process as "
           "what they are compared with.", ""]
    for s in sections:
        results = [_load(f) for f in s.files]
        links = ", ".join(f"[{Path(f).name}](../../benchmarks/{f})" for f in s.files)
        out += [f"## {s.title}", ""]
        if s.notes.is_file():
            out += [s.notes.read_text(encoding="utf-8").strip(), ""]
        command = _command(results)
        if command:
            out += ["```", command, "```", ""]
        out += [f"Result file: {links}.", "", s.render(*results).strip(), ""]
        if s.plot:
            out += [f"![{s.title}](../../benchmarks/{s.plot})", ""]
    return "\n".join(out).rstrip() + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with docs/results/ instead of writing")
    args = ap.parse_args(argv)
    stale = []
    for family in PAGES:
        text, path = page(family), OUT / f"{family}.md"
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print("stale (run python benchmarks/docs.py): " + ", ".join(stale), file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
