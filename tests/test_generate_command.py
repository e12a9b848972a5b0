"""`alignkit generate`: prompts files in every accepted form (text lines, `prompt` text or messages,
`messages`, MT-Bench `turns`), the chat template, judge scoring and its printed mean, atomic output that
is never silently replaced, and one-line errors naming FILE:LINE and the field."""
from __future__ import annotations

import json

import pytest

from alignkit.cli import main
from conftest import shared_path


def _rows(path) -> list:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def _gen(model, prompts, out, *extra) -> int:
    return main(["generate", "--model", str(model), "--prompts", str(prompts), "--output", str(out),
                 "--max-new-tokens", "6", "--batch-size", "4", *map(str, extra)])


def test_text_and_conversational_prompts_with_samples_and_a_judge(tiny_model_dir, tmp_path, capsys):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("\n".join(json.dumps(r) for r in [
        {"prompt": "what is two plus three ?", "id": "a"},
        {"prompt": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "help me"}], "id": "b"},
        {"messages": [{"role": "user", "content": "the cat"}, {"role": "assistant", "content": "sat"}], "id": "c"},
    ]) + "\n")
    out = tmp_path / "o.jsonl"
    assert _gen(tiny_model_dir, prompts, out, "--samples-per-prompt", "2", "--judge", "rule:chars", "--seed", "3") == 0
    printed = capsys.readouterr().out
    rows = _rows(out)
    assert len(rows) == 6 and [r["id"] for r in rows] == ["a", "a", "b", "b", "c", "c"]
    assert [r["sample"] for r in rows] == [0, 1] * 3
    # the tiny model's tokenizer has a chat template: the text prompt was asked as a user message
    assert rows[0]["prompt"] == [{"role": "user", "content": "what is two plus three ?"}]
    assert rows[4]["prompt"] == [{"role": "user", "content": "the cat"}]  # the demonstration's answer dropped
    for r in rows:  # TRL conversational prompt-completion: one assistant message
        assert r["completion"][0]["role"] == "assistant" and len(r["completion"]) == 1
        assert r["score"] == float(len(r["completion"][0]["content"]))  # rule:chars
    mean = sum(r["score"] for r in rows) / len(rows)
    assert f"mean score {mean:.4f} under rule:chars (n=6)" in printed
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # written through a renamed temp file

    # the same seed gives the same completions; an existing output is refused without --overwrite
    assert _gen(tiny_model_dir, prompts, out, "--samples-per-prompt", "2", "--seed", "3") == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _gen(tiny_model_dir, prompts, out, "--samples-per-prompt", "2", "--seed", "3", "--overwrite") == 0
    assert [r["completion"] for r in _rows(out)] == [r["completion"] for r in rows]
    assert "score" not in _rows(out)[0]


