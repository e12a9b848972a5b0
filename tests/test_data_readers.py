"""read_records: every file kind, every row format, and the real files in ../shared."""
from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from alignkit.data.readers import read_records
from alignkit.data.records import Binary, Demonstration, Listwise, Pairwise, Scored
from alignkit.errors import DataError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

PAIRS = [
    {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"},
    {"prompt": "Capital of France?", "chosen": "Paris", "rejected": "Rome", "margin": 1.5},
]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_one(tmp_path, row, **kw):
    records, _ = read_records(write_jsonl(tmp_path / "one.jsonl", [row]), **kw)
    assert len(records) == 1
    return records[0]


def shared(*parts) -> Path:
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} is absent (../shared holds the real data; a user's clone has none)")
    return p


# ---- file kinds ------------------------------------------------------------------------------
def expected_pairs(source_file, lines):
    return [Pairwise("What is 2+2?", "4", "5", source=f"{source_file}:{lines[0]}"),
            Pairwise("Capital of France?", "Paris", "Rome", margin=1.5, source=f"{source_file}:{lines[1]}")]


def test_jsonl_skips_blank_lines_and_counts_file_lines(tmp_path):
    p = tmp_path / "pairs.jsonl"
    p.write_text("\n" + json.dumps(PAIRS[0]) + "\n\n" + json.dumps(PAIRS[1]) + "\n", encoding="utf-8")
    records, report = read_records(p)
    assert records == expected_pairs(p, [2, 4])
    assert (report.kept, report.skipped, report.errors) == (2, 0, [])
    assert report.summary() == f"{p}: 2 records"


def test_jsonl_gz(tmp_path):
    p = tmp_path / "pairs.jsonl.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        f.write("".join(json.dumps(r) + "\n" for r in PAIRS))
    assert read_records(p)[0] == expected_pairs(p, [1, 2])


def test_json_list_gives_the_line_where_each_object_starts(tmp_path):
    p = tmp_path / "pairs.json"
    p.write_text(json.dumps(PAIRS, indent=2), encoding="utf-8")  # "[", then 5 lines per object
    assert read_records(p)[0] == expected_pairs(p, [2, 7])


def test_json_data_key(tmp_path):
    p = tmp_path / "pairs.json"
    p.write_text('{"version": [1, {"data": 0}], "data": [\n' + json.dumps(PAIRS[0]) + ",\n"
                 + json.dumps(PAIRS[1]) + "\n]}", encoding="utf-8")
    assert read_records(p)[0] == expected_pairs(p, [2, 3])


def test_parquet_rows_and_null_cells(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    p = tmp_path / "pairs.parquet"
    table = pa.Table.from_pylist([dict(PAIRS[0], margin=None), PAIRS[1]])  # row 1: null margin = absent
    pq.write_table(table, p)
    assert read_records(p)[0] == expected_pairs(p, [1, 2])


def test_csv_rows_start_after_the_header_and_span_lines(tmp_path):
    p = tmp_path / "pairs.csv"
    with open(p, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "chosen", "rejected", "margin"])
        w.writerow(["Say hi\nin two lines", "Hi", "Go away", ""])  # empty cell: no margin
        w.writerow(["Capital of France?", "Paris", "Rome", "1.5"])
    records, _ = read_records(p)
    assert records == [Pairwise("Say hi\nin two lines", "Hi", "Go away", source=f"{p}:2"),
                       Pairwise("Capital of France?", "Paris", "Rome", margin=1.5, source=f"{p}:4")]


def test_csv_parses_labels_scores_and_json_lists(tmp_path):
    p = tmp_path / "binary.csv"
    p.write_text("prompt,completion,label\nQ1,A1,yes\nQ2,A2,0\n", encoding="utf-8")
    assert [r.label for r in read_records(p)[0]] == [True, False]
    p = tmp_path / "scored.csv"
    p.write_text("prompt,completion,score\nQ1,A1,0.25\n", encoding="utf-8")
    assert read_records(p)[0][0].score == 0.25
    p = tmp_path / "listwise.csv"
    p.write_text('prompt,completions,scores\nQ,"[""a"", ""b""]","[2, 1]"\n', encoding="utf-8")
    assert read_records(p)[0][0].completions == ("a", "b")


def test_datasets_folder_dataset_and_dataset_dict(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list([dict(PAIRS[0], margin=None), PAIRS[1]])  # from_list: columns of row 1
    ds.save_to_disk(str(tmp_path / "single"))
    assert read_records(tmp_path / "single")[0] == expected_pairs(tmp_path / "single", [1, 2])
    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(tmp_path / "dict"))
    assert len(read_records(tmp_path / "dict")[0]) == 2  # the train split
    datasets.DatasetDict({"validation": ds.select([1])}).save_to_disk(str(tmp_path / "only"))
    assert [r.chosen for r in read_records(tmp_path / "only")[0]] == ["Paris"]  # the only split
    datasets.DatasetDict({"a": ds, "b": ds}).save_to_disk(str(tmp_path / "two"))
    with pytest.raises(DataError, match="none is 'train'"):
        read_records(tmp_path / "two")


def test_limit_stops_after_n_good_records(tmp_path):
    p = write_jsonl(tmp_path / "many.jsonl", [dict(PAIRS[0], prompt=f"q{i}") for i in range(10)])
    records, report = read_records(p, limit=3)
    assert [r.prompt for r in records] == ["q0", "q1", "q2"] and report.kept == 3


# ---- formats ---------------------------------------------------------------------------------
def test_pairwise_conversational(tmp_path):
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    row = {"prompt": prompt, "chosen": [{"role": "assistant", "content": "4"}],
           "rejected": [{"role": "assistant", "content": "5"}]}
    assert read_one(tmp_path, row) == Pairwise(prompt, "4", "5", source=f"{tmp_path / 'one.jsonl'}:1")


def test_pairwise_trl_scores_give_the_margin_and_weight_is_read(tmp_path):
    rec = read_one(tmp_path, dict(PAIRS[0], score_chosen=8.0, score_rejected=5.5, weight=0.75))
    assert (rec.margin, rec.weight) == (2.5, 0.75)


def test_implicit_prompt_standard_cuts_at_a_word_boundary(tmp_path):
    rec = read_one(tmp_path, {"chosen": "The sky is blue.", "rejected": "The sky is black."})
    assert (rec.prompt, rec.chosen, rec.rejected) == ("The sky is", " blue.", " black.")


def test_implicit_prompt_conversational(tmp_path):
    user = {"role": "user", "content": "What color is the sky?"}
    rec = read_one(tmp_path, {"chosen": [user, {"role": "assistant", "content": "Blue."}],
                              "rejected": [user, {"role": "assistant", "content": "Green."}]})
    assert (rec.prompt, rec.chosen, rec.rejected) == ([user], "Blue.", "Green.")


def test_hh_prompt_is_the_raw_dialogue_up_to_the_last_shared_assistant_turn(tmp_path):
    head = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Tell me a joke\n\nAssistant:"
    rec = read_one(tmp_path, {"chosen": head + " Why did the chicken cross the road?",
                              "rejected": head + " No."})
    assert rec.prompt == head
    assert (rec.chosen, rec.rejected) == ("Why did the chicken cross the road?", "No.")


def test_binary_label_spellings(tmp_path):
    spellings = [(True, True), ("yes", True), ("No", False), ("true", True), ("FALSE", False),
                 (1, True), (0, False), ("thumbs_up", True), ("thumbs down", False), ("👍", True)]
    rows = [{"prompt": "Q", "completion": f"A{i}", "label": s} for i, (s, _) in enumerate(spellings)]
    records, _ = read_records(write_jsonl(tmp_path / "b.jsonl", rows))
    assert all(isinstance(r, Binary) for r in records)
    assert [r.label for r in records] == [want for _, want in spellings]


def test_truthfulqa_rows_are_binary_feedback_on_the_answer(tmp_path):
    rows = [{"prompt": "Q: Is the sun a star?\nA: Yes, it is.\nTrue:", "completion": " yes"},
            {"prompt": "Q: Is the moon cheese?\nA: Yes.\nTrue:", "completion": " no"}]
    p = write_jsonl(tmp_path / "tqa.jsonl", rows)
    for shape in (None, "binary"):
        records, _ = read_records(p, shape=shape)
        assert records == [Binary("Is the sun a star?", "Yes, it is.", True, source=f"{p}:1"),
                           Binary("Is the moon cheese?", "Yes.", False, source=f"{p}:2")]


def test_listwise_scores_and_ranking(tmp_path):
    rec = read_one(tmp_path, {"prompt": "Q", "completions": ["a", "b", "c"], "scores": [0.1, 0.9, 0.5]})
    assert rec == Listwise("Q", ("a", "b", "c"), (0.1, 0.9, 0.5), source=rec.source)
    assert rec.ranked() == ["b", "c", "a"]
    rec = read_one(tmp_path, {"prompt": "Q", "responses": ["a", "b", "c"], "ranking": [2, 3, 1]})
    assert rec.scores == (1.0, 0.0, 2.0) and rec.ranked() == ["c", "a", "b"]  # rank 1 is best


def test_alpaca_eval_listwise_uses_the_judge_probabilities_else_the_order(tmp_path):
    def resp(text, p=None):
        return {"model": "m", "text": text} | ({} if p is None else {"p_beats_reference": p})
    rec = read_one(tmp_path, {"id": 0, "prompt": "Q", "reference": "R",
                              "responses": [resp("x", 0.7), resp("y", 0.2), resp("z", 0.2)]})
    assert (rec.completions, rec.scores) == (("x", "y", "z"), (0.7, 0.2, 0.2))
    rec = read_one(tmp_path, {"prompt": "Q", "responses": [resp("x"), resp("y"), resp("z")]})
    assert rec.scores == (2.0, 1.0, 0.0)


def test_scored(tmp_path):
    rec = read_one(tmp_path, {"prompt": "Q", "completion": "A", "score": 3})
    assert rec == Scored("Q", "A", 3.0, source=rec.source)


def test_demonstration_formats(tmp_path):
    assert read_one(tmp_path, {"prompt": "Q", "completion": "A"}).completion == "A"
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Goodbye"}]
    rec = read_one(tmp_path, {"messages": msgs})
    assert rec == Demonstration(msgs[:3], "Goodbye", source=rec.source)
    rec = read_one(tmp_path, {"text": "Once upon a time."})
    assert (rec.prompt, rec.completion) == ("", "Once upon a time.")


def test_forced_demonstration_takes_the_chosen_side(tmp_path):
    p = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    records, _ = read_records(p, shape="demonstration")
    assert records == [Demonstration("What is 2+2?", "4", source=f"{p}:1"),
                       Demonstration("Capital of France?", "Paris", source=f"{p}:2")]


def test_forced_shape_refuses_other_rows(tmp_path):
    p = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    with pytest.raises(DataError, match=r"pairs.jsonl:1: not a binary record: found keys \['chosen', 'prompt', 'rejected'\]"):
        read_records(p, shape="binary")


def test_one_shape_per_file_without_converting(tmp_path):
    p = write_jsonl(tmp_path / "mixed.jsonl", [PAIRS[0], {"prompt": "Q", "completion": "A"}, PAIRS[1]])
    with pytest.raises(DataError, match=r"mixed.jsonl:2: not a pairwise record \(the file's first record is pairwise\)"):
        read_records(p)
    records, report = read_records(p, on_bad_record="skip")
    assert [type(r) for r in records] == [Pairwise, Pairwise] and report.skipped == 1


# ---- the real files in ../shared -------------------------------------------------------------
def test_real_hh_rlhf_pairs():
    p = shared("hh-rlhf", "harmless-base-sample.jsonl")
    records, report = read_records(p, on_bad_record="skip")
    # 1,800 pairs read; 3 have an empty chosen reply (the whole chosen answer is "") and are skipped
    assert report.kept + report.skipped == 1800
    assert report.skipped == 3 and [e.split(":")[-3] for e in report.errors] == ["635", "700", "1276"]
    assert all("field 'chosen': empty text" in e for e in report.errors)
    assert all(r.prompt.endswith("Assistant:") and r.prompt.startswith("\n\nHuman:") for r in records)
    assert all(r.chosen.strip() and r.rejected.strip() and r.chosen != r.rejected for r in records)
    assert not any(r.chosen.startswith(" ") or r.rejected.startswith(" ") for r in records)
    with pytest.raises(DataError, match=r"harmless-base-sample.jsonl:635: field 'chosen': empty text"):
        read_records(p)


def test_real_truthfulqa_binary():
    p = shared("truthfulqa", "finetune_truth.jsonl")
    records, report = read_records(p, shape="binary", on_bad_record="skip")
    assert report.kept + report.skipped == 22434
    assert report.skipped == 67  # answers that are empty ("A: \nTrue:")
    assert all("field 'prompt': empty text" in e for e in report.errors)
    assert records[0] == Binary("What is underneath the Denver Airport?",
                                "The Denver Airport is underneath the city of Denver.", False, source=f"{p}:1")
    assert sum(r.label for r in records) == 9418
    assert not any(r.prompt.startswith("Q: ") or r.completion.endswith("True:") for r in records)


def test_real_alpaca_eval_listwise():
    p = shared("alpaca_eval", "listwise_5models_vs_gpt4turbo_ref.jsonl.gz")
    records, report = read_records(p)
    assert report.kept == 803 and all(len(r.completions) == 5 for r in records)
    assert all(list(r.scores) == sorted(r.scores, reverse=True) for r in records)  # judge order
    assert records[0].scores == (0.00012, 1e-06, 1e-06, 0.0, 0.0)
    assert records[0].completions[3] == "Who are some of the actors that began their careers on Broadway?"
