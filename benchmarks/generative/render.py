"""Figures and results-page tables for the generative benchmarks (VisualCloze, IC-LoRA, LSceneLLM)."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    """matplotlib's pyplot on the Agg backend, or None (with a note) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: figure skipped (pip install 'anytask[plot]')")
        return None
    return plt


def _table(header: list[str], rows: list[list]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def _ms(cell) -> str:
    return f"{cell[0]:.4f} ± {cell[1]:.4f}" if cell else "—"


VC_COLUMNS = ("visual", "visual + text", "copy condition", "copy example target", "mean of example targets",
              "task-mean panel (oracle)")


def plot_visualcloze(result: dict, out: Path) -> None:
    plt = _pyplot()
    if plt is None:
        return
    groups = list(result["groups"])
    fig, axes = plt.subplots(1, len(groups), figsize=(4 * len(groups), 3.4), sharey=True)
    for ax, group in zip(axes, groups):
        for name, style in zip(VC_COLUMNS, ("o-", "s-", "k--", "k:", "k-.", "g:")):
            pts = [(k, result["summary"].get(f"shapes|{group}|{k}", {}).get(name)) for k in (0, 1, 2)]
            pts = [(k, c) for k, c in pts if c]
            if pts:
                ax.errorbar([k for k, _ in pts], [c[0] for _, c in pts], yerr=[c[1] for _, c in pts], fmt=style,
                            label=name, capsize=3)
        ax.set_title(group)
        ax.set_xlabel("in-context example rows")
        ax.set_xticks([0, 1, 2])
        ax.set_yscale("log")
    axes[0].set_ylabel("infilling MSE (shapes, log scale)")
    axes[-1].legend(fontsize=8)
    fig.suptitle(f"VisualCloze grid infiller, {result['seeds']} seeds (mean ± sd)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def visualcloze_tables(result: dict) -> str:
    parts = []
    for source in ("shapes", "mnist"):
        rows = []
        for group in result["groups"]:
            for k in (0, 1, 2):
                cell = result["summary"].get(f"{source}|{group}|{k}")
                if cell:
                    rows.append([group, k] + [_ms(cell.get(c)) for c in VC_COLUMNS])
        if rows:
            parts.append(f"**{source}** ({'trained on' if source == 'shapes' else 'never trained on'}): infilling "
                         f"MSE, mean ± sd over {result['seeds']} seeds (lower is better)\n\n"
                         + _table(["group", "example rows"] + list(VC_COLUMNS), rows))
    jobs = result["jobs"]
    parts.append(f"Model: {jobs[0]['parameters']:,} parameters, {result['steps']} steps; training "
                 f"{sum(j['train_seconds'] for j in jobs) / len(jobs):.0f} s per seed on one thread.")
    return "\n\n".join(parts)


IC_LABELS = {"none": "no tuning", "lora": "LoRA (rank 4)", "full": "full fine-tuning"}


def plot_ic_lora(result: dict, out: Path) -> None:
    plt = _pyplot()
    if plt is None:
        return
    rels = list(result["relations"]) + ["mean"]
    fig, axes = plt.subplots(1, len(rels), figsize=(3.6 * len(rels), 3.3), sharey=True)
    sizes = result["sizes"]
    for ax, rel in zip(axes, rels):
        for mode, style in (("none", "k--"), ("lora", "o-"), ("full", "s-")):
            cells = [result["summary"]["cells"][f"{rel}|{s}"][mode] for s in sizes]
            ax.errorbar(sizes, [c[0] for c in cells], yerr=[c[1] for c in cells], fmt=style, capsize=3,
                        label=IC_LABELS[mode])
        ic = [result["summary"]["cells"][f"{rel}|{s}"]["in-context (2 rows, no tuning)"][0] for s in sizes]
        ax.plot(sizes, ic, "g:", label="in-context, 2 rows + caption")
        ax.set_title(rel)
        ax.set_xlabel("tuning canvases")
    axes[0].set_ylabel("infilling MSE")
    axes[-1].legend(fontsize=8)
    fig.suptitle(f"IC-LoRA on the grid infiller, {result['seeds']} seeds (mean ± sd)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def ic_lora_tables(result: dict) -> str:
    s = result["summary"]
    rows = []
    for rel in list(result["relations"]) + ["mean"]:
        for size in result["sizes"]:
            cell = s["cells"][f"{rel}|{size}"]
            rows.append([rel, size] + [_ms(cell[m]) for m in ("none", "lora", "full")]
                        + [_ms(cell["in-context (2 rows, no tuning)"])])
    table = _table(["relation", "canvases", "no tuning", "LoRA (rank 4)", "full fine-tuning",
                    "in-context, 2 rows + caption (no tuning)"], rows)
    p = s["trainable"]
    cost = _table(["", "no tuning", "LoRA (rank 4)", "full fine-tuning"],
                  [["trainable parameters", p["none"],
                    f"{p['lora']:,} ({100 * p['lora'] / s['base_parameters']:.1f} %)", f"{p['full']:,}"],
                   ["tuning seconds (200 steps)"] + [f"{s['tune_s'][m]:.1f}" for m in ("none", "lora", "full")]])
    return (f"Infilling MSE of the target panel on 200 fresh canvases per relation, mean ± sd over "
            f"{result['seeds']} seeds (lower is better)\n\n{table}\n\n{cost}")


def plot_lscenellm(result: dict, out: Path) -> None:
    plt = _pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for v, marker in zip(result["variants"], "osD^v"):
        c = result["summary"][v]
        ax.errorbar(c["tokens_attended"], c["accuracy"], xerr=c["tokens_attended_sd"], yerr=c["accuracy_sd"],
                    fmt=marker, capsize=3, label=v)
    ax.axhline(1 / result.get("scenes", {"shapes": 6})["shapes"], color="grey", ls=":", label="chance")
    ax.set_xlabel("keys attended per text token (summed over 3 layers)")
    ax.set_ylabel("answer accuracy")
    sc = result.get("scenes", {"regions": 16, "fine": 4})
    ax.set_title(f"LSceneLLM toy scenes {sc['regions']}x{sc['fine']}, {result['seeds']} seeds (mean ± sd)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


READER_HEADER = ["reader", "accuracy", "keys attended", "regions magnified", "selection recall",
                 "selection precision"]


def _reader_rows(result: dict, layers: bool) -> list[list]:
    rows = []
    for v in result["variants"]:
        c = result["summary"][v]

        def f(k, d=3):
            return f"{c[k]:.{d}f} ± {c[k + '_sd']:.{d}f}" if k in c else "—"
        rows.append([v, f("accuracy"), f("tokens_attended", 1), f("regions_magnified", 2), f("selection_recall"),
                     f("selection_precision")]
                    + ([" / ".join(f"{x:.2f}" for x in c.get("recall_by_layer", [])) or "—"] if layers else [])
                    + [f"{c['train_s']:.0f}"])
    return rows


def lscenellm_tables(result: dict) -> str:
    sc = result.get("scenes", {"regions": 16, "fine": 4, "colours": 12, "shapes": 6})
    return (f"Toy scenes ({sc['regions']} regions x {sc['fine']} fine tokens, {sc['colours']} colours, "
            f"{sc['shapes']} shapes: chance {1 / sc['shapes']:.3f}), 2,000 test scenes, mean ± sd over "
            f"{result['seeds']} seeds\n\n"
            + _table(READER_HEADER + ["recall by layer", "train s"], _reader_rows(result, layers=True)))


def lscenellm_text_tables(result: dict) -> str:
    maj = result["summary"][result["variants"][0]]["majority"]
    return (f"8 documents per scene, 8 MiniLM token states each, 14 classes (majority class {maj:.3f}); 2,000 test "
            f"scenes over held-out documents, mean ± sd over {result['seeds']} seeds\n\n"
            + _table(READER_HEADER + ["train s"], _reader_rows(result, layers=False)))
