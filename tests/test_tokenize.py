"""Chat templates, completion masks and truncation."""
from alignkit.data.tokenize import DEFAULT_CHAT_TEMPLATE, Encoder, render_prompt
from alignkit.models.loading import load_tokenizer

from conftest import shared_path


def test_default_template_renders_conversation(tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    msgs = [{"role": "user", "content": "hi"}]
    assert render_prompt(tok, msgs) == "<|user|>\nhi\n<|assistant|>\n"
    tok.chat_template = None  # a tokenizer without a template falls back to the same documented format
    assert render_prompt(tok, msgs) == "<|user|>\nhi\n<|assistant|>\n"
    assert "add_generation_prompt" in DEFAULT_CHAT_TEMPLATE
    assert render_prompt(tok, "plain text") == "plain text"


def test_completion_ids_end_with_eos_and_prompt_starts_with_bos(tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    enc = Encoder(tok, max_length=64)
    e = enc.encode("the cat", " sat on a mat")
    assert e.prompt_ids[0] == tok.bos_token_id
    assert e.completion_ids[-1] == tok.eos_token_id
    assert tok.decode(e.completion_ids, skip_special_tokens=True) == " sat on a mat"
    assert not e.truncated


def test_truncation_keeps_prompt_end_and_completion_start(tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    enc = Encoder(tok, max_length=12, max_prompt_length=6)
    prompt = " ".join(["cat"] * 20) + " dog"
    completion = "park " * 20
    e = enc.encode(prompt, completion)
    full_p = enc.prompt_ids(prompt)
    full_c = enc.completion_ids(completion)
    assert e.truncated and len(e.prompt_ids) + len(e.completion_ids) == 12
    assert e.prompt_ids == full_p[-6:]  # the prompt's end survives
    assert e.completion_ids == full_c[:6]  # the completion's start survives
    # short completion: the prompt may use the rest of the budget
    e2 = enc.encode(prompt, "ok")
    assert len(e2.prompt_ids) + len(e2.completion_ids) == 12
    assert e2.completion_ids == enc.completion_ids("ok")
    assert enc.report.truncated == 2 and enc.report.total == 2


def test_dropped_when_no_completion_fits(tiny_model_dir):
    tok = load_tokenizer(str(tiny_model_dir))
    enc = Encoder(tok, max_length=4, max_prompt_length=4)
    assert enc.encode(" ".join(["cat"] * 10), "dog") is None
    assert enc.report.dropped == 1
    assert "1 dropped" in enc.report.summary()


def test_real_gpt2_tokenizer_masks():
    tok = load_tokenizer(str(shared_path("tokenizers", "gpt2")))
    enc = Encoder(tok, max_length=128)
    e = enc.encode("\n\nHuman: Hello?\n\nAssistant:", " Hi there.")
    assert tok.decode(e.completion_ids[:-1]) == " Hi there."
    assert tok.decode(e.prompt_ids).endswith("Assistant:")
