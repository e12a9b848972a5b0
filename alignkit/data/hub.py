"""Hugging Face names without a network: models and datasets found in the local hub cache, and
hub-style folders of data shards.

alignkit never downloads. A name such as `gpt2`, `org/model` or `Anthropic/hh-rlhf` that is not a
local path is looked up in the cache that `hf download` (huggingface_hub; `huggingface-cli download`
before 1.0) fills:

    $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub
      models--org--name/refs/main                 the commit the `main` revision points to
      models--org--name/snapshots/<commit>/       the files of that revision (config.json, *.safetensors, ...)
      datasets--org--name/snapshots/<commit>/     data shards: data/train-00000-of-00002.parquet, train.jsonl.gz, ...

`NAME@REV` picks another revision (a branch or tag under refs/, or a commit folder under snapshots/).

A data folder that is not a `datasets` save_to_disk folder is read as a hub-style folder of shards:
every .parquet/.jsonl/.ndjson/.json/.csv file under it (gzipped too), grouped into splits the way the
hub's default layout names them: the file stem before `-00000-of-00002` (`data/train-00000-of-00002.parquet`
-> train, `harmless-base/test.jsonl.gz` -> test, `train_prefs-00000-of-00001.parquet` -> train_prefs),
or a folder named after the split (`train/part-0.parquet`). `NAME:SPLIT` (a hub name or a folder) picks a
split; without one, `train` when there is one, else the only split there is. A subfolder holding a subset
(HH-RLHF's `harmless-base/`) is picked as `NAME:SUBSET` (its train split) or `NAME:SUBSET/SPLIT`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from alignkit.errors import DataError

DATA_SUFFIXES = (".parquet", ".jsonl", ".ndjson", ".json", ".csv")
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?(@[\w./-]+)?")
SPLIT_FOLDERS = ("train", "test", "validation", "valid", "dev", "eval")  # folder names that are a split
_SHARD = re.compile(r"(.+?)[-_.]\d+[-_]of[-_]\d+")


def hub_cache() -> Path:
    """The hub cache folder, from the environment as huggingface_hub reads it (read on every call, so
    a changed HF_HOME is seen)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "huggingface" / "hub"


def looks_like_repo_id(name: str) -> bool:
    """`gpt2`, `org/name` or `org/name@rev`: at most one slash, no leading dot or slash, and not a
    data file's name (`pairs.jsonl` is a missing file, not a repository)."""
    name = str(name)
    if not _REPO_ID.fullmatch(name) or ".." in name:
        return False
    base = name.split("@")[0].lower()
    return not any(base.endswith(s) or base.endswith(s + ".gz") for s in DATA_SUFFIXES)


