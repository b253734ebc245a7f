"""`export_model`: source → Optimum ONNX (fp32) → pooling graph → quantize → op check →
quality gate → atomic package write. Prints progress and per-step timings with rich."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

from websem.text.errors import WebsemError

from . import quantize as q
from .package import FORMAT, FORMAT_VERSION, package_tokenizer_json, write_package
from .quality import DEFAULT_THRESHOLD, beir_quality, check_threshold, sentence_quality

__all__ = ["export_model"]


def _console(quiet: bool):
    from rich.console import Console

    return Console(stderr=True, quiet=quiet)


@contextmanager
def _step(console, timings: dict, name: str):
    t0 = time.perf_counter()
    with console.status(f"[bold]{name}[/]…"):
        yield
    timings[name] = time.perf_counter() - t0
    console.print(f"  [green]✓[/] {name} [dim]({timings[name]:.1f} s)[/]")


def _quality_table(quality: dict, mode: str):
    from rich.table import Table

    t = Table(title=f"quality: {mode} vs fp32 (batch 1)")
    t.add_column("measure")
    t.add_column("value", justify="right")
    s = quality["sentences"]
    t.add_row(f"cosine mean ({s['n']} sentences)", f"{s['mean']:.6f}")
    t.add_row("cosine min", f"{s['min']:.6f}")
    t.add_row("cosine p1", f"{s['p1']:.6f}")
    ev = quality.get("eval")
    if ev:
        t.add_row(f"nDCG@10 fp32 ({ev['queries']} q, {ev['docs']} docs)", f"{ev['ndcg@10_fp32']:.4f}")
        t.add_row(f"nDCG@10 {mode}", f"{ev['ndcg@10_quantized']:.4f}")
        t.add_row("top-10 overlap", f"{ev['top10_overlap']:.4f}")
    th = quality["threshold"]
    t.caption = f"gate: mean ≥ {th['mean']}, min ≥ {th['min']}" + (
        f", nDCG@10 drop ≤ {th['ndcg_drop']}" if ev else ""
    )
    return t


def export_model(
    model: str | None,
    out: Path,
    *,
    quantization: str | None = None,
    force: bool = False,
    eval_dir: Path | None = None,
    threshold: dict | None = None,
    quantization_options: dict | None = None,
    quiet: bool = False,
) -> dict:
    """Export `model` (None = embedded all-MiniLM-L6-v2, a local folder or a hub id) into the
    model package `out` and return its manifest. Raises WebsemError (and writes nothing) on bad
    input or when the quantized model misses the quality `threshold`.

    `quantization_options` are advanced/testing overrides of the mode's settings (see
    websem.export.quantize); they are recorded in the manifest."""
    import onnx

    from .embed import OnnxEmbedder, load_tokenizer
    from .graph import add_sentence_embedding, canonicalize
    from .onnx_export import OPSET, export_fp32
    from .ops import check_ops
    from .source import resolve_source

    out = Path(out)
    mode = quantization or q.DEFAULT_MODE
    settings = q.default_settings(mode, quantization_options)
    th = {**DEFAULT_THRESHOLD, **(threshold or {})}
    unknown = set(th) - set(DEFAULT_THRESHOLD)
    if unknown:
        raise WebsemError(
            f"websem: unknown threshold key(s) {sorted(unknown)}; allowed: {', '.join(DEFAULT_THRESHOLD)}"
        )
    if out.exists() and not force:
        raise WebsemError(f"websem: output folder '{out}' already exists; pass --force to replace it")
    if eval_dir is not None and not Path(eval_dir).is_dir():
        raise WebsemError(f"websem: --eval folder '{eval_dir}' does not exist; pass a BEIR folder")
    if model is None or Path(model).expanduser().exists():
        os.environ["HF_HUB_OFFLINE"] = "1"  # never touch the network for local models

    console = _console(quiet)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    console.print(f"[bold]websem export[/] → {out} (quantization: {mode})")
    with _step(console, timings, "resolve source model"):
        src = resolve_source(model)
    console.print(
        f"    {src.model_id}: dims {src.dims}, max_seq_length {src.max_seq_length}, "
        f"pooling {src.pooling}, normalize {src.normalize}"
    )
    with _step(console, timings, "ONNX export (Optimum, fp32)"):
        fp32 = export_fp32(src)
        fp32 = add_sentence_embedding(fp32, src.pooling, src.normalize, src.dims)
        fp32 = canonicalize(fp32, _version())
        fp32_bytes = fp32.SerializeToString()
    tok_bytes = package_tokenizer_json(src.tokenizer_json, src.max_seq_length)
    # the package's own tokenizer: the gate embeds with it, and rounding=gptq calibrates with it
    tokenizer = load_tokenizer(tok_bytes, src.max_seq_length)
    with _step(console, timings, f"quantize ({mode})"):
        if mode == "none":
            qmodel, q_bytes = fp32, fp32_bytes
        else:
            qmodel = onnx.load_from_string(fp32_bytes)
            qmodel = canonicalize(q.quantize(qmodel, settings, tokenizer=tokenizer), _version())
            q_bytes = qmodel.SerializeToString()
    with _step(console, timings, "op check (onnxruntime-web wasm)"):
        ops = check_ops(qmodel, mode)

    quality: dict = {"threshold": th, "eval": None}
    with _step(console, timings, "quality (cosine vs fp32)"):
        ref = OnnxEmbedder(fp32_bytes)
        cand = ref if mode == "none" else OnnxEmbedder(q_bytes)
        quality["sentences"] = sentence_quality(ref, cand, tokenizer)
    if eval_dir is not None:
        from rich.progress import Progress

        t0 = time.perf_counter()
        with Progress(console=console, transient=True) as bar:
            quality["eval"] = beir_quality(ref, cand, tokenizer, Path(eval_dir), progress=bar)
        timings["eval (BEIR)"] = time.perf_counter() - t0
        console.print(f"  [green]✓[/] eval (BEIR) [dim]({timings['eval (BEIR)']:.1f} s)[/]")
    console.print(_quality_table(quality, mode))
    fails = check_threshold(quality, th) if mode != "none" else []
    if fails:
        raise WebsemError(
            f"websem: quantization '{mode}' {settings} fails the quality gate: "
            + "; ".join(fails)
            + "; nothing was written. Use another --quantization (weight-int8 passes on "
            "all-MiniLM-L6-v2) or relax --min-mean-cosine / --min-cosine / --max-ndcg-drop"
        )
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "source": {
            "model_id": src.model_id,
            "weights_sha256": src.weights_sha256,
            "weights_file": src.weights_file,
            "path_or_hub_id": src.path_or_hub_id,
        },
        "dims": src.dims,
        "max_seq_length": src.max_seq_length,
        "pooling": src.pooling,
        "normalize": src.normalize,
        "do_lower_case": src.do_lower_case,
        "quantization": settings,
        "opset": OPSET,
        "onnx": {
            "inputs": [i.name for i in qmodel.graph.input],
            "output": "sentence_embedding",
            "outputs": [o.name for o in qmodel.graph.output],
        },
        "ops": ops,
        "quality": quality,
        "websem_version": _version(),
    }
    with _step(console, timings, "write package"):
        manifest = write_package(
            out, {"model.onnx": q_bytes, "tokenizer.json": tok_bytes}, manifest, force=force
        )
    size = manifest["files"]["model.onnx"]["size"] / 1e6
    console.print(
        f"[bold green]done[/] in {time.perf_counter() - t_start:.1f} s: {out}/model.onnx "
        f"({size:.1f} MB, sha256 {manifest['files']['model.onnx']['sha256'][:12]}…)"
    )
    return manifest


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"websem {version('websem')}"
    except PackageNotFoundError:  # pragma: no cover
        return "websem"