def test_text_file_and_as_chat_never_keep_plain_text(tiny_model_dir, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("the cat sat on\n\nthe dog ran to\n")
    out = tmp_path / "o.jsonl"
    assert _gen(tiny_model_dir, prompts, out, "--as-chat", "never", "--temperature", "0") == 0
    rows = _rows(out)
    assert [r["prompt"] for r in rows] == ["the cat sat on", "the dog ran to"]
    assert all(isinstance(r["completion"], str) for r in rows)


def test_mt_bench_first_turn_and_all_turns(tiny_model_dir, tmp_path, capsys):
    questions = shared_path("data", "mt_bench", "question.jsonl")
    first = [json.loads(line) for line in open(questions)][:3]
    out = tmp_path / "first.jsonl"
    assert _gen(tiny_model_dir, questions, out, "--limit", "3") == 0
    rows = _rows(out)
    assert [r["question_id"] for r in rows] == [q["question_id"] for q in first]
    assert [r["prompt"] for r in rows] == [[{"role": "user", "content": q["turns"][0]}] for q in first]
    assert all(r["turn"] == 1 for r in rows)

    out2 = tmp_path / "all.jsonl"
    assert _gen(tiny_model_dir, questions, out2, "--limit", "3", "--turns", "all", "--judge", "rule:words") == 0
    assert "turn 1:" in capsys.readouterr().out
    rows = _rows(out2)
    assert [(r["question_id"], r["turn"]) for r in rows] == [(q["question_id"], t) for q in first for t in (1, 2)]
    for one, two, q in zip(rows[::2], rows[1::2], first):
        # turn 2 is asked after the model's own answer to turn 1
        assert two["prompt"] == one["prompt"] + one["completion"] + [{"role": "user", "content": q["turns"][1]}]


@pytest.mark.parametrize("content, where", [
    ('{"prompt": "fine"}\n{"question": "no prompt field"}\n', ":2: no prompt field"),
    ('{"prompt": "fine"}\n{"turns": ["ok", 3]}\n', ":2: field 'turns[1]': expected a non-empty string"),
    ('{"prompt": [{"role": "user"}]}\n', ":1: field 'prompt[0].content'"),
    ('{"messages": [{"role": "assistant", "content": "hi"}]}\n', ":1: field 'messages': the conversation must end"),
    ('{"prompt": "fine"}\n{"prompt": 5}\n', ":2: field 'prompt': expected a string or a list of messages"),
    ('{"prompt": "fine"}\n{not json\n', ":2:"),
])
def test_a_bad_prompts_file_is_one_line_naming_file_line_and_field(tiny_model_dir, tmp_path, capsys, content, where):
    prompts = tmp_path / "bad.jsonl"
    prompts.write_text(content)
    assert _gen(tiny_model_dir, prompts, tmp_path / "o.jsonl") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: {prompts}{where}"), err
    assert not (tmp_path / "o.jsonl").exists()


def test_prompts_past_the_context_and_a_pairwise_judge(tiny_model_dir, tmp_path, capsys):
    prompts = tmp_path / "long.jsonl"
    prompts.write_text(json.dumps({"prompt": "short"}) + "\n" + json.dumps({"prompt": "the cat " * 600}) + "\n")
    # a prompt that fills the context is left out with a note naming it; the others are answered
    assert _gen(tiny_model_dir, prompts, tmp_path / "o.jsonl", "--as-chat", "never") == 0
    err = capsys.readouterr().err
    assert f"note: left out 1 of 2 prompts that fill the model's context of 512 tokens" in err and f"{prompts}:2" in err
    assert [r["prompt"] for r in _rows(tmp_path / "o.jsonl")] == ["short"]
    (tmp_path / "o.jsonl").unlink()
    only_long = tmp_path / "only_long.jsonl"
    only_long.write_text(json.dumps({"prompt": "the cat " * 600}) + "\n")
    assert _gen(tiny_model_dir, only_long, tmp_path / "o.jsonl", "--as-chat", "never") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"error: {only_long}: every prompt fills the model's context of 512 tokens: nothing to generate"
    ok = tmp_path / "ok.jsonl"
    ok.write_text(json.dumps({"prompt": "short"}) + "\n")
    assert _gen(tiny_model_dir, ok, tmp_path / "o.jsonl", "--judge", "population") == 2
    err = capsys.readouterr().err
    assert "compares pairs only" in err and "the 1 completions are in" in err  # sampled text is kept
    assert len(_rows(tmp_path / "o.jsonl")) == 1 and "score" not in _rows(tmp_path / "o.jsonl")[0]
    (tmp_path / "o.jsonl").unlink()
    assert _gen(tiny_model_dir, ok, tmp_path / "o.jsonl", "--num-samples", "0") == 2
    assert "--samples-per-prompt must be >= 1, got 0" in capsys.readouterr().err


def test_long_prompts_get_the_rest_of_the_context(tiny_model_dir, tmp_path, capsys):
    """A prompt close to the context samples only up to it (a note says how many), the others the full budget."""
    from alignkit.eval.generate import GenerateSettings, PromptItem, generate_records
    from alignkit.models.loading import load_causal_lm, load_tokenizer
    model, tok = load_causal_lm(str(tiny_model_dir)), load_tokenizer(str(tiny_model_dir))
    notes = []
    long = "the " * 505
    n_long = len(tok(long, add_special_tokens=False)["input_ids"]) + 1  # + BOS
    assert n_long < 512
    recs = generate_records(model, tok, [PromptItem("the cat"), PromptItem(long)],
                            GenerateSettings(max_new_tokens=40, temperature=0, as_chat="never"), log=notes.append)
    n_out = len(tok(recs[1]["completion"], add_special_tokens=False)["input_ids"])
    assert n_out <= 512 - n_long and len(notes) == 1 and "1 of 2 prompts" in notes[0]


def test_a_reward_model_folder_as_the_judge(tiny_model_dir, tmp_path, capsys):
    """--judge rm:DIR scores each completion as the reward model does (its own judge, called directly)."""
    from alignkit.registry import run_train
    from alignkit.rewards.specs import judge_from_spec
    from conftest import make_pairs
    rm = tmp_path / "rm"
    run_train("rm", str(tiny_model_dir), make_pairs(16), str(rm), {"max_steps": 2, "batch_size": 4, "progress": False,
                                                                   "eval_fraction": 0.0, "num_threads": 1},
              log=lambda *a, **k: None)
    prompts = tmp_path / "p.txt"
    prompts.write_text("question 1 : the cat ?\nquestion 2 : the dog ?\n")
    out = tmp_path / "o.jsonl"
    assert _gen(tiny_model_dir, prompts, out, "--judge", f"rm:{rm}", "--samples-per-prompt", "2") == 0
    rows = _rows(out)
    expected = judge_from_spec(f"rm:{rm}").score([r["prompt"] for r in rows], [r["completion"][0]["content"] for r in rows])
    assert [r["score"] for r in rows] == pytest.approx(expected, abs=1e-5)
    assert f"mean score {sum(expected) / 4:.4f} under rm:{rm} (n=4)" in capsys.readouterr().out


def test_a_conversation_that_outgrows_the_context_ends_there(tiny_model_dir):
    from alignkit.eval.generate import GenerateSettings, PromptItem, generate_records
    from alignkit.models.loading import load_causal_lm, load_tokenizer
    model, tok = load_causal_lm(str(tiny_model_dir)), load_tokenizer(str(tiny_model_dir))
    items = [PromptItem([{"role": "user", "content": "the cat"}], ("the dog " * 300, "the end"), source="f:1"),
             PromptItem([{"role": "user", "content": "a mat"}], ("the park",), source="f:2")]
    notes = []
    recs = generate_records(model, tok, items, GenerateSettings(max_new_tokens=4, turns="all"), log=notes.append)
    assert [(r["prompt"][0]["content"], r["turn"]) for r in recs] == [("the cat", 1), ("a mat", 1), ("a mat", 2)]
    assert any("left out 1 of 2 prompts" in n and "f:1 (turn 2)" in n for n in notes)


def test_prompts_from_a_hub_style_folder_of_parquet_shards(tiny_model_dir, tmp_path):
    # the split's two shards are read in order; a bad row names its shard file and row
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa
    folder = tmp_path / "prompts_ds" / "data"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"prompt": ["the cat sat on", "the dog ran to"]}), folder / "train-00000-of-00002.parquet")
    pq.write_table(pa.table({"prompt": ["a bird flew"]}), folder / "train-00001-of-00002.parquet")
    pq.write_table(pa.table({"prompt": ["held out"]}), folder / "test-00000-of-00001.parquet")
    out = tmp_path / "o.jsonl"
    assert _gen(tiny_model_dir, tmp_path / "prompts_ds", out, "--as-chat", "never") == 0
    assert [r["prompt"] for r in _rows(out)] == ["the cat sat on", "the dog ran to", "a bird flew"]
    assert _gen(tiny_model_dir, f"{tmp_path / 'prompts_ds'}:test", out, "--as-chat", "never", "--overwrite") == 0
    assert [r["prompt"] for r in _rows(out)] == ["held out"]
