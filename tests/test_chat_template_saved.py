"""The chat template a run trains with is saved with its tokenizer (plain transformers'
apply_chat_template renders what training rendered); --chat-template NAME|FILE; and `train kto` on
pairwise data (converted to KTO's unpaired examples, with a note)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from alignkit.cli import main
from alignkit.data.tokenize import CHAT_TEMPLATES, DEFAULT_CHAT_TEMPLATE, Encoder, use_chat_template
from alignkit.errors import ConfigError

MSGS = [{"role": "system", "content": "be brief ."}, {"role": "user", "content": "what is two plus three ?"}]


@pytest.fixture
def no_template_model(tmp_path, tiny_model_dir) -> Path:
    """The tiny model with its tokenizer's chat template removed (a base model)."""
    from transformers import AutoTokenizer
    out = tmp_path / "base"
    shutil.copytree(tiny_model_dir, out)
    (out / "chat_template.jinja").unlink(missing_ok=True)
    cfg_file = out / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg.pop("chat_template", None)
    cfg_file.write_text(json.dumps(cfg))
    assert not AutoTokenizer.from_pretrained(out).chat_template
    return out


def conversations(path: Path, n: int = 8) -> Path:
    path.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": f"question {i} : what is two plus three ?"},
        {"role": "assistant", "content": "five ."}]}) + "\n" for i in range(n)))
    return path


def train_sft(model, data, out, *extra) -> int:
    return main(["train", "sft", "--model", str(model), "--data", str(data), "--output", str(out), "--max-steps", "1",
                 "--batch-size", "4", "--num-threads", "1", "--progress", "false", *extra])


