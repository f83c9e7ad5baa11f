"""Save and load any anytask object as a folder: ``config.json`` + ``model.safetensors``.

Never pickle. The folder is written next to its final place and moved in with a
rename, so a crash leaves either the old folder or the new one, never half of one.
``config.json`` records the class, its parameters, the library version and the
SHA-256 of the tensor file, so a truncated or edited file is caught on load.

Objects take part by implementing two methods::

    def _get_state(self) -> tuple[dict, dict[str, torch.Tensor]]     # (extra config, tensors)
    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict) -> Self
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from anytask.core.errors import AnytaskError

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
CARD = "README.md"
FORMAT_VERSION = 2  # 2: config_sha256 covers config.json itself (format 1 folders still load)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_folder_atomic(dest: str | os.PathLike, files: dict[str, bytes | Path]) -> Path:
    """Write ``files`` (name -> bytes, or a path to copy) as folder ``dest``, replacing it atomically."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        for name, content in files.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            else:
                target.write_bytes(content)
            with open(target, "rb+") as f:
                os.fsync(f.fileno())
        _fsync_dir(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a saved model is an ordinary folder
        old = None
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
            os.rmdir(old)
            os.replace(dest, old)
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def write_file_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write one file via a temporary file and a rename: readers see the old or the new file, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save(obj: Any, path: str | os.PathLike) -> Path:
    """Save ``obj`` (a head, a classifier, ...) as a folder at ``path``."""
    from anytask import __version__

    if not hasattr(obj, "_get_state"):
        raise AnytaskError(f"{type(obj).__name__} cannot be saved: it has no _get_state()")
    extra, tensors = obj._get_state()
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # scratch beside the destination, not in $TMPDIR: a kill -9 leaves it where its owner cleans up (the
    # service's start-up removes hidden leftovers under its home)
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}.scratch-", dir=dest.parent) as scratch:
        weights = Path(scratch) / WEIGHTS
        from safetensors.torch import save_file  # torch is imported on first save, not with anytask.core

        save_file(tensors, str(weights))
        params = (obj._saved_params() if hasattr(obj, "_saved_params")
                  else obj.get_params(deep=False) if hasattr(obj, "get_params") else {})
        config = {
            "format": FORMAT_VERSION,
            "anytask_version": __version__,
            "class": f"{type(obj).__module__}:{type(obj).__qualname__}",
            "params": params,
            "extra": extra,
            "weights_sha256": file_sha256(weights),
        }
        try:
            config["config_sha256"] = config_digest(config)
            text = json.dumps(config, indent=2, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise AnytaskError(f"cannot save {type(obj).__name__}: a parameter is not JSON or not finite ({e})") from e
        card = model_card(obj, config)
        return write_folder_atomic(path, {CONFIG: text.encode(), WEIGHTS: weights, CARD: card.encode()})


def model_card(obj: Any, config: dict) -> str:
    """The folder's README.md (a Hugging Face-style model card): what it is, its labels, the backbone it reads,
    what it measured when it knows, how it was made and how to load it. Documentation only: loading reads
    ``config.json`` and the tensors, checksummed, never the card."""
    import datetime
    import sys

    from anytask.core.results import command_line

    fields: dict[str, Any] = {"kind": f"`{config['class']}`"}
    extra = config.get("extra") or {}
    own = obj._card_fields() if hasattr(obj, "_card_fields") else {}
    fields.update(own)
    classes = own.get("classes", extra.get("classes"))
    if classes is not None and "labels" not in fields:
        shown = ", ".join(f"`{c}`" for c in list(classes)[:20])
        fields["labels"] = f"{shown}{' ...' if len(classes) > 20 else ''} ({len(classes)})"
        fields.pop("classes", None)
    identity = extra.get("backbone_identity") or extra.get("backbone")
    if identity and "backbone" not in fields:
        fields["backbone"] = f"`{identity}`"
    params = json.dumps(config.get("params") or {}, sort_keys=True, default=str)
    fields["parameters"] = f"`{params if len(params) < 400 else params[:400] + ' ...'}`"
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    fields["made by"] = f"`{command_line(prog)}`" if prog == "anytask" else f"the Python API (`{prog}`)"
    fields["saved"] = f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by anytask " \
                      f"{config.get('anytask_version', '?')}"
    name = config["class"].rsplit(":", 1)[-1]
    escaped = {k: str(v).replace("|", "\\|") for k, v in fields.items()}  # a | would end the table cell
    rows = "\n".join(f"| {k} | {v} |" for k, v in escaped.items())
    tags = ["anytask", name.lower()] + (["text-classification"] if classes is not None else [])
    return (f"---\nlibrary_name: anytask\ntags: [{', '.join(tags)}]\n---\n\n# {name}\n\n"
            f"Saved by [anytask](https://pypi.org/project/anytask/): one frozen backbone, a light part fitted per "
            f"task.\n\n| | |\n|---|---|\n{rows}\n\n"
            f"Load it with `anytask.core.io.load(\"<this folder>\")` or `{name}.from_pretrained(\"<this folder>\")`. "
            f"`config.json` holds the class, its parameters and the SHA-256 of `model.safetensors` and of itself, "
            f"checked on load; nothing here is a pickle. This card is written from them and is not read back.\n")


class Pretrained:
    """``save_pretrained`` / ``from_pretrained``, Hugging Face's names, over this module's folders (every saveable
    anytask class has them). ``from_pretrained`` takes a folder or a Hugging Face hub repo id (read from the
    local hub cache; downloaded only when ``HF_HUB_OFFLINE=0`` or ``ANYTASK_ALLOW_DOWNLOAD=1``)."""

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        return save(self, path)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike):
        folder = Path(name_or_path).expanduser()
        if not (folder / CONFIG).is_file() and not folder.is_dir() and "/" in str(name_or_path) \
                and not str(name_or_path).startswith((".", "/", "~")):
            folder = _hub_snapshot(str(name_or_path))
        obj = load(folder)
        if not isinstance(obj, cls):
            raise AnytaskError(f"{name_or_path} holds a {type(obj).__name__}, not a {cls.__name__}; load it with "
                               f"{type(obj).__name__}.from_pretrained or anytask.core.io.load")
        return obj


