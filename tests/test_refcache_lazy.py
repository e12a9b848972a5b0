"""Reference log-probs computed lazily, batch by batch as training reaches them (train/refcache.py
LazyReference): only the visited examples, the same values as an up-front pass, free while the
policy still is the reference, reused from disk."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from alignkit.losses.registry import get_loss
from alignkit.models.loading import load_causal_lm, load_tokenizer
from alignkit.train import refcache
from alignkit.train.config import TrainConfig
from alignkit.train.offline import Example, train_offline

from conftest import make_pairs


def _run(tmp_path, name, steps=3, **kw):
    spec = get_loss("dpo")
    pairs = make_pairs(70)
    cfg = TrainConfig(max_steps=steps, batch_size=4, learning_rate=1e-3, progress=False, max_length=64,
                      ref_cache="disk", seed=1, **kw)
    return train_offline(spec, spec.config(), cfg, str(tmp_path / "model"), pairs[:60], pairs[60:],
                         str(tmp_path / name), log=lambda *a: None)


def test_only_the_visited_examples_and_the_same_values(tiny_model_dir, tmp_path):
    import shutil
    shutil.copytree(tiny_model_dir, tmp_path / "model")
    res = _run(tmp_path, "dpo")
    # step 1's 4 pairs and the 10 held-out pairs at step 0 come free from the policy's own forward;
    # steps 2 and 3 run the reference on their 8 pairs (some may repeat); 60 - 12 pairs never computed
    comp = res["reference_logps"]
    assert comp["from_policy"] == 4 + 10 and 1 <= comp["reference_pass"] <= 8
    cached = load_file(str(tmp_path / "dpo" / "ref_logps.safetensors"))
    idx = sorted({int(k.split(".")[0]) for k in cached})
    assert len(idx) == comp["from_policy"] + comp["reference_pass"] < 70
    # the values are the reference's: an up-front pass over the same examples agrees
    model, tok = load_causal_lm(str(tmp_path / "model")), load_tokenizer(str(tmp_path / "model"))
    from alignkit.data.tokenize import Encoder
    enc = Encoder(tok, 64)
    pairs = make_pairs(70)
    examples = []
    for i in idx:
        p = pairs[i]
        a, b = enc.encode(p.prompt, p.chosen), enc.encode(p.prompt, p.rejected)
        examples.append(Example(i, p, [(a.prompt_ids, a.completion_ids), (b.prompt_ids, b.completion_ids)]))
    upfront = refcache.compute_ref_logps(model, examples, tok.pad_token_id)
    for i in idx:
        for j in range(2):
            assert torch.allclose(cached[f"{i}.{j}"], upfront[i][j], atol=1e-5), (i, j)


def test_a_second_run_on_the_same_folder_reuses_the_cache(tiny_model_dir, tmp_path, monkeypatch):
    import shutil
    shutil.copytree(tiny_model_dir, tmp_path / "model")
    _run(tmp_path, "dpo", steps=2)
    calls = []
    real = refcache.compute_ref_logps
    monkeypatch.setattr(refcache, "compute_ref_logps", lambda *a, **k: calls.append(len(a[1])) or real(*a, **k))
    # the same data and reference: the held-out pairs and steps 1-2's pairs are on disk; only steps
    # 3-4's new pairs run the reference (the policy is not taken as one: the cache says otherwise)
    res = _run(tmp_path, "dpo", steps=4, overwrite=True)  # a finished run: replaced only when asked
    comp = res["reference_logps"]
    assert comp["from_policy"] == 0 and 1 <= comp["reference_pass"] <= 8 and sum(calls) == comp["reference_pass"]


def test_dropout_or_a_separate_reference_never_takes_the_policy_as_reference(tiny_model_dir):
    model = load_causal_lm(str(tiny_model_dir))
    assert refcache.deterministic(model)
    model.config.attention_dropout = 0.1
    assert not refcache.deterministic(model)
    model.config.attention_dropout = 0.0
    model.model.layers[0].mlp = torch.nn.Sequential(model.model.layers[0].mlp, torch.nn.Dropout(0.2))
    assert not refcache.deterministic(model)


def test_eval_at_skips_the_start_and_end_evaluations(tiny_model_dir, tmp_path):
    import json
    import shutil
    shutil.copytree(tiny_model_dir, tmp_path / "model")
    res = _run(tmp_path, "skip", steps=2, eval_at=("none",))
    assert res["eval_start"] == {} and res["eval_end"] == {}
    assert not [l for l in open(tmp_path / "skip" / "metrics.jsonl") if json.loads(l)["split"] == "eval"]
    assert res["reference_logps"]["from_policy"] == 4  # nothing computed for the held-out pairs
    res = _run(tmp_path, "end-only", steps=2, eval_at=("end",))
    assert res["eval_start"] == {} and "rewards/accuracy" in res["eval_end"]
    with pytest.raises(ValueError, match="--eval-at must be one of start, end, none, got 'middle'"):
        TrainConfig(eval_at=("middle",))


def test_upfront_reference_trains_the_same_weights(tiny_model_dir, tmp_path):
    """--ref-upfront (every example before the first step, the reference freed before training) and the
    lazy default train the same model: the reference's numbers differ only in float rounding."""
    import shutil
    shutil.copytree(tiny_model_dir, tmp_path / "model")
    lazy = _run(tmp_path, "lazy", steps=3)
    upfront = _run(tmp_path, "upfront", steps=3, ref_upfront=True)
    assert "reference_logps" not in upfront and lazy["reference_logps"]["reference_pass"] > 0
    assert upfront["eval_start"]["rewards/accuracy"] == 0.5
    a, b = load_file(str(tmp_path / "lazy" / "model.safetensors")), load_file(str(tmp_path / "upfront" / "model.safetensors"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    assert upfront["eval_end"]["loss"] == pytest.approx(lazy["eval_end"]["loss"], abs=1e-5)