def test_issue_row_conversational_data_then_the_saved_model_in_plain_transformers(tmp_path, no_template_model, capsys):
    """A model without a template, conversational data: training renders with the fallback template,
    and the output's tokenizer (plain transformers) renders the same string."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    out = tmp_path / "sft"
    assert train_sft(no_template_model, conversations(tmp_path / "chat.jsonl"), out) == 0
    assert "note: chat template: the model has none" in capsys.readouterr().out
    saved = AutoTokenizer.from_pretrained(out)
    rendered = saved.apply_chat_template(MSGS, tokenize=False, add_generation_prompt=True)
    # what training rendered: the base tokenizer with the template use_chat_template gave it
    base = AutoTokenizer.from_pretrained(no_template_model)
    use_chat_template(base, "", conversational=True)
    enc = Encoder.untruncated(base)
    trained_text = base.decode(enc.prompt_ids(MSGS), skip_special_tokens=False)
    assert rendered == "<|system|>\nbe brief .\n<|user|>\nwhat is two plus three ?\n<|assistant|>\n"
    assert trained_text == base.bos_token + rendered
    # the token ids a user gets from plain transformers are the ones training used
    assert saved.apply_chat_template(MSGS, tokenize=True, add_generation_prompt=True, return_dict=False) == \
        enc.prompt_ids(MSGS)[1:]
    AutoModelForCausalLM.from_pretrained(out)  # and the model loads beside it


def test_plain_text_data_saves_no_template_and_a_model_keeps_its_own(tmp_path, no_template_model, tiny_model_dir):
    from transformers import AutoTokenizer
    text = tmp_path / "text.jsonl"
    text.write_text("".join(json.dumps({"prompt": f"q{i} ?", "completion": "five ."}) + "\n" for i in range(8)))
    assert train_sft(no_template_model, text, tmp_path / "a") == 0
    assert not AutoTokenizer.from_pretrained(tmp_path / "a").chat_template  # nothing was rendered with one
    assert train_sft(tiny_model_dir, conversations(tmp_path / "c.jsonl"), tmp_path / "b") == 0
    assert AutoTokenizer.from_pretrained(tmp_path / "b").chat_template == DEFAULT_CHAT_TEMPLATE


@pytest.mark.parametrize("name", ["chatml", "zephyr", "llama-3"])
def test_builtin_templates_render(name, no_template_model):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(no_template_model)
    use_chat_template(tok, name, conversational=False)
    text = tok.apply_chat_template(MSGS, tokenize=False, add_generation_prompt=True)
    expected = {
        "chatml": "<|im_start|>system\nbe brief .<|im_end|>\n<|im_start|>user\nwhat is two plus three ?<|im_end|>\n"
                  "<|im_start|>assistant\n",
        "zephyr": f"<|system|>\nbe brief .{tok.eos_token}\n<|user|>\nwhat is two plus three ?{tok.eos_token}\n<|assistant|>\n",
        "llama-3": f"{tok.bos_token}<|start_header_id|>system<|end_header_id|>\n\nbe brief .<|eot_id|>"
                   "<|start_header_id|>user<|end_header_id|>\n\nwhat is two plus three ?<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\n",
    }[name]
    assert text == expected


def test_chat_template_flag_name_and_file_are_saved(tmp_path, no_template_model, capsys):
    from transformers import AutoTokenizer
    data = conversations(tmp_path / "chat.jsonl")
    assert train_sft(no_template_model, data, tmp_path / "chatml", "--chat-template", "chatml") == 0
    saved = AutoTokenizer.from_pretrained(tmp_path / "chatml")
    assert saved.chat_template == CHAT_TEMPLATES["chatml"]
    assert saved.apply_chat_template(MSGS[1:], tokenize=False, add_generation_prompt=True) == \
        "<|im_start|>user\nwhat is two plus three ?<|im_end|>\n<|im_start|>assistant\n"
    jinja = tmp_path / "mine.jinja"
    jinja.write_text("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
                     "{% if add_generation_prompt %}[assistant] {% endif %}")
    assert train_sft(no_template_model, data, tmp_path / "file", "--chat-template", str(jinja)) == 0
    saved = AutoTokenizer.from_pretrained(tmp_path / "file")
    assert saved.apply_chat_template(MSGS[1:], tokenize=False, add_generation_prompt=True) == \
        "[user] what is two plus three ?\n[assistant] "
    capsys.readouterr()
    assert train_sft(no_template_model, data, tmp_path / "bad", "--chat-template", "vicuna") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--chat-template: 'vicuna' is neither a built-in template (alignkit, chatml, zephyr, " \
                               "llama-3) nor a Jinja file" in err
    with pytest.raises(ConfigError, match="not a chat template"):
        bad = tmp_path / "bad.jinja"
        bad.write_text("hello")
        use_chat_template(AutoTokenizer.from_pretrained(no_template_model), str(bad), True)


# ---- KTO on pairwise data -------------------------------------------------------------------------
def test_pairwise_to_unpaired_neighbours_answer_other_prompts():
    from alignkit.data.convert import pairwise_to_unpaired
    from alignkit.data.records import Pairwise
    for n in (2, 3, 4, 5, 7):
        pairs = [Pairwise(f"p{i}", f"good {i}", f"bad {i}") for i in range(n)]
        out = pairwise_to_unpaired(pairs)
        assert len(out) == 2 * n
        assert sorted((r.prompt, r.completion, r.label) for r in out) == sorted(
            [(p.prompt, p.chosen, True) for p in pairs] + [(p.prompt, p.rejected, False) for p in pairs])
        # KTO's mismatched pair of example i is (its prompt, example i+1's completion): never its own prompt
        assert all(out[i].prompt != out[(i + 1) % len(out)].prompt for i in range(len(out)))
        for k in range(2 * n + 1):  # any first k examples: the two labels' counts differ by at most 3
            assert abs(2 * sum(r.label for r in out[:k]) - k) <= 3


def test_issue_row_train_kto_on_pairwise_data(tmp_path, tiny_model_dir, capsys):
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"question {i} ?", "chosen": "sure , here is how .",
                                        "rejected": "no , i cannot ."}) + "\n" for i in range(12)))
    out = tmp_path / "kto"
    rc = main(["train", "kto", "--model", str(tiny_model_dir), "--data", str(data), "--output", str(out),
               "--max-steps", "2", "--batch-size", "4", "--num-threads", "1", "--progress", "false"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert ("note: 12 pairwise records for a binary-feedback method: each pair became a desirable (chosen) and an "
            "undesirable (rejected) example, 24 examples") in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_examples"] + summary["eval_examples"] == 24 and summary["steps"] == 2
    # thumbs data that is simply broken keeps its own error (not the pairwise reading's)
    bad = tmp_path / "thumbs.jsonl"
    bad.write_text(json.dumps({"prompt": "q", "completion": "a", "label": True}) + "\n"
                   + json.dumps({"prompt": "q", "completion": "a", "label": "maybe"}) + "\n")
    rc = main(["train", "kto", "--model", str(tiny_model_dir), "--data", str(bad), "--output", str(tmp_path / "k2")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith(f"error: {bad}:2: field 'label'")