def snapshot_folder(repo_id: str, kind: str) -> tuple:
    """(the snapshot folder of `repo_id` in the hub cache or None, the folder looked in).
    kind: "model" or "dataset". `repo_id@REV` selects a revision, else refs/main (else the only or the
    newest snapshot)."""
    name, _, rev = str(repo_id).partition("@")
    repo = hub_cache() / f"{kind}s--{name.replace('/', '--')}"
    snaps = repo / "snapshots"
    if not snaps.is_dir():
        return None, repo
    rev = rev or "main"
    ref = repo / "refs" / rev
    commit = ref.read_text().strip() if ref.is_file() else rev
    if (snaps / commit).is_dir():
        return snaps / commit, repo
    if rev != "main":
        return None, repo
    found = sorted((p for p in snaps.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    return (found[-1] if found else None), repo


def not_cached_hint(name: str, kind: str, looked: Path) -> str:
    flag = "" if kind == "model" else " --repo-type dataset"
    return (f"not in the Hugging Face cache either (looked for {looked}/snapshots; HF_HUB_CACHE/HF_HOME set "
            f"where it is); alignkit downloads nothing: fetch it where there is a network with "
            f"`hf download{flag} {name.split('@')[0]}` (`huggingface-cli download` before huggingface_hub 1.0) "
            f"and copy the cache here, or pass a local path")


# ---- data -----------------------------------------------------------------------------------------
def _is_data_file(p: Path) -> bool:
    n = p.name.lower().removesuffix(".gz")
    return p.is_file() and n.endswith(DATA_SUFFIXES) and not n.startswith(".")


def shard_files(folder: Path) -> list:
    """Every data file under `folder` (hidden folders such as .cache or .git skipped), in path order."""
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).parts
        if any(part.startswith(".") for part in rel):
            continue
        if _is_data_file(p) and p.name not in ("dataset_info.json", "state.json", "dataset_dict.json"):
            out.append(p)
    return out


def split_of(folder: Path, f: Path) -> str:
    """The split a shard belongs to: its stem before a `-00000-of-00002` shard number, or, for a generic
    stem (`data`, `part-0`), the folder it is in."""
    stem = f.name
    while Path(stem).suffix.lower() in (".gz", *DATA_SUFFIXES):
        stem = stem[: -len(Path(stem).suffix)]
    m = _SHARD.fullmatch(stem)
    split = m.group(1) if m else stem
    parent = f.parent.relative_to(folder).parts
    if parent and parent[-1] in SPLIT_FOLDERS and split not in parent[-1:]:
        if not re.fullmatch(r"(train|test|validation|valid|dev|eval)\w*", split):
            return parent[-1]
    return split


def select_split(folder: Path, split: str, label: str) -> list:
    """The shard files of `split` ("" = train, else the only split) in a hub-style folder; `SUBSET` or
    `SUBSET/SPLIT` when SUBSET is a subfolder."""
    subset, _, rest = split.rpartition("/")
    if split and (folder / split).is_dir() and split not in SPLIT_FOLDERS:
        folder, split = folder / split, ""  # a subset folder (not one named after a split)
    elif subset and (folder / subset).is_dir():
        folder, split = folder / subset, rest
    files = shard_files(folder)
    if not files:
        raise DataError(label, None, None, "a folder, but not one saved by datasets' save_to_disk (no "
                                           "dataset_info.json or state.json) and with no data files (.parquet, "
                                           ".jsonl, .json, .csv) to read as hub-style shards")
    splits: dict = {}
    for f in files:
        splits.setdefault(split_of(folder, f), []).append(f)
    if split:
        if split not in splits:
            raise DataError(label, None, None, f"no split {split!r}; the splits here: {', '.join(sorted(splits))}")
        return splits[split]
    if "train" in splits:
        return splits["train"]
    if len(splits) == 1:
        return next(iter(splits.values()))
    raise DataError(label, None, None, f"splits {', '.join(sorted(splits))} and none is 'train'; "
                                       f"pick one as {label}:SPLIT")


def split_spec(spec: str) -> tuple:
    """`NAME:SPLIT` -> (NAME, SPLIT); anything else -> (spec, "")."""
    head, sep, tail = str(spec).rpartition(":")
    if sep and head and re.fullmatch(r"[\w.-]+(/[\w.-]+)*", tail):
        return head, tail
    return str(spec), ""


def resolve_data(spec) -> tuple:
    """What a --data value names -> (path, split): an existing file or folder as it is; else
    `NAME[:SPLIT]` as a local folder or a dataset in the hub cache. Raises one DataError naming where
    it looked when nothing is found."""
    p = Path(spec)
    if p.exists():
        return p, ""
    name, split = split_spec(str(spec))
    if split and Path(name).exists():
        return Path(name), split
    if not looks_like_repo_id(name):
        raise DataError(str(spec), None, None, "no such file")
    folder, looked = snapshot_folder(name, "dataset")
    if folder is None:
        raise DataError(str(spec), None, None, f"no such file or folder, and {not_cached_hint(name, 'dataset', looked)}")
    return folder, split


def resolve_model(path: str) -> str:
    """A model argument -> a local folder: the path when it exists, else the hub cache's snapshot of a
    model name. Returns the argument unchanged when neither exists (the caller reports it)."""
    if Path(path).exists() or not looks_like_repo_id(path):
        return path
    folder, _ = snapshot_folder(path, "model")
    return str(folder) if folder is not None else path


def missing_model_message(path: str) -> str:
    """The one line for a model that is neither a local folder nor in the hub cache."""
    if not looks_like_repo_id(path):
        return (f"{path}: model folder not found (alignkit loads local Hugging Face folders only; "
                "download weights yourself and pass the path)")
    _, looked = snapshot_folder(path, "model")
    return f"{path}: model folder not found, and {not_cached_hint(path, 'model', looked)}"
