"""A run's record (its config.yaml) and its output folder: what --output may already hold, and what
--resume checks.

config.yaml, written by every trainer into its output folder, is flat: `method`, `model`, `data`,
`output` (local paths made absolute, so the record resolves from any working directory), every
setting (the run's TrainConfig, the method's config, a composite recipe's inner loss's), and
`data_fingerprint` (the training data's content hash, `data_fingerprint` below). The same file is a
valid `--config`: `alignkit train --config RUN/config.yaml` repeats the run (flags still win).
Three fields are actions on the output folder, not settings (ACTIONS), and are never written.

The output folder (`check_output`):
- empty, absent, or an alignkit run that neither finished nor saved a checkpoint: the run starts;
- a finished run (summary.json or a saved model), an earlier run's checkpoints, or files that are no
  alignkit run: refused (one line) unless --overwrite, which removes the earlier run's checkpoints and
  summary.json (everything else is replaced as the new run writes it); nothing is deleted on refusal;
- with --resume: the stored config.yaml is compared with this run's record; a difference in the
  model, the data (by content) or a setting outside RESUME_MAY_CHANGE is refused with every differing
  key listed (old -> new), unless --resume-allow-changes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

import yaml

from ..errors import AlignkitError, ConfigError

META_KEYS = ("method", "model", "data", "output", "data_fingerprint")  # config.yaml's keys that are no config field
ACTIONS = ("resume", "resume_allow_changes", "overwrite")  # what to do with --output: neither written nor compared

# Settings a resumed run may change: they decide how long the run goes, how it reports and when it
# evaluates or checkpoints, never what an optimizer step computes, so the resumed steps are the ones
# the original run would have taken. max_steps/epochs (and the online loops' and round recipes'
# iterations) extend (or shorten) a run; the learning-rate schedule then decays over the new total (the
# steps already taken keep their rates). ref_cache and ref_upfront decide where and when reference
# log-probs are computed, not their values; fused_adamw and gradient_checkpointing how a step is
# computed (the same update, the same gradients), not what.
RESUME_MAY_CHANGE = frozenset({
    "max_steps", "epochs", "iterations", "num_threads", "progress", "log_every", "report_to", "save_every",
    "keep_checkpoints", "eval_every", "eval_at", "ref_cache", "ref_upfront", "max_nonfinite", "output",
    "fused_adamw", "gradient_checkpointing"})

_OLD_SECTIONS = ("train", "loss", "reward", "rl", "nash_md")  # the nested layout config.yaml had before
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors", "pytorch_model.bin")
_PATH_FIELD_ENDS = ("data", "ref", "model", "dir", "path", "file", "template")

# Data fingerprint: sha256 over each file's relative name, size and bytes. A file over
# WHOLE_FILE_BYTES (1 GiB) is hashed by its size and its first and last EDGE_BYTES (32 MiB) instead
# (hashing every byte of a large corpus would add seconds to minutes to each start); modification times
# are left out (a copy changes them, not the data).
WHOLE_FILE_BYTES = 1 << 30
EDGE_BYTES = 32 << 20


def _plain(v):
    """A config value as YAML/JSON plain data (a Judge object passed through the Python API: its name)."""
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return getattr(v, "name", type(v).__name__)


def absolute(value, always: bool = True, local: bool = False):
    """An existing local path (or the path of a `KIND:PATH` judge spec) as an absolute one; anything
    else (a hub name, a rule name, a number) as given. `always=False`: only values that look like paths
    (they hold a '/'); `local=True`: a path even when it does not exist yet (an output folder)."""
    if not isinstance(value, (str, Path)) or not str(value) or "\n" in str(value):
        return value
    value = str(value)
    if local:
        return os.path.abspath(os.path.expanduser(value))
    if (always or "/" in value) and os.path.exists(os.path.expanduser(value)):
        return os.path.abspath(os.path.expanduser(value))
    kind, sep, rest = value.partition(":")
    if sep and kind.replace("-", "").isalnum() and rest and "/" in rest and os.path.exists(rest):
        return f"{kind}:{os.path.abspath(rest)}"  # rm:out/rm, hf:models/judge
    return value


def _hash_file(h, f: Path):
    size = f.stat().st_size
    h.update(f"{size}\n".encode())
    with open(f, "rb") as fh:
        if size <= WHOLE_FILE_BYTES:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        else:
            h.update(fh.read(EDGE_BYTES))
            fh.seek(size - EDGE_BYTES)
            h.update(fh.read(EDGE_BYTES))


def data_fingerprint(data) -> str:
    """The training data's content hash: `sha256:HEX` of a file's (a folder's files') bytes, or of
    the records' JSON for in-memory data; `datasets:FP` for a `datasets.Dataset` (its own fingerprint);
    "" when there is none (no data, or a name that resolves to no local file)."""
    if data is None:
        return ""
    h = hashlib.sha256()
    if isinstance(data, (str, Path)):
        p = Path(data).expanduser()
        if p.is_file():
            _hash_file(h, p)
        elif p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file()
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            for f in files:
                h.update(f"{f.relative_to(p).as_posix()}\n".encode())
                _hash_file(h, f)
        else:  # a cached dataset's NAME or a folder's NAME:SPLIT: the files it resolves to
            from ..data.readers import data_sources
            try:
                files = [Path(name) for name, _ in data_sources(str(data))]
            except AlignkitError:
                return ""
            for f in files:
                h.update(f"{f.name}\n".encode())
                _hash_file(h, f)
        return "sha256:" + h.hexdigest()
    fp = getattr(data, "_fingerprint", None)
    if isinstance(fp, str) and fp:
        return "datasets:" + fp
    for r in data:
        r = dataclasses.asdict(r) if dataclasses.is_dataclass(r) and not isinstance(r, type) else r
        h.update(json.dumps(_plain(r), sort_keys=True).encode())
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def run_record(method: str, model, data, output, train_cfg, method_cfg=None, inner_cfg=None,
               fingerprint: str | None = None) -> dict:
    """config.yaml's content: method, model, data, output, then every setting (an inner loss's field
    under the run's, the run's under the method's: the order in which `split_layers` routes a key), and
    the data's fingerprint."""
    rec = {"method": method, "model": absolute(model),
           "data": absolute(data) if isinstance(data, (str, Path)) else None,
           "output": os.path.abspath(os.path.expanduser(str(output)))}
    settings: dict = {}
    for c in (inner_cfg, train_cfg, method_cfg):
        if c is not None:
            # field by field (not asdict, which deep-copies: a Judge passed through the Python API)
            settings.update({f.name: getattr(c, f.name) for f in dataclasses.fields(c)}
                            if dataclasses.is_dataclass(c) else dict(c))
    for k in (*ACTIONS, *META_KEYS):
        settings.pop(k, None)
    for k, v in settings.items():
        settings[k] = _plain(absolute(v, always=k.endswith(_PATH_FIELD_ENDS)))
    rec.update(settings)
    rec["data_fingerprint"] = data_fingerprint(data) if fingerprint is None else fingerprint
    return rec


