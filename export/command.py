"""`websem export`: the click command (a thin wrapper over websem.export.export_model)."""

from __future__ import annotations

from pathlib import Path

import click
from websem.export.quantize import MODES
from websem.text.errors import WebsemError

__all__ = ["export_cmd"]


def _parse_option(values: tuple[str, ...]) -> dict:
    import json

    opts = {}
    for v in values:
        key, sep, raw = v.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {v!r}", param_hint="--quantization-option")
        try:
            opts[key] = json.loads(raw)
        except ValueError:
            opts[key] = raw
    return opts


@click.command("export")
@click.option("--model", "model", default=None, metavar="PATH_OR_HUB_ID",
              help="Local sentence-transformers folder or hub id (default: built-in all-MiniLM-L6-v2).")
@click.option("--quantization", type=click.Choice(MODES), default=None,
              help="weight-int8 (default: int8 weights, fp32 compute), weight-int8-packed (the same, but weights "
              "stay int8 in memory: MatMulNBits, for edge runtimes), weight-int4 (4-bit MatMulNBits; fails the "
              "default gate, docs/quantization.md), dynamic-int8 (faster on CPU), none (fp32).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Output package folder.")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
@click.option("--eval", "eval_dir", type=click.Path(path_type=Path), default=None,
              help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/): also gate on nDCG@10 and report top-10 overlap.")
@click.option("--min-mean-cosine", type=float, default=None, help="Gate: mean cosine vs fp32 (default 0.999).")
@click.option("--min-cosine", type=float, default=None, help="Gate: min cosine vs fp32 (default 0.99).")
@click.option("--max-ndcg-drop", type=float, default=None, help="Gate with --eval: nDCG@10 drop (default 0.005).")
@click.option("--quantization-option", "qopts", multiple=True, hidden=True, metavar="KEY=JSON",
              help="Advanced/testing: override a quantization setting, e.g. per_channel=false.")
def export_cmd(model, quantization, out, force, eval_dir, min_mean_cosine, min_cosine, max_ndcg_drop, qopts):
    """Export a sentence-transformers model to ONNX, quantize it and gate its quality."""
    from . import export_model

    threshold = {
        k: v
        for k, v in (("mean", min_mean_cosine), ("min", min_cosine), ("ndcg_drop", max_ndcg_drop))
        if v is not None
    }
    try:
        export_model(
            model,
            out,
            quantization=quantization,
            force=force,
            eval_dir=eval_dir,
            threshold=threshold or None,
            quantization_options=_parse_option(qopts) or None,
        )
    except WebsemError as e:
        click.echo(str(e), err=True)
        raise SystemExit(2) from None
