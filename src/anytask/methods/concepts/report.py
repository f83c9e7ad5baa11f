"""Concept cards: an HTML page showing what drove each prediction of a concept bottleneck."""

from __future__ import annotations

import html
from pathlib import Path


def explanation_html(texts: list[str], explanations, concept_model, title: str = "anytask explain") -> str:
    cards = []
    for text, e in zip(texts, explanations):
        peak = max((abs(c.contribution) for c in e.concepts), default=1.0) or 1.0
        rows = []
        for c in e.concepts:
            width = int(100 * abs(c.contribution) / peak)
            color = "#2b8a3e" if c.contribution > 0 else "#c92a2a"
            examples = concept_model.top_texts[c.index] if c.index < len(concept_model.top_texts) else []
            tip = html.escape(" | ".join(examples))
            rows.append(
                f'<div class="row" title="{tip}"><span class="name">{html.escape(c.name)}'
                f' <small>#{c.index}</small></span><span class="bar" style="width:{width}%;background:{color}"></span>'
                f'<span class="val">{c.contribution:+.2f}</span></div>'
                + (f'<div class="ex">e.g. {html.escape(examples[0])}</div>' if examples else ""))
        cards.append(
            f'<div class="card"><div class="text">{html.escape(text)}</div>'
            f'<div class="pred">{html.escape(str(e.label))} <small>{e.probability:.0%}</small></div>'
            + "".join(rows) + "</div>")
    style = """body{font-family:system-ui,sans-serif;margin:24px;background:#f8f9fa;color:#212529}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002;padding:14px 18px;margin:0 0 16px;max-width:760px}
.text{font-size:15px;margin-bottom:6px}.pred{font-weight:600;font-size:18px;margin-bottom:10px}
.row{display:flex;align-items:center;gap:8px;margin:3px 0}.name{width:200px;font-size:13px}
.bar{height:12px;border-radius:3px;display:inline-block;max-width:380px;flex:none}
.val{font-size:12px;color:#495057}.ex{font-size:11px;color:#868e96;margin:0 0 6px 208px}small{color:#868e96}"""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h2>{html.escape(title)}</h2>"
            "<p>Each bar is a named concept's contribution to the predicted class (weight × activation); "
            "hover a concept to see the texts that activate it most.</p>" + "".join(cards) + "</body></html>")


def write_html(path: str | Path, page: str) -> Path:
    from anytask.core.io import write_file_atomic

    return write_file_atomic(path, page.encode("utf-8"))