def flatten(d: dict) -> dict:
    """A config mapping with the older nested layout (`train:`, `loss:`, `reward:`, `rl:`, `nash_md:`
    sections under `method`/`model`) as flat keys; a flat one unchanged."""
    if not isinstance(d, dict) or not any(isinstance(d.get(s), dict) for s in _OLD_SECTIONS):
        return d
    flat = {k: v for k, v in d.items() if not (k in _OLD_SECTIONS and isinstance(v, dict))}
    for s in _OLD_SECTIONS:  # the run's settings first: a method's field of the same name wins
        if isinstance(d.get(s), dict):
            flat.update(d[s])
    for k in ACTIONS:
        flat.pop(k, None)
    return flat


def stage_record(run_config: dict, output) -> dict:
    """The record of a run started by a trainer directly (a recipe's stage, the Python trainers):
    `run_config` (method, model and the config sections) flattened; its data lived in memory."""
    flat = flatten(run_config)
    rec = {"method": flat.get("method"), "model": absolute(flat.get("model")), "data": None,
           "output": os.path.abspath(str(output))}
    for k, v in flat.items():
        if k not in META_KEYS and k not in ACTIONS:
            rec[k] = _plain(absolute(v, always=k.endswith(_PATH_FIELD_ENDS)))
    return rec


def read_run_config(folder) -> dict:
    """A run folder's config.yaml as flat keys ({} when it has none or it is unreadable)."""
    f = Path(folder) / "config.yaml"
    if not f.is_file():
        return {}
    try:
        d = yaml.safe_load(f.read_text()) or {}
    except yaml.YAMLError:
        return {}
    return flatten(d) if isinstance(d, dict) else {}


def write_run_config(folder, record: dict):
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / "config.yaml").write_text(yaml.safe_dump(_plain(record), sort_keys=False))


def _checkpoint(out: Path) -> Path | None:
    cks = [c for c in sorted((out / "checkpoints").glob("step-*")) if (c / "state.json").is_file()]
    return cks[-1] if cks else None


def _finished(out: Path) -> str:
    """What shows that `out` holds a finished run ("" if nothing does)."""
    f = out / "summary.json"
    if f.is_file():
        try:
            if not json.loads(f.read_text()).get("interrupted"):
                return "summary.json"
        except (json.JSONDecodeError, AttributeError):
            return "summary.json"
    for w in _WEIGHTS:
        if (out / w).is_file():
            return w
    return ""


def is_run_folder(out: Path) -> bool:
    """Did alignkit write this folder (its config.yaml, metrics.jsonl or checkpoints)?"""
    rc = read_run_config(out)
    return ("method" in rc) or (out / "metrics.jsonl").is_file() or (out / "checkpoints").is_dir()


