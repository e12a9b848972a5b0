"""The bundled task's shipped base model (alignkit/synthetic/assets/base): current with the code that
builds it, used without a build, and reproduced by a rebuild."""
from __future__ import annotations

import json

import pytest

from alignkit.synthetic import base
from alignkit.synthetic.base import SHIPPED, WorldConfig, build_base, config_hash, file_sha256, read_manifest

REBUILD = "alignkit world base --force --output alignkit/synthetic/assets/base"


def test_shipped_model_is_the_one_this_code_builds():
    man = read_manifest(SHIPPED)
    assert man, f"no {SHIPPED}/manifest.json; build it with `{REBUILD}`"
    assert man["config_hash"] == config_hash(WorldConfig()), (
        f"the corpus, prompts or recipe changed since the shipped base model was built: `{REBUILD}` "
        "(minutes), then commit the folder")
    assert file_sha256(SHIPPED / "model.safetensors") == man["sha256"]["model.safetensors"]
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (SHIPPED / f).is_file(), f
    assert not list(SHIPPED.glob("*.bin")) and not list(SHIPPED.glob("*.pt"))  # safetensors only


def test_quickstart_base_is_the_shipped_one_without_a_build(tmp_path, monkeypatch):
    def no_build(*a, **k):
        raise AssertionError("built the base model instead of using the shipped one")
    monkeypatch.setattr("alignkit.registry.run_train", no_build)
    lines = []
    path = build_base(WorldConfig(), cache_dir=str(tmp_path), log=lines.append)
    assert path == SHIPPED and "shipped" in lines[0]
    assert not (tmp_path / "world").exists()  # nothing built or cached


def test_a_damaged_or_stale_shipped_model_is_not_used(tmp_path, monkeypatch):
    fake = tmp_path / "shipped"
    fake.mkdir()
    (fake / "model.safetensors").write_bytes(b"version https://git-lfs.github.com/spec/v1\n")  # an LFS pointer
    man = {"config_hash": config_hash(WorldConfig()), "sha256": {"model.safetensors": "0" * 64}}
    (fake / "manifest.json").write_text(json.dumps(man))
    monkeypatch.setattr(base, "SHIPPED", fake)
    assert base.shipped_base(WorldConfig()) is None  # weights do not match their hash
    man["sha256"]["model.safetensors"] = file_sha256(fake / "model.safetensors")
    (fake / "manifest.json").write_text(json.dumps(man))
    assert base.shipped_base(WorldConfig()) == fake
    assert base.shipped_base(WorldConfig(seed=1)) is None  # another config: built, not shipped


@pytest.mark.slow
def test_rebuilding_reproduces_the_shipped_model(tmp_path):
    """The whole build (pre-training, SFT, task metrics; ~4 min on one idle core) at the shipped thread
    count: the same training losses, the same weights on the same CPU and torch, and the same
    held-out task metrics as the shipped model scored by the same code now."""
    man = read_manifest(SHIPPED)
    rebuilt = build_base(WorldConfig(), cache_dir=str(tmp_path), force=True, threads=man["threads"],
                         log=lambda *a, **k: None)
    new = read_manifest(rebuilt)
    for k in ("pretrain_loss", "sft_loss"):
        assert new["metrics"][k] == pytest.approx(man["metrics"][k], rel=1e-4), k
    assert new["metrics"]["pretrain_steps"] == man["metrics"]["pretrain_steps"]
    assert new["metrics"]["sft_steps"] == man["metrics"]["sft_steps"]
    identical = new["sha256"] == man["sha256"]
    if new["torch"] == man["torch"]:
        # the same kernels; only a CPU with other vector units may round differently
        shipped_now = base.task_metrics(SHIPPED)
        for k, v in shipped_now.items():
            tol = 0.0 if identical else 0.05
            assert new["metrics"]["heldout"][k] == pytest.approx(v, abs=tol), k
