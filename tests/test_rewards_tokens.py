"""`alignkit rewards tokens`: per-token implicit rewards ("From r to Q*", Rafailov et al. 2024).

The policy is a second tiny Llama (another seed, same tokenizer) so that every token's log-ratio to
the reference is non-zero; the sequence rewards it is checked against are computed here one sequence
at a time, independently of the command's batching, and by the `implicit:` judge.
"""
from __future__ import annotations

import json
import re

import pytest
import torch

from alignkit.cli import main
from alignkit.data.convert import write_jsonl
from alignkit.data.records import Binary, Listwise
from alignkit.data.tokenize import Encoder
from alignkit.models.loading import load_causal_lm, load_tokenizer
from alignkit.models.tiny import TinyLlamaConfig, build_tiny_llama
from alignkit.rewards.tokens import colour_mode, token_colour, token_pieces
from alignkit.train.forward import collate, sequence_logps
from conftest import make_pairs

BETA = 0.3


@pytest.fixture(scope="module")
def policy_dir(tiny_model_dir, tmp_path_factory):
    tok = load_tokenizer(str(tiny_model_dir))
    model = build_tiny_llama(tok, TinyLlamaConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64), seed=1)
    out = tmp_path_factory.mktemp("policy")
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "pairs.jsonl"
    write_jsonl(make_pairs(4), path)
    return path