def resume_changes(stored: dict, record: dict) -> list:
    """['key old -> new', ...]: what `record` changes from the stored config (RESUME_MAY_CHANGE and
    keys only one side has excepted: a field added or removed by another alignkit version)."""
    changes = []
    old_fp, new_fp = stored.get("data_fingerprint"), record.get("data_fingerprint")
    if old_fp and new_fp:
        if old_fp != new_fp:
            same_path = stored.get("data") == record.get("data")
            old, new = (d.get("data") or "(records in memory)" for d in (stored, record))
            changes.append(f"data {old} -> {new}" + (" (its contents changed)" if same_path else "")
                           + f" [{old_fp[:19]} -> {new_fp[:19]}]")
    elif "data" in stored and "data" in record and stored["data"] != record["data"]:
        changes.append(f"data {stored['data']} -> {record['data']}")
    for k in stored:
        if k in ("data", "data_fingerprint") or k in RESUME_MAY_CHANGE or k in ACTIONS or k not in record:
            continue
        a, b = _plain(stored[k]), _plain(record[k])
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            same = float(a) == float(b)
        else:  # an older record's relative path is the same one when it resolves to the new absolute one
            same = a == b or (isinstance(a, str) and absolute(a) == b)
        if not same:
            changes.append(f"{k} {a!r} -> {b!r}" if k not in ("method", "model") else f"{k} {a} -> {b}")
    return changes


def check_output(output, cfg, record: dict | None = None, log=print) -> None:
    """Refuse (one line, deleting nothing) what would lose an earlier run's outputs or mix a resumed
    run's settings; under --overwrite, remove the earlier run's checkpoints and summary.json."""
    out = Path(output)
    if cfg.resume and cfg.overwrite:
        raise ConfigError("--resume continues the run in --output and --overwrite replaces it: pass one of them")
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"--output {out} is a file, not a folder")
    if cfg.resume:
        stored = read_run_config(out)
        if record is not None and stored:
            changes = resume_changes(stored, record)
            if changes and not cfg.resume_allow_changes:
                raise ConfigError(f"--resume: this run differs from {out / 'config.yaml'}: {'; '.join(changes)}; "
                                  "pass --resume-allow-changes to continue with the new values, or drop the changes")
            if changes:
                log(f"--resume-allow-changes: continuing {out} with {'; '.join(changes)}")
        return
    entries = [p for p in out.iterdir() if not p.name.startswith(".")]
    if not entries:
        return
    if not is_run_folder(out):
        if cfg.overwrite:
            return  # written into as asked; files that are not an earlier run's are never removed
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in entries)
        shown = ", ".join(names[:4]) + (f", ... ({len(names)} entries)" if len(names) > 4 else "")
        raise ConfigError(f"--output {out} is not empty and holds no alignkit run ({shown}); "
                          "pass --overwrite to write into it anyway, or choose another --output")
    ckpt, done = _checkpoint(out), _finished(out)
    if not cfg.overwrite:
        if done:
            raise ConfigError(f"--output {out} holds a finished run ({done}); pass --overwrite to replace it"
                              + (", --resume to continue it" if ckpt else "") + ", or choose another --output")
        if ckpt is not None:
            raise ConfigError(f"--output {out} holds checkpoints of an earlier run ({ckpt.name}); pass --resume "
                              "to continue it, --overwrite to start over, or choose another --output")
        return
    if (out / "summary.json").is_file() or ckpt is not None:
        log(f"--overwrite: replacing the run in {out}")
    # the earlier run's state that would otherwise mix with this one's (a later --resume would take its
    # newest checkpoint; summary.json would call an interrupted new run finished)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    (out / "summary.json").unlink(missing_ok=True)


def read_config_file(path) -> tuple:
    """A --config file -> (its run keys: method, model, data, output; its settings). A run's own
    config.yaml (either layout) is one: its data_fingerprint is the record of that run, not a setting."""
    from ..config import read_yaml
    d = dict(flatten(read_yaml(path)))
    meta = {k: d.pop(k) for k in META_KEYS if k in d}
    meta.pop("data_fingerprint", None)
    return meta, d


def check_resumable(output, cfg) -> None:
    """A trainer's --resume needs something to continue: a finished run without a checkpoint would be
    trained again from its first step, replacing the model it holds. (A recipe's --resume reuses its
    finished rounds or stages instead; it checks no further.)"""
    out = Path(output)
    if cfg.resume and out.is_dir() and _checkpoint(out) is None:
        done = _finished(out)
        if done:
            raise ConfigError(f"--resume: {out} holds a finished run ({done}) and no checkpoint to continue from "
                              "(--save-every N writes them); pass --overwrite to train it again, or choose "
                              "another --output")
