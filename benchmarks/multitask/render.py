"""Markdown tables of the multi-task result files, for benchmarks/docs.py (the one writer of results pages)."""

from __future__ import annotations

import numpy as np


def _table(header: list[str], rows: list[list]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def _pts(v: float) -> str:
    return f"{100 * v:+.1f}"


def text(r: dict) -> str:
    s, parts = r["summary"], []
    order = ["linear_probe", "linear_probe_views", "lr_cv", "lr_cv_views"] + r["methods"]
    for size in r["sizes"]:
        label = f"{size[:-2]} per class" if size.endswith("pc") else f"{size} rows per task"
        body = []
        for m in order:
            e = s.get(f"{size}|{m}")
            if e is None:
                continue
            d = e.get("vs_lr_cv", {})
            body.append([f"**{m}**" if m == "lr_cv" else m, e["seeds"], f"{e['mean_accuracy']:.3f} ± {e['sd']:.3f}",
                         _pts(d.get("delta", 0)) if m != "lr_cv" else "—",
                         f"{d.get('worst_task', '—')} {_pts(d['worst_delta'])}" if m != "lr_cv" and d else "—",
                         d.get("tasks_losing_over_1pt", "—") if m != "lr_cv" else "—",
                         f"{e['fit_seconds']:.1f}", e.get("parameters") or "—"])
        parts.append(f"**{label}** (mean over the 11 tasks; ± over seeds; Δ in points against `lr_cv`, the "
                     "stronger per-task baseline; fit s: one joint fit of all 11 tasks, or one task's probe)\n\n"
                     + _table(["method", "seeds", "mean accuracy", "Δ vs lr_cv", "worst task Δ", "tasks < −1 pt",
                               "fit s", "parameters"], body))
    size = r["sizes"][0]
    tasks = r["tasks"]
    body = []
    for m in ["lr_cv_views"] + r["methods"]:
        e = s.get(f"{size}|{m}")
        if e and "vs_lr_cv" in e:
            body.append([m] + [_pts(e["vs_lr_cv"]["task_delta"][t]) for t in tasks])
    parts.append(f"Per task at {size} rows per task, Δ against `lr_cv` in points (mean of the seeds)\n\n"
                 + _table(["method"] + tasks, body))
    gates = [x for x in r["rows"] if "gate_entropy" in x and x["size"] == size]
    if gates:
        body = [[t, f"{np.mean([x['gate_entropy'] for x in gates if x['task'] == t]):.2f}",
                 f"{np.mean([x['memory_weight'] for x in gates if x['task'] == t]):.2f}"] for t in tasks]
        parts.append(f"TaskExpert's gates at {size} rows per task (test rows; mean over layers and seeds; the "
                     f"largest possible entropy is {gates[0]['gate_max_entropy']:.2f} nats, 0 is a collapsed "
                     "gate)\n\n" + _table(["task", "gate entropy", "weight on the memory"], body))
    return "\n\n".join(parts)


def conflict(r: dict) -> str:
    s, rhos = r["summary"], r["rhos"]
    body = [[m] + [f"{100 * s[f'{rho}|{m}']['mean']:.1f} ± {100 * s[f'{rho}|{m}']['sd']:.1f}" for rho in rhos]
            for m in r["methods"]]
    out = (f"Mean accuracy (%) over the {r['tasks']} tasks, ± over {len(r['seeds'])} seeds\n\n"
           + _table(["method"] + [f"ρ = {rho:g}" for rho in rhos], body))
    gains = [[f"dtrn − {o}"] + [_pts(s[f"{rho}|dtrn"]["mean"] - s[f"{rho}|{o}"]["mean"]) for rho in rhos]
             for o in ("shared_bottom", "mmoe", "ple", "lr_cv") if f"{rhos[0]}|{o}" in s]
    return out + "\n\nDTRN's gain in points (the card's claim: it grows as ρ falls)\n\n" + \
        _table(["difference"] + [f"ρ = {rho:g}" for rho in rhos], gains)


def router(r: dict) -> str:
    s, steps = r["summary"], r["steps"]
    body = []
    for n in range(r["first"], len(r["tasks"]) + 1):
        rows = [x for x in steps if x["n_tasks"] == n]
        body.append([n, rows[0]["added"], f"{np.mean([np.mean(list(x['accuracy'].values())) for x in rows]):.3f}",
                     f"{max(x['old_logit_drift'] for x in rows):g}", f"{np.mean([x['seconds'] for x in rows]):.1f}",
                     rows[0]["parameters"]])
    out = ("After each addition (mean over seeds of the mean accuracy of the tasks so far; drift: the largest change "
           "of any older task's logits on its test rows)\n\n"
           + _table(["tasks", "added", "mean accuracy", "old-task drift", "seconds", "parameters"], body))
    final = _table(["", "mean accuracy over 11 tasks"],
                   [["router, tasks added one at a time", f"{s['added_one_at_a_time']['mean']:.3f} ± "
                     f"{s['added_one_at_a_time']['sd']:.3f}"],
                    ["router, all 11 trained at once", f"{s['joint']['mean']:.3f} ± {s['joint']['sd']:.3f}"],
                    ["lr_cv, each task alone", f"{s['lr_cv']['mean']:.3f} ± {s['lr_cv']['sd']:.3f}"]])
    return (out + "\n\n" + final + f"\n\nPlanner (nearest task centroid) names the right task for "
            f"{100 * s['planner_accuracy']:.1f} % of all test requests; largest old-task drift over every addition: "
            f"{s['max_old_logit_drift']:g}; an addition takes {s['mean_add_seconds']:.1f} s on average.")


def select(r: dict) -> str:
    body = [[k.replace("|", ", "), f"{v['mean']:.4f} ± {v['sd']:.4f}"] for k, v in r["summary"].items()]
    return (f"3-fold CV accuracy inside the {r['size']} training rows of each task (seed 0), mean over the 11 "
            "tasks, ± over folds\n\n" + _table(["setting", "CV accuracy"], body))


def amtrl_linear(r: dict) -> str:
    s, totals = r["summary"], r["totals"]
    body = [[lab] + [f"{s[f'{lab}|{t}']['mean']:.3f} ± {s[f'{lab}|{t}']['sd']:.3f}" for t in totals]
            for lab in r["labels"]]
    f1 = [[lab] + [f"{s[f'{lab}|{t}']['support_f1']:.2f}" for t in totals] for lab in r["labels"]
          if "known" not in lab and lab != "uniform"]
    return (f"Target excess risk (mean ± sd over {len(r['seeds'])} seeds) against total source samples\n\n"
            + _table(["allocation"] + [str(t) for t in totals], body)
            + "\n\nSupport F1 of the estimated relevance against the true one (the known ν on the true heads)\n\n"
            + _table(["allocation"] + [str(t) for t in totals], f1))


def amtrl_text(r: dict) -> str:
    s = r["summary"]
    totals = sorted({x["total"] for x in r["rows"]})
    body = [[rule] + [f"{s[f'{rule}|{t}']['mean']:.3f} ± {s[f'{rule}|{t}']['sd']:.3f}" for t in totals]
            for rule in ("uniform", "nu2", "nu1")]
    last = [x for x in r["rows"] if x["total"] == totals[-1] and x["rule"] == "nu1" and x["seed"] == 0]
    picks = "; ".join(f"{x['target']}: {', '.join(x['top_sources'][:3])}" for x in last)
    return (f"Target accuracy (mean ± sd over {len(r['seeds'])} seeds × {len(r['targets'])} targets, "
            f"{r['n_target']} target examples) against total source samples; the target's own logistic regression "
            f"on raw embeddings: {s['target_only_lr']['mean']:.3f}\n\n"
            + _table(["allocation"] + [str(t) for t in totals], body)
            + f"\n\nThe three sources ν¹ weighs most at the end (seed 0): {picks}")


def guarded(r: dict) -> str:
    """The guard's run: the text tables, then what cross-validation chose for each task."""
    parts = [text(r)]
    for size in r["sizes"]:
        for m in [m for m in r["methods"] if m.startswith("guarded")]:
            rows = [x for x in r["rows"] if x["method"] == m and x["size"] == size and "choice" in x]
            if not rows:
                continue
            body = [[t, ", ".join(f"{k} ×{sum(x['choice'] == k for x in rows if x['task'] == t)}"
                                  for k in ("joint", "probe_last", "probe_views")
                                  if any(x["choice"] == k for x in rows if x["task"] == t))]
                    for t in r["tasks"]]
            parts.append(f"What `{m}` kept per task at {size} (over {len({x['seed'] for x in rows})} seeds)\n\n"
                         + _table(["task", "choice × seeds"], body))
    return "\n\n".join(parts)


def select_guard(r: dict) -> str:
    s = r["summary"]
    body = [[k, f"{v['mean_accuracy']:.3f}", _pts(v["vs_lr_cv"]) if "vs_lr_cv" in v else "—",
             f"{v['worst_task']} {_pts(v['worst_delta'])}" if "worst_task" in v else "—",
             ("yes" if v["meets_goal"] else "no") if "meets_goal" in v else "—"] for k, v in s.items()]
    return (f"Outer 3-fold cross-validation inside the {r['size']} training rows per task, seeds {r['seeds']}, base "
            f"`{r['base']}` (accuracy over every held-out row; Δ in points against `lr_cv` on the same rows). "
            f"Chosen: **`{r['chosen']}`**.\n\n"
            + _table(["rule", "mean accuracy", "Δ vs lr_cv", "worst task Δ", "meets the goal here"], body))
