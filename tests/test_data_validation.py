"""Every bad-record error names the file, the 1-based line (or row) and the field; skip mode counts."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from alignkit.data.readers import read_records
from alignkit.errors import DataError

GOOD = {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"}


def jsonl(path: Path, lines) -> Path:
    """Lines given as dicts (dumped) or as raw str/bytes (written as they are)."""
    out = b""
    for line in lines:
        if isinstance(line, dict):
            line = json.dumps(line)
        out += (line.encode() if isinstance(line, str) else line) + b"\n"
    path.write_bytes(out)
    return path


def error_for(path: Path, **kw) -> DataError:
    with pytest.raises(DataError) as info:
        read_records(path, **kw)
    return info.value


def assert_names(err: DataError, path: Path, line, field, fragment: str):
    """The one-line message holds the file, the line, the field and the problem."""
    text = str(err)
    assert "\n" not in text
    assert (err.path, err.line, err.field) == (str(path), line, field)
    assert text.startswith(f"{path}:{line}:" if line is not None else f"{path}:")
    if field is not None:
        assert f"field {field!r}" in text
    assert fragment in text, text


@pytest.mark.parametrize("row, field, fragment", [
    # missing fields
    ({"messages": [{"role": "user"}, {"role": "assistant", "content": "A"}]}, "messages[0].content", "missing field"),
    (dict(GOOD, score_chosen=2.0), "score_rejected", "missing field (score_chosen is given)"),
    ({"prompt": "Q", "responses": [{"text": "a"}, {"model": "m"}]}, "responses[1].text", "missing field"),
    # wrongly typed fields
    (dict(GOOD, chosen=4), "chosen", "expected a string, got a number"),
    (dict(GOOD, prompt={"text": "Q"}), "prompt", "expected a string, got an object"),
    ({"prompt": "Q", "completion": "A", "label": "maybe"}, "label", "expected a label"),
    ({"prompt": "Q", "completion": "A", "score": "high"}, "score", "expected a number, got a string"),
    ({"prompt": "Q", "completion": "A", "score": True}, "score", "expected a number, got a boolean"),
    ({"prompt": "Q", "completion": "A", "score": float("nan")}, "score", "expected a finite number"),
    (dict(GOOD, margin="big"), "margin", "expected a number"),
    (dict(GOOD, weight=2.0), "weight", "expected a probability in [0, 1]"),
    (dict(GOOD, score_chosen=1.0, score_rejected=3.0), "score_rejected", "higher than score_chosen"),
    ({"prompt": "Q", "completions": "a b", "scores": [1, 2]}, "completions", "expected a list, got a string"),
    ({"prompt": "Q", "completions": ["a", "b"], "scores": [1, "x"]}, "scores[1]", "expected a number"),
    ({"prompt": [{"role": "user", "content": "Q"}], "chosen": [{"role": "user", "content": "A"}],
      "rejected": "B"}, "chosen", "expected one assistant message, got roles ['user']"),
    ({"messages": [{"role": "assistant", "content": "A"}, {"role": "user", "content": "Q"}]},
     "messages", "the last message must be the assistant's, got role 'user'"),
    # empty text
    (dict(GOOD, prompt=""), "prompt", "empty text"),
    (dict(GOOD, chosen="  \n"), "chosen", "empty text"),
    (dict(GOOD, rejected=""), "rejected", "empty text"),
    ({"prompt": "Q", "completion": ""}, "completion", "empty text"),
    ({"messages": [{"role": "assistant", "content": "A"}]}, "messages", "empty text"),  # no prompt
    ({"text": " "}, "text", "empty text"),
    ({"prompt": "Q", "completions": ["a", ""], "scores": [1, 0]}, "completions[1]", "empty text"),
    ({"chosen": "\n\nHuman: Hi\n\nAssistant: ", "rejected": "\n\nHuman: Hi\n\nAssistant: Hello"},
     "chosen", "empty text"),
    ({"chosen": "Blue.", "rejected": "Green."}, "chosen", "share no prompt"),
    ({"chosen": "\n\nHuman: Hi\n\nAssistant: A", "rejected": "\n\nHuman: Yo\n\nAssistant: B"},
     "chosen", "share no '\\n\\nAssistant:' turn"),
    # identical sides, listwise counts
    (dict(GOOD, rejected="4"), "rejected", "chosen and rejected are identical"),
    ({"prompt": "Q", "completions": ["a"], "scores": [1]}, "completions", "needs >= 2 completions, got 1"),
    ({"prompt": "Q", "completions": ["a", "b", "c"], "scores": [1, 0]}, "scores", "2 scores for 3 completions"),
    ({"prompt": "Q", "responses": ["a", "b"], "ranking": [1]}, "ranking", "1 scores for 2 completions"),
])
def test_bad_row_names_file_line_and_field(tmp_path, row, field, fragment):
    p = jsonl(tmp_path / "data.jsonl", ["", json.dumps(row)])  # line 1 blank: the bad row is on line 2
    assert_names(error_for(p), p, 2, field, fragment)


def test_text_longer_than_max_chars(tmp_path):
    p = jsonl(tmp_path / "long.jsonl", [GOOD, dict(GOOD, chosen="x" * 13)])  # the prompt has 12
    assert_names(error_for(p, max_chars=12), p, 2, "chosen", "13 characters is longer than max_chars=12")
    assert len(read_records(p, max_chars=13)[0]) == 2
    p = jsonl(tmp_path / "hh.jsonl", [{"chosen": "\n\nHuman: " + "q" * 20 + "\n\nAssistant: a",
                                       "rejected": "\n\nHuman: " + "q" * 20 + "\n\nAssistant: b"}])
    assert_names(error_for(p, max_chars=20), p, 1, "chosen", "longer than max_chars=20")  # HH prompt


def test_malformed_json_line_includes_the_json_error(tmp_path):
    p = jsonl(tmp_path / "bad.jsonl", [GOOD, '{"prompt": "Q", "chosen": ', GOOD])
    assert_names(error_for(p), p, 2, None, "malformed JSON: Expecting value at column 27")


def test_not_an_object(tmp_path):
    p = jsonl(tmp_path / "list.jsonl", [GOOD, '["Q", "A"]'])
    assert_names(error_for(p), p, 2, None, "not a JSON object: got a list")
    p = tmp_path / "list.json"
    p.write_text('[\n' + json.dumps(GOOD) + ',\n  "just text"\n]', encoding="utf-8")
    assert_names(error_for(p), p, 3, None, "not a JSON object: got a string")


def test_malformed_json_document_names_its_line(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('[\n' + json.dumps(GOOD) + '\n' + json.dumps(GOOD) + '\n]', encoding="utf-8")  # no comma
    assert_names(error_for(p), p, 3, None, "malformed JSON: Expecting ',' delimiter")
    p.write_text('{"rows": []}', encoding="utf-8")
    assert_names(error_for(p), p, None, None, "expected a list of objects or {\"data\": [...]}, got an object with keys ['rows']")


def test_invalid_utf8_names_the_line(tmp_path):
    p = jsonl(tmp_path / "bytes.jsonl", [GOOD, b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}', GOOD])
    assert_names(error_for(p), p, 2, None, "invalid UTF-8 at byte 16 of the line")
    records, report = read_records(p, on_bad_record="skip")
    assert (report.kept, report.skipped) == (2, 1)


def test_invalid_utf8_in_csv_and_json_names_the_field(tmp_path):
    p = tmp_path / "bytes.csv"
    p.write_bytes(b"prompt,chosen,rejected\nQ,A,B\nQ,caf\xe9,B\n")
    assert_names(error_for(p), p, 3, "chosen", "invalid UTF-8")
    p = tmp_path / "bytes.json"
    p.write_bytes(b'[{"messages": [{"role": "user", "content": "caf\xe9"}, {"role": "assistant", "content": "A"}]}]')
    assert_names(error_for(p), p, 1, "messages[0].content", "invalid UTF-8")


def test_csv_and_parquet_errors_name_the_row(tmp_path):
    p = tmp_path / "rows.csv"
    p.write_text("prompt,chosen,rejected\nQ,A,B\nQ,A,A\nQ,A\n", encoding="utf-8")
    assert_names(error_for(p), p, 3, "rejected", "chosen and rejected are identical")
    records, report = read_records(p, on_bad_record="skip")
    assert report.errors[1] == f"{p}:4: 2 cells but the header has 3 columns"
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa
    p = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist([GOOD, GOOD, dict(GOOD, chosen="")]), p)
    assert_names(error_for(p), p, 3, "chosen", "empty text")


def test_unknown_format_names_the_keys_and_the_formats_expected(tmp_path):
    p = jsonl(tmp_path / "odd.jsonl", [{"question": "Q", "answer": "A"}])
    err = error_for(p)
    assert_names(err, p, 1, None, "unknown format: found keys ['answer', 'question']")
    for expected in ("prompt/chosen/rejected", "prompt/completion/label", "prompt/completions/scores",
                     "prompt/completion/score", "prompt/completion; messages; text"):
        assert expected in str(err)


def test_missing_file_folder_and_unknown_kind(tmp_path):
    assert_names(error_for(tmp_path / "nope.jsonl"), tmp_path / "nope.jsonl", None, None, "no such file")
    (tmp_path / "folder").mkdir()
    assert_names(error_for(tmp_path / "folder"), tmp_path / "folder", None, None, "not one saved by datasets")
    p = tmp_path / "notes.txt"
    p.write_text("hello", encoding="utf-8")
    assert_names(error_for(p), p, None, None, "unknown file type 'notes.txt'")


@pytest.mark.parametrize("name, content", [("empty.jsonl", ""), ("blank.jsonl", "\n  \n"), ("empty.json", "[]"),
                                           ("data.json", '{"data": []}'), ("header.csv", "prompt,chosen,rejected\n"),
                                           ("empty.csv", "")])
def test_a_file_without_records(tmp_path, name, content):
    p = tmp_path / name
    p.write_text(content, encoding="utf-8")
    assert_names(error_for(p), p, None, None, "the file has no records")


def test_skip_mode_counts_and_prints_nothing(tmp_path, capsys):
    p = jsonl(tmp_path / "mixed.jsonl", [GOOD, "{oops", dict(GOOD, chosen=""), GOOD, dict(GOOD, rejected="4")])
    records, report = read_records(p, on_bad_record="skip")
    assert capsys.readouterr() == ("", "")
    assert [r.source for r in records] == [f"{p}:1", f"{p}:4"]
    assert (report.kept, report.skipped) == (2, 3)
    assert [re.match(rf"{re.escape(str(p))}:(\d+):", e).group(1) for e in report.errors] == ["2", "3", "5"]
    assert "field 'chosen': empty text" in report.errors[1]
    assert report.summary() == f"{p}: 2 records, 3 bad records skipped"


def test_skip_mode_with_no_good_record_is_an_error(tmp_path):
    p = jsonl(tmp_path / "bad.jsonl", [dict(GOOD, chosen=""), "{oops"])
    assert_names(error_for(p, on_bad_record="skip"), p, None, None,
                 "no good records: all 2 are bad; the first, at line 1: field 'chosen': empty text")
