"""Hub-style loading without a network: model and dataset names resolved in a local Hugging Face cache
built here (HF_HOME / HF_HUB_CACHE layouts), hub-style folders of parquet/JSON shards, `NAME:SPLIT`,
--columns, and the one-line error for a name found nowhere."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from alignkit.cli import main
from alignkit.data.hub import hub_cache, looks_like_repo_id, split_of
from alignkit.data.readers import read_records
from alignkit.errors import ConfigError, DataError, ModelLoadError

from conftest import synthetic_texts

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hh_rows(n: int, tag: str = "") -> list:
    """Anthropic HH rows: whole dialogues that share everything up to the last assistant turn."""
    rows = []
    for i in range(n):
        prompt = f"\n\nHuman: question {tag}{i}: what is two plus three ?\n\nAssistant:"
        rows.append({"chosen": prompt + " five . sure , here is how .",
                     "rejected": prompt + " no , i cannot help with that ."})
    return rows


def write_parquet(path: Path, rows: list) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def snapshot(cache: Path, kind: str, repo_id: str, commit: str = COMMIT) -> Path:
    """The folder huggingface_hub's cache keeps a repository's revision in, with refs/main -> commit."""
    repo = cache / f"{kind}s--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True, exist_ok=True)
    return snap


@pytest.fixture
def hf_home(tmp_path, monkeypatch) -> Path:
    """An empty HF_HOME (its cache is HF_HOME/hub), offline."""
    home = tmp_path / "hf-home"
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def tiny_gpt2(out: Path) -> Path:
    """A tiny GPT-2-architecture model (GPT2LMHeadModel, save_pretrained: safetensors) and tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from alignkit.models.tiny import train_tokenizer
    tok = train_tokenizer(synthetic_texts() + [r["chosen"] + r["rejected"] for r in hh_rows(4)], 300)
    tok.chat_template = None
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id))
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def test_cache_location_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    assert hub_cache() == tmp_path / "cache"
    assert looks_like_repo_id("gpt2") and looks_like_repo_id("Anthropic/hh-rlhf") and looks_like_repo_id("org/m@v1")
    assert not looks_like_repo_id("pairs.jsonl") and not looks_like_repo_id("/abs/dir") and not looks_like_repo_id("a/b/c")


def test_issue_row_model_gpt2_and_data_anthropic_hh_rlhf_from_the_local_caches(hf_home, tmp_path, capsys):
    """`--model gpt2 --data Anthropic/hh-rlhf` (and --eval-data NAME:test) train from the caches alone."""
    cache = hf_home / "hub"
    tiny_gpt2(snapshot(cache, "model", "gpt2"))
    ds = snapshot(cache, "dataset", "Anthropic/hh-rlhf")
    # the real repository's layout: subsets of gzipped JSONL, one file per split
    for subset in ("harmless-base", "helpful-base"):
        (ds / subset).mkdir()
        for split, n in (("train", 6), ("test", 2)):
            import gzip
            with gzip.open(ds / subset / f"{split}.jsonl.gz", "wt") as f:
                f.writelines(json.dumps(r) + "\n" for r in hh_rows(n, f"{subset} {split} "))
    out = tmp_path / "out"
    rc = main(["train", "dpo", "--model", "gpt2", "--data", "Anthropic/hh-rlhf", "--eval-data", "Anthropic/hh-rlhf:test",
               "--output", str(out), "--max-steps", "2", "--batch-size", "4", "--num-threads", "1",
               "--progress", "false"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "Anthropic/hh-rlhf: 12 records" in captured.out  # both subsets' train files
    assert "Anthropic/hh-rlhf:test: 4 records" in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_examples"] == 12 and summary["eval_examples"] == 4 and summary["steps"] == 2
    from transformers import AutoModelForCausalLM
    assert AutoModelForCausalLM.from_pretrained(out).config.model_type == "gpt2"


def test_ref_name_and_hf_hub_cache_variable(tmp_path, monkeypatch, tiny_model_dir):
    """HF_HUB_CACHE wins over HF_HOME; `--ref NAME` resolves too; `NAME@REV` picks a revision."""
    from alignkit.models.loading import check_model_folder
    cache = tmp_path / "cache"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    snap = snapshot(cache, "model", "org/tiny")
    shutil.copytree(tiny_model_dir, snap, dirs_exist_ok=True)
    assert check_model_folder("org/tiny") == snap
    other = cache / "models--org--tiny" / "snapshots" / ("f" * 40)
    shutil.copytree(tiny_model_dir, other)
    (cache / "models--org--tiny" / "refs" / "v2").write_text("f" * 40)
    assert check_model_folder("org/tiny@v2") == other
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i} ?", "chosen": "sure .", "rejected": "no ."}) + "\n"
                            for i in range(8)))
    out = tmp_path / "out"
    assert main(["train", "dpo", "--model", "org/tiny", "--ref", "org/tiny@v2", "--data", str(data), "--output",
                 str(out), "--max-steps", "1", "--batch-size", "4", "--num-threads", "1", "--progress", "false"]) == 0
    assert (out / "model.safetensors").is_file()