def run_json(capsys, *argv) -> dict:
    assert main(["rewards", "tokens", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@torch.no_grad()
def sequence_reward(policy, ref, enc, prompt, completion) -> float:
    """beta * (log pi(y|x) - log pi_ref(y|x)) of one sequence, in a batch of its own."""
    e = enc.encode(prompt, completion)
    sb = collate([(e.prompt_ids, e.completion_ids)], 0)
    return BETA * float(sequence_logps(policy, sb)[0].sum() - sequence_logps(ref, sb)[0].sum())


def test_token_rewards_sum_to_the_sequence_reward(capsys, policy_dir, tiny_model_dir, pairs_file):
    out = run_json(capsys, "--model", policy_dir, "--ref", tiny_model_dir, "--data", pairs_file,
                   "--beta", BETA, "--limit", 0)
    pairs = make_pairs(4)
    views = out["completions"]
    assert [v["side"] for v in views] == ["chosen", "rejected"] * 4  # pairwise data: both sides
    policy, ref = load_causal_lm(str(policy_dir)).eval(), load_causal_lm(str(tiny_model_dir)).eval()
    enc = Encoder(load_tokenizer(str(policy_dir)), 512)
    from alignkit.rewards.implicit import ImplicitRewardJudge
    judge = ImplicitRewardJudge(str(policy_dir), str(tiny_model_dir), BETA)
    texts = [c for p in pairs for c in (p.chosen, p.rejected)]
    judged = judge.score([p.prompt for p in pairs for _ in (0, 1)], texts)
    for v, text, judge_total in zip(views, texts, judged):
        token_sum = sum(t["reward"] for t in v["tokens"])
        expected = sequence_reward(policy, ref, enc, pairs[v["record"]].prompt, text)
        assert abs(expected) > 0.01  # the two models differ, so the check is not 0 == 0
        assert token_sum == pytest.approx(expected, abs=1e-5)
        assert v["total"] == pytest.approx(token_sum, abs=1e-9)
        assert judge_total == pytest.approx(expected, abs=1e-5)
        assert "".join(t["text"] for t in v["tokens"]) == text + "<|eos|>"  # the pieces are the completion's text
        assert [t["id"] for t in v["tokens"]] == enc.encode(pairs[v["record"]].prompt, text).completion_ids
        top = sorted((abs(t["reward"]) for t in v["tokens"]), reverse=True)[:5]
        assert [abs(t["reward"]) for t in v["top"]] == top


def test_html_page_has_one_span_per_token(tmp_path, capsys, policy_dir, tiny_model_dir, pairs_file):
    page = tmp_path / "tokens.html"
    out = run_json(capsys, "--model", policy_dir, "--ref", tiny_model_dir, "--data", pairs_file,
                   "--beta", BETA, "--limit", 3, "--html", page)
    text = page.read_text()
    enc = Encoder(load_tokenizer(str(policy_dir)), 512)
    n_tokens = sum(len(enc.encode(p.prompt, c).completion_ids) for p in make_pairs(3) for c in (p.chosen, p.rejected))
    spans = re.findall(r'<span class="tok" style="background:rgb\((\d+), (\d+), (\d+)\)[^"]*" title="([-+][\d.]+) ', text)
    assert len(spans) == n_tokens == sum(len(v["tokens"]) for v in out["completions"])
    values = [float(s[3]) for s in spans]
    assert values == pytest.approx([t["reward"] for v in out["completions"] for t in v["tokens"]], abs=1e-6)
    for r, g, b, value in spans:  # green for a positive reward, red for a negative one
        r, g, b, value = int(r), int(g), int(b), float(value)
        if value > 0.01:
            assert g >= r and g > b
        elif value < -0.01:
            assert r > g and r > b
    assert "<script" not in text and "http" not in text and "<link" not in text  # self-contained
    assert text.count('class="view"') == 6


def test_terminal_view_plain_and_coloured(capsys, policy_dir, tiny_model_dir, tmp_path):
    data = tmp_path / "binary.jsonl"
    write_jsonl([Binary("what is two plus three ?", "five .", True),
                 Binary("what is two plus three ?", "the cat sat .", False)], data)
    args = ["rewards", "tokens", "--model", str(policy_dir), "--ref", str(tiny_model_dir), "--data", str(data)]
    assert main(args) == 0  # captured stdout is not a terminal: plain text
    plain = capsys.readouterr().out
    assert "\x1b[" not in plain
    assert plain.count("total: ") == 2 and plain.count("top tokens by |reward|") == 2
    assert "thumbs up" in plain and "thumbs down" in plain
    enc = Encoder(load_tokenizer(str(policy_dir)), 512)
    n_tokens = sum(len(enc.encode("what is two plus three ?", c).completion_ids) for c in ("five .", "the cat sat ."))
    assert len(re.findall(r"\[[-+]\d\.\d{4}\]", plain)) == n_tokens  # each token followed by [its reward]
    assert main(args + ["--color", "always"]) == 0
    coloured = capsys.readouterr().out
    assert "\x1b[48;" in coloured
    assert "five .<|eos|>" in re.sub(r"\x1b\[[\d;]*m", "", coloured)  # the colours wrap the text unchanged
    assert main(args + ["--color", "always", "--no-color"]) == 0
    assert "\x1b[" not in capsys.readouterr().out


def test_listwise_data_shows_every_response(capsys, policy_dir, tiny_model_dir, tmp_path):
    data = tmp_path / "lists.jsonl"
    write_jsonl([Listwise("the cat ?", ("sure .", "no .", "the dog ran ."), (2.0, 0.0, 1.0))], data)
    out = run_json(capsys, "--model", policy_dir, "--ref", tiny_model_dir, "--data", data)
    assert [v["side"] for v in out["completions"]] == ["response 1", "response 2", "response 3"]
    assert out["beta"] == 0.1  # no --beta and no training config: the default


def test_missing_reference_is_a_config_error(capsys, policy_dir, pairs_file):
    assert main(["rewards", "tokens", "--model", str(policy_dir), "--data", str(pairs_file)]) == 2
    assert "reference" in capsys.readouterr().err


def test_colours_and_pieces(tiny_model_dir, monkeypatch):
    assert token_colour(0.0, 1.0)[0] == (255, 255, 255)
    assert token_colour(1.0, 1.0)[0] == (0, 160, 0) and token_colour(5.0, 1.0)[0] == (0, 160, 0)
    assert token_colour(-1.0, 1.0)[0] == (200, 0, 0)
    weak, strong = token_colour(0.2, 1.0)[0], token_colour(0.6, 1.0)[0]
    assert strong[0] < weak[0] and strong[2] < weak[2]  # more intense with |r|
    tok = load_tokenizer(str(tiny_model_dir))
    for text in ("the cat sat .", "café ☕ ok"):  # multi-byte characters split across byte-level tokens
        ids = tok(text, add_special_tokens=False)["input_ids"]
        pieces = token_pieces(tok, ids)
        assert len(pieces) == len(ids) and "".join(pieces) == tok.decode(ids)

    class Tty:
        def isatty(self):
            return True
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("COLORTERM", "truecolor")
    assert colour_mode("auto", Tty()) == "24bit"
    monkeypatch.setenv("COLORTERM", "")
    assert colour_mode("auto", Tty()) == "256"
    monkeypatch.setenv("NO_COLOR", "1")
    assert colour_mode("auto", Tty()) == ""