def _hub_snapshot(repo_id: str) -> Path:
    from anytask.core.extras import DOWNLOAD_HINT, downloads_allowed

    allowed = downloads_allowed()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=not allowed))
    except Exception as e:
        how = DOWNLOAD_HINT if not allowed else "check the repo id and the network"
        raise AnytaskError(f"no saved anytask model at {repo_id!r}: not a local folder and not in the local Hugging "
                           f"Face cache ({type(e).__name__}); {how}") from None


def config_digest(config: dict) -> str:
    """SHA-256 of a config's canonical JSON without its own ``config_sha256`` field."""
    body = {k: v for k, v in config.items() if k != "config_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()).hexdigest()


def read_config(path: str | os.PathLike) -> dict:
    path = Path(path)
    cfg_path = path / CONFIG
    if not cfg_path.is_file():
        raise AnytaskError(f"no saved anytask model at {path}: {cfg_path} does not exist")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise AnytaskError(f"corrupted saved model: {cfg_path} is not valid JSON ({type(e).__name__}); "
                           "save it again") from None
    if not isinstance(config, dict):
        raise AnytaskError(f"corrupted saved model: {cfg_path} is not a JSON object; save it again")
    for key in ("format", "class", "params", "extra", "weights_sha256"):
        if key not in config:
            raise AnytaskError(f"corrupted saved model: {cfg_path} lacks {key!r}; save it again")
    fmt = config["format"]
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
        raise AnytaskError(f"corrupted saved model: {cfg_path} has format {fmt!r}, not a version number; save it again")
    if fmt > FORMAT_VERSION:
        raise AnytaskError(f"{path} was saved in format {fmt} by anytask {config.get('anytask_version', '?')}; this "
                           f"anytask ({_version()}) reads format {FORMAT_VERSION} and older: upgrade anytask to load it")
    if fmt >= 2:
        try:
            intact = config.get("config_sha256") == config_digest(config)
        except (TypeError, ValueError):
            intact = False
        if not intact:
            raise AnytaskError(f"corrupted saved model: {cfg_path} does not match its config_sha256 (edited or "
                               "damaged: its classes or parameters cannot be trusted); save the model again")
    return config


def _version() -> str:
    from anytask import __version__

    return __version__


def load(path: str | os.PathLike) -> Any:
    """Load an object saved with :func:`save`; verifies the tensor file's checksum first."""
    path = Path(path)
    config = read_config(path)
    weights = path / WEIGHTS
    if not weights.is_file():
        raise AnytaskError(f"corrupted saved model: {weights} is missing; save it again")
    if file_sha256(weights) != config["weights_sha256"]:
        raise AnytaskError(
            f"corrupted saved model: {weights} does not match the checksum in {path / CONFIG} "
            "(truncated or modified); save the model again"
        )
    cls = resolve_class(config["class"])
    try:
        from safetensors.torch import load_file

        tensors = load_file(str(weights))
        return cls._from_state(config["params"], config["extra"], tensors)
    except AnytaskError:
        raise
    except Exception as e:  # wrong shapes or dtypes, a bad tensor file, nonsense fields: never a raw traceback
        raise AnytaskError(f"corrupted saved model at {path}: {type(e).__name__}: {str(e)[:200]}; save it again") from e


def resolve_class(path: str) -> type:
    """The anytask class named ``module:QualName`` in a saved config (only anytask's own)."""
    module_name, _, qualname = str(path).partition(":")
    if not module_name.startswith("anytask."):
        raise AnytaskError(f"refusing to load class {path!r}: only anytask classes are loadable")
    try:
        cls = getattr(importlib.import_module(module_name), qualname)
    except (ImportError, AttributeError) as e:
        raise AnytaskError(f"saved model names unknown class {path!r}") from e
    if not hasattr(cls, "_from_state"):
        raise AnytaskError(f"class {path!r} is not loadable")
    return cls


def find_named(name_or_path: str, *, kind: str, home_subdir: str, shipped: Path, hint: str) -> Path:
    """A saved-model folder by path or by name: the path itself, then $ANYTASK_HOME/<home_subdir>/<name>,
    then the copy shipped in the package; the error lists every place it looked."""
    candidates = [Path(name_or_path).expanduser()]
    if os.environ.get("ANYTASK_HOME"):
        candidates.append(Path(os.environ["ANYTASK_HOME"]).expanduser() / home_subdir / name_or_path)
    candidates.append(shipped / name_or_path)
    for path in candidates:
        if (path / CONFIG).is_file():
            return path
    raise AnytaskError(f"no {kind} {name_or_path!r}: looked for {CONFIG} in "
                       + ", ".join(str(p) for p in candidates) + f". {hint}")


@functools.lru_cache(maxsize=16)
def _load_once(path: str, mtime: float) -> Any:
    return load(path)


def load_cached(path: Path, expected: type, kind: str) -> Any:
    """``load(path)`` once per process and weights file version, checked to be an ``expected``."""
    weights = Path(path) / WEIGHTS
    if not weights.is_file():
        raise AnytaskError(f"{kind} at {path} is missing its weights file {weights}; reinstall anytask or save "
                           "it again")
    obj = _load_once(str(path), weights.stat().st_mtime)
    if not isinstance(obj, expected):
        raise AnytaskError(f"{path} holds a {type(obj).__name__}, not a {kind}")
    return obj