def test_a_name_found_nowhere_is_one_line_saying_where_it_looked(hf_home, tmp_path, capsys):
    data = tmp_path / "x.jsonl"
    data.write_text(json.dumps({"prompt": "q ?", "chosen": "a", "rejected": "b"}) + "\n")
    rc = main(["train", "dpo", "--model", "gpt2", "--data", str(data), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert err.startswith("error: gpt2: model folder not found, and not in the Hugging Face cache")
    assert str(hf_home / "hub" / "models--gpt2") in err and "downloads nothing" in err
    assert "`hf download gpt2`" in err
    with pytest.raises(DataError) as e:
        read_records("Anthropic/hh-rlhf")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("Anthropic/hh-rlhf: no such file or folder, and not in the Hugging Face cache")
    assert str(hf_home / "hub" / "datasets--Anthropic--hh-rlhf") in msg
    assert "`hf download --repo-type dataset Anthropic/hh-rlhf`" in msg
    # a missing file keeps its plain message
    with pytest.raises(DataError, match="no such file$"):
        read_records(tmp_path / "missing.jsonl")
    with pytest.raises(ModelLoadError, match="model folder not found \\(alignkit loads local"):
        from alignkit.models.loading import check_model_folder
        check_model_folder(str(tmp_path / "absent"))


def test_issue_row_a_hub_style_folder_of_parquet_shards(tmp_path, tiny_model_dir, capsys):
    """data/train-0000x-of-00002.parquet + data/test-...: train reads the train shards (both, in order,
    errors naming the shard and row), FOLDER:test the test one."""
    folder = tmp_path / "hub-folder"
    rows = [{"prompt": f"question {i} ?", "chosen": "sure , here is how .", "rejected": "no ."} for i in range(10)]
    write_parquet(folder / "data" / "train-00000-of-00002.parquet", rows[:6])
    write_parquet(folder / "data" / "train-00001-of-00002.parquet", rows[6:])
    write_parquet(folder / "data" / "test-00000-of-00001.parquet", rows[:3])
    (folder / "README.md").write_text("---\nlicense: mit\n---\n")
    records, _ = read_records(folder)
    assert [r.prompt for r in records] == [r["prompt"] for r in rows]
    assert records[6].source == f"{folder / 'data' / 'train-00001-of-00002.parquet'}:1"
    test, _ = read_records(f"{folder}:test")
    assert len(test) == 3
    with pytest.raises(DataError, match="no split 'dev'; the splits here: test, train"):
        read_records(f"{folder}:dev")
    bad = tmp_path / "bad-folder"
    write_parquet(bad / "data" / "train-00000-of-00002.parquet", rows[:2])
    write_parquet(bad / "data" / "train-00001-of-00002.parquet", [{"prompt": "q", "chosen": "a"}])
    with pytest.raises(DataError) as e:
        read_records(bad)
    assert str(e.value).startswith(f"{bad / 'data' / 'train-00001-of-00002.parquet'}:1: field 'rejected': missing field")
    out = tmp_path / "out"
    rc = main(["train", "dpo", "--model", str(tiny_model_dir), "--data", str(folder), "--eval-data", f"{folder}:test",
               "--output", str(out), "--max-steps", "1", "--batch-size", "4", "--num-threads", "1", "--progress", "false"])
    assert rc == 0, capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["train_examples"] == 10


def test_json_shards_and_split_names_of_the_hub_layouts(tmp_path):
    folder = tmp_path / "f"
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "part-0.jsonl").write_text(json.dumps({"prompt": "a", "completion": "b"}) + "\n")
    (folder / "train" / "part-1.json").write_text(json.dumps([{"prompt": "c", "completion": "d"}]))
    records, _ = read_records(folder)
    assert [r.completion for r in records] == ["b", "d"]
    assert split_of(folder, folder / "data" / "train_prefs-00000-of-00001.parquet") == "train_prefs"
    assert split_of(folder, folder / "harmless-base" / "test.jsonl.gz") == "test"
    assert split_of(folder, folder / "validation" / "0000.parquet") == "validation"
    only = tmp_path / "only"
    only.mkdir()
    (only / "test.jsonl").write_text(json.dumps({"prompt": "a", "completion": "b"}) + "\n")
    assert len(read_records(only)[0]) == 1  # the only split there is
    two = tmp_path / "two"
    two.mkdir()
    for s in ("test", "validation"):
        (two / f"{s}.jsonl").write_text(json.dumps({"prompt": "a", "completion": "b"}) + "\n")
    with pytest.raises(DataError, match="splits test, validation and none is 'train'; pick one as .*:SPLIT"):
        read_records(two)


def test_columns_map_other_field_names_before_format_detection(tmp_path, tiny_model_dir, capsys):
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"question": f"q{i} ?", "good": "sure .", "bad": "no .", "id": i}) + "\n"
                            for i in range(8)))
    records, _ = read_records(data, columns="prompt=question,chosen=good,rejected=bad")
    assert (records[0].prompt, records[0].chosen, records[0].rejected) == ("q0 ?", "sure .", "no .")
    # a missing source column: file, line and the column
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q", "good": "a", "bad": "b"}) + "\n" + json.dumps({"question": "q", "good": "a"}) + "\n")
    with pytest.raises(DataError) as e:
        read_records(bad, columns="prompt=question,chosen=good,rejected=bad")
    assert str(e.value).startswith(f"{bad}:2: field 'bad': missing column (--columns maps it to 'rejected'")
    with pytest.raises(ConfigError, match="--columns: unknown field 'answer' \\(in answer=good\\); the fields"):
        read_records(data, columns="answer=good")
    # the flag, end to end; a wrong target is one line naming the flag
    out = tmp_path / "out"
    assert main(["train", "dpo", "--model", str(tiny_model_dir), "--data", str(data), "--output", str(out),
                 "--columns", "prompt=question,chosen=good,rejected=bad", "--max-steps", "1", "--batch-size", "4",
                 "--num-threads", "1", "--progress", "false"]) == 0
    capsys.readouterr()
    assert main(["train", "dpo", "--model", str(tiny_model_dir), "--data", str(data), "--output", str(tmp_path / "o2"),
                 "--columns", "answer=good"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--columns: unknown field 'answer'" in err
    # prompts for online methods go through it too
    from alignkit.data.prompts import read_prompts
    assert read_prompts(str(data), columns="prompt=question")[:2] == ["q0 ?", "q1 ?"]


def hub_layout(cache: Path, kind: str, repo_id: str, files: dict, commit: str = COMMIT) -> Path:
    """The cache as huggingface_hub writes it: content in blobs/<sha256>, the snapshot's files symlinks
    to them, refs/main naming the commit."""
    import hashlib
    import os
    snap = snapshot(cache, kind, repo_id, commit)
    blobs = snap.parent.parent / "blobs"
    blobs.mkdir(exist_ok=True)
    for rel, src in files.items():
        data = Path(src).read_bytes()
        blob = blobs / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        dest = snap / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(os.path.relpath(blob, dest.parent))
    return snap


def test_resolution_agrees_with_huggingface_hub(tmp_path, monkeypatch, tiny_model_dir):
    """On the blobs/symlinks layout huggingface_hub itself writes, its own cache lookup finds the same files."""
    from huggingface_hub import try_to_load_from_cache

    from alignkit.data.hub import snapshot_folder
    cache = tmp_path / "cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    snap = hub_layout(cache, "model", "org/tiny", {f.name: f for f in tiny_model_dir.iterdir() if f.is_file()})
    ours, _ = snapshot_folder("org/tiny", "model")
    assert ours == snap
    theirs = try_to_load_from_cache("org/tiny", "config.json", cache_dir=str(cache))
    assert Path(theirs) == snap / "config.json"
    from alignkit.models.loading import load_causal_lm, load_tokenizer
    assert load_causal_lm("org/tiny").config.vocab_size == len(load_tokenizer("org/tiny"))


def test_real_stories260k_and_hh_rlhf_through_a_hub_cache(tmp_path, monkeypatch, capsys):
    """The real stories260K model and real HH-RLHF pairs (../shared), laid out as `hf download` leaves
    them, train by name."""
    from conftest import shared_path
    model_dir = shared_path("models", "stories260K")
    hh = shared_path("data", "hh-rlhf", "harmless-base-sample.jsonl")
    cache = tmp_path / "cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    hub_layout(cache, "model", "karpathy/stories260K", {f.name: f for f in model_dir.iterdir() if f.is_file()})
    hub_layout(cache, "dataset", "Anthropic/hh-rlhf", {"harmless-base/train.jsonl": hh})
    out = tmp_path / "out"
    rc = main(["train", "dpo", "--model", "karpathy/stories260K", "--data", "Anthropic/hh-rlhf", "--output", str(out),
               "--max-examples", "64", "--max-steps", "2", "--batch-size", "8", "--max-length", "256",
               "--on-bad-record", "skip", "--num-threads", "1", "--progress", "false"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    import re
    kept, skipped = map(int, re.search(r"Anthropic/hh-rlhf: (\d+) records, (\d+) bad records skipped", captured.out).groups())
    assert kept + skipped == 1800 and skipped < 10  # the sample's few pairs with an empty side
    assert json.loads((out / "summary.json").read_text())["steps"] == 2


def test_a_subset_folder_is_picked_as_name_colon_subset(hf_home):
    """HH-RLHF's layout: harmless-base/ and helpful-base/, each with train and test files."""
    import gzip
    ds = snapshot(hf_home / "hub", "dataset", "Anthropic/hh-rlhf")
    for subset, n in (("harmless-base", 3), ("helpful-base", 5)):
        (ds / subset).mkdir()
        for split, m in (("train", n), ("test", 1)):
            with gzip.open(ds / subset / f"{split}.jsonl.gz", "wt") as f:
                f.writelines(json.dumps(r) + "\n" for r in hh_rows(m, f"{subset} {split} "))
    assert len(read_records("Anthropic/hh-rlhf")[0]) == 8
    assert len(read_records("Anthropic/hh-rlhf:test")[0]) == 2
    assert len(read_records("Anthropic/hh-rlhf:harmless-base")[0]) == 3
    assert len(read_records("Anthropic/hh-rlhf:helpful-base/test")[0]) == 1
    with pytest.raises(DataError, match="no split 'dev'; the splits here: test, train"):
        read_records("Anthropic/hh-rlhf:helpful-base/dev")


def test_a_cached_model_without_safetensors_is_refused(hf_home, tiny_model_dir):
    """Safetensors only, from the cache too: a snapshot holding a pickled .bin is not unpickled."""
    snap = snapshot(hf_home / "hub", "model", "org/pickled")
    for f in tiny_model_dir.iterdir():
        if f.is_file() and f.suffix != ".safetensors":
            shutil.copy(f, snap / f.name)
    (snap / "pytorch_model.bin").write_bytes(b"not unpickled")
    from alignkit.models.loading import load_causal_lm
    with pytest.raises(ModelLoadError, match="^org/pickled: no .safetensors weights; alignkit refuses to unpickle"):
        load_causal_lm("org/pickled")



def test_prompt_only_datasets_in_any_kind_and_from_the_cache(hf_home, tmp_path):
    """Prompts for online methods: a prompt-only Parquet file, a shard folder, a cached dataset, by name."""
    from alignkit.data.prompts import read_prompts
    rows = [{"prompt": f"question {i} ?", "id": i} for i in range(5)]
    assert read_prompts(str(write_parquet(tmp_path / "p.parquet", rows))) == [r["prompt"] for r in rows]
    ds = snapshot(hf_home / "hub", "dataset", "org/prompts")
    write_parquet(ds / "data" / "train-00000-of-00002.parquet", rows[:3])
    write_parquet(ds / "data" / "train-00001-of-00002.parquet", rows[3:])
    write_parquet(ds / "data" / "test-00000-of-00001.parquet", [{"prompt": "held out ?"}])
    assert read_prompts("org/prompts") == [r["prompt"] for r in rows]
    assert read_prompts("org/prompts:test") == ["held out ?"]
    assert read_prompts("org/prompts", limit=4) == [r["prompt"] for r in rows[:4]]
    write_parquet(tmp_path / "bad.parquet", [{"prompt": "a"}, {"prompt": ""}])
    with pytest.raises(DataError, match=f"^{tmp_path / 'bad.parquet'}:2: field 'prompt': expected a non-empty"):
        read_prompts(str(tmp_path / "bad.parquet"))


def test_a_cached_dataset_and_a_folder_split_have_a_data_fingerprint(hf_home, tmp_path):
    # --resume compares the fingerprint of the files a name resolves to: new contents are a change
    from alignkit.train.record import data_fingerprint
    snap = snapshot(hf_home / "hub", "dataset", "org/pairs")
    shard = write_parquet(snap / "data" / "train-00000-of-00001.parquet", hh_rows(3))
    write_parquet(snap / "data" / "test-00000-of-00001.parquet", hh_rows(2, "t"))
    first, test_split = data_fingerprint("org/pairs"), data_fingerprint("org/pairs:test")
    assert first.startswith("sha256:") and test_split.startswith("sha256:") and first != test_split
    assert data_fingerprint("org/pairs") == first
    write_parquet(shard, hh_rows(4))
    assert data_fingerprint("org/pairs") != first
    assert data_fingerprint("org/absent") == ""
    folder = tmp_path / "local_ds"
    shutil.copytree(snap, folder)
    assert data_fingerprint(f"{folder}:test") == test_split  # the same files under another path
