"""read_records: feedback records from a file, checked, each with `source="file:line"`.

File kinds: JSONL (.jsonl, .ndjson), JSON (a list of objects, or {"data": [...]}), CSV, Parquet
(each may be gzipped: .jsonl.gz), a folder written by `datasets`' `save_to_disk`, a hub-style folder of
such files (data/hub.py: `data/train-00000-of-00002.parquet`, `FOLDER:SPLIT` picks a split) and a
dataset name in the local Hugging Face cache (`Anthropic/hh-rlhf`, `Anthropic/hh-rlhf:test`). Row formats
(TRL's standard and conversational ones, Anthropic HH, TruthfulQA, alpaca_eval) are in formats.py;
`columns` ({"prompt": "question", ...}, the --columns flag) renames other field names to them first.
read_data also takes a list of dicts, a list of records or a `datasets.Dataset`.

Line numbers are 1-based: the file line for JSONL and JSON (where the object starts), the line where
the row starts for CSV (header = line 1), and the row number for Parquet, `datasets` folders and
in-memory rows. A file (or all shards of a split) holds one feedback shape: with shape=None the first
good record fixes it.
"""
from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import zlib
from pathlib import Path
from typing import Iterator

from alignkit.data.formats import parse_columns, parse_row, rename_columns
from alignkit.data.hub import resolve_data, select_split
from alignkit.data.records import FEEDBACK_SHAPES, RECORD_TYPES, ReadReport, shape_of
from alignkit.data.validate import RecordError, TextRow, type_name
from alignkit.errors import ConfigError, DataError

FILE_KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
DATASET_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
_BAD_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape decoding leaves for invalid UTF-8
_WS = re.compile(r"[ \t\n\r]*")


def read_records(path, shape: str | None = None, on_bad_record: str = "error",
                 max_chars: int = 100_000, limit: int | None = None, columns=None) -> tuple[list, ReadReport]:
    """Read feedback records from `path` (a file, a folder, `NAME[:SPLIT]` of the hub cache).

    shape: None detects each row's format from its keys; "demonstration", "pairwise", "binary",
        "listwise" or "scored" forces it ("demonstration" on pairwise data takes the chosen side).
    on_bad_record: "error" raises DataError at the first bad record; "skip" leaves it out and
        counts it in the report (report.summary() says how many; nothing is printed here).
    max_chars: longest text allowed in any field. limit: stop after this many good records.
    columns: {TRL field: this data's field} or "prompt=question,chosen=good" (formats.parse_columns).
    Returns (records, ReadReport).
    """
    _check_options(shape, on_bad_record)
    return _read(str(path), data_sources(path), shape, on_bad_record, max_chars, limit, columns)


def data_sources(path) -> list:
    """[(file name, its (line, row) pairs)] of a file, a folder or `NAME[:SPLIT]` (data/hub.py): one
    entry, or one per shard of the split."""
    label = str(path)
    where, split = resolve_data(path)
    if where.is_dir() and not any((where / m).exists() for m in DATASET_MARKERS):
        return [(str(f), iter_rows(f)) for f in select_split(where, split, label)]
    if split:
        raise DataError(label, None, None, f"a split (:{split}) picks files of a folder; {where} is not one")
    return [(str(where), iter_rows(where))]


def read_data(data, shape: str | None = None, on_bad_record: str = "error", max_chars: int = 100_000,
              limit: int | None = None, columns=None) -> tuple[list, ReadReport]:
    """read_records for anything the Python API takes as data: a path or name (read_records), a list of
    records (kept as they are), a list of dicts or a `datasets.Dataset` (rows checked like a file's,
    errors naming `data:ROW`, 1-based)."""
    if isinstance(data, (str, Path)):
        return read_records(data, shape, on_bad_record, max_chars, limit, columns)
    _check_options(shape, on_bad_record)
    rows = _memory_rows(data)
    if rows is None:  # records already
        records = list(data)[:limit] if limit else list(data)
        report = ReadReport("data", kept=len(records))
        return records, report
    return _read("data", [("data", rows)], shape, on_bad_record, max_chars, limit, columns)


def read_for_shape(data, shape: str | None, on_bad_record: str = "error", max_chars: int = 100_000,
                   columns=None) -> tuple:
    """read_data for a method that eats `shape`; data of a shape it accepts instead
    (convert.ACCEPTED_CONVERSIONS: pairwise for binary) is read as that and converted.
    -> (records, ReadReport, a note saying what was converted, or None)."""
    from alignkit.data.convert import ACCEPTED_CONVERSIONS
    other = ACCEPTED_CONVERSIONS.get(shape)
    try:
        records, report = read_data(data, shape, on_bad_record, max_chars, columns=columns)
    except DataError as first:
        if other is None:
            raise
        try:
            records, report = read_data(data, other[0], on_bad_record, max_chars, columns=columns)
        except DataError:
            raise first from None
    if other is None or not records or shape_of(records[0]) != other[0]:
        return records, report, None
    converted = other[1](records)
    note = (f"{len(records)} {other[0]} records for a {shape}-feedback method: {other[2]}, "
            f"{len(converted)} examples")
    return converted, report, note


def _memory_rows(data):
    """(row number, dict) pairs of an in-memory dataset, or None for a list of records."""
    try:
        import datasets
        if isinstance(data, datasets.DatasetDict):
            if "train" not in data and len(data) != 1:
                raise DataError("data", None, None, f"a DatasetDict with splits {sorted(data)} and none is "
                                                    "'train'; pass one split")
            data = data["train"] if "train" in data else next(iter(data.values()))
        if isinstance(data, datasets.Dataset):
            return ((n, _drop_nulls(row)) for n, row in enumerate(data, 1))
    except ImportError:
        pass
    check_data_kind(data)
    types = tuple(RECORD_TYPES.values())
    if data and all(isinstance(r, types) for r in data):
        return None
    return ((n, row if isinstance(row, dict) else RecordError(None, f"not a dict or record: got {type_name(row)}"))
            for n, row in enumerate(data, 1))


def check_data_kind(data, allow_none: bool = False) -> None:
    """ConfigError unless `data` is something read_data takes (None too, with allow_none: an online
    method's default prompts)."""
    if (data is None and allow_none) or isinstance(data, (str, Path, list, tuple)):
        return
    if type(data).__module__.startswith("datasets") and type(data).__name__ in ("Dataset", "DatasetDict"):
        return
    raise ConfigError(f"data: expected a path, a list of dicts or records, or a datasets.Dataset; "
                      f"got {type(data).__name__}")


def _check_options(shape, on_bad_record) -> None:
    if shape is not None and shape not in FEEDBACK_SHAPES:
        raise ConfigError(f"shape must be one of {FEEDBACK_SHAPES} or None, got {shape!r}")
    if on_bad_record not in ("error", "skip"):
        raise ConfigError(f"on_bad_record must be 'error' or 'skip', got {on_bad_record!r}")


def _read(label: str, sources: list, shape, on_bad_record: str, max_chars: int, limit, columns) -> tuple:
    """The records of `sources` ([(name, (line, row) pairs)]), checked; one shape for all of them."""
    mapping = parse_columns(columns)
    report, records, rows = ReadReport(label), [], 0
    for name, pairs in sources:
        for line, row in pairs:
            rows += 1
            try:
                if isinstance(row, RecordError):
                    raise row
                if mapping:
                    row = rename_columns(row, mapping)
                if shape is None and records:  # one shape per file: the first record's
                    record = parse_row(row, shape_of(records[0]), max_chars, f"{name}:{line}", locked=True)
                else:
                    record = parse_row(row, shape, max_chars, f"{name}:{line}")
            except RecordError as e:
                error = DataError(name, line, e.field, e.message)
                if on_bad_record == "error":
                    raise error from None
                report.skipped += 1
                report.errors.append(str(error))
                continue
            records.append(record)
            report.kept += 1
            if limit is not None and report.kept >= limit:
                break
        if limit is not None and report.kept >= limit:
            break
    if rows == 0:
        raise DataError(label, None, None, "the file has no records")
    if not records:
        first = report.errors[0]
        first = first.removeprefix(sources[0][0] + ":") if len(sources) == 1 else first
        raise DataError(label, None, None, f"no good records: all {rows} are bad; the first, at line {first}")
    return records, report


def iter_rows(path: Path) -> Iterator[tuple[int, dict | RecordError]]:
    """(line, row) pairs; a row that cannot be read at all comes as a RecordError to report."""
    kind = file_kind(path)
    readers = {"jsonl": _jsonl_rows, "json": _json_rows, "csv": _csv_rows,
               "parquet": _parquet_rows, "datasets": _dataset_rows}
    rows = readers[kind](path)
    if kind in ("json", "csv"):
        return (_check_utf8(line, row) for line, row in rows)
    return rows


def file_kind(path: Path) -> str:
    if path.is_dir():
        if any((path / m).exists() for m in DATASET_MARKERS):
            return "datasets"
        raise DataError(str(path), None, None, "a folder, but not one saved by datasets' save_to_disk "
                                               "(no dataset_info.json or state.json): read_records reads "
                                               "it as a hub-style folder of shards")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] == [".gz"]:
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext not in FILE_KINDS or (ext == ".parquet" and path.suffix.lower() == ".gz"):
        raise DataError(str(path), None, None, f"unknown file type {path.name!r}: expected .jsonl, .jsonl.gz, "
                                               ".json, .csv, .parquet or a datasets save_to_disk folder")
    return FILE_KINDS[ext]


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


def _read_text(path: Path) -> str:
    """The whole file as text. Invalid UTF-8 bytes stay as surrogates, so each row can name its own."""
    try:
        with _open(path) as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(str(path), None, None, f"cannot read the file: {e}") from None
    return data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")


# ---- JSONL: one object per line, decoded line by line ---------------------------------------
def _jsonl_rows(path: Path):
    try:
        with _open(path) as f:
            for n, raw in enumerate(f, 1):
                if n == 1:
                    raw = raw.removeprefix(codecs.BOM_UTF8)
                if raw.strip():
                    yield n, _json_line(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(str(path), None, None, f"cannot read the file: {e}") from None


def _json_line(raw: bytes) -> dict | RecordError:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return RecordError(None, f"invalid UTF-8 at byte {e.start + 1} of the line ({e.reason})")
    try:
        row = json.loads(text.rstrip("\r\n"))
    except json.JSONDecodeError as e:
        return RecordError(None, f"malformed JSON: {e.msg} at column {e.colno}")
    if not isinstance(row, dict):
        return RecordError(None, f"not a JSON object: got {type_name(row)}")
    return row


# ---- JSON: a list of objects, or {"data": [...]} ---------------------------------------------
def _json_rows(path: Path):
    text = _read_text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(str(path), e.lineno, None, f"malformed JSON: {e.msg} at column {e.colno}") from None
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        start = _data_array_start(text)
    elif isinstance(doc, list):
        start = _WS.match(text).end()
    else:
        got = f"an object with keys {sorted(doc)}" if isinstance(doc, dict) else type_name(doc)
        raise DataError(str(path), None, None, f'expected a list of objects or {{"data": [...]}}, got {got}')
    for line, item in _array_items(text, start):
        yield line, item if isinstance(item, dict) else RecordError(None, f"not a JSON object: got {type_name(item)}")


def _data_array_start(text: str) -> int:
    """Where the list under the top-level "data" key starts (the document is known to be valid)."""
    dec, i = json.JSONDecoder(), _WS.match(text).end() + 1  # past "{"
    while True:
        i = _WS.match(text, i).end()
        key, i = dec.raw_decode(text, i)
        i = _WS.match(text, _WS.match(text, i).end() + 1).end()  # past ":"
        if key == "data":
            return i
        _, i = dec.raw_decode(text, i)
        i = _WS.match(text, i).end() + 1  # past ","


def _array_items(text: str, i: int):
    """(line where it starts, item) for each item of the JSON list starting at text[i] == "["."""
    dec, line, counted = json.JSONDecoder(), 1, 0
    i = _WS.match(text, i + 1).end()
    while text[i] != "]":
        line += text.count("\n", counted, i)
        counted = i
        item, i = dec.raw_decode(text, i)
        yield line, item
        i = _WS.match(text, i).end()
        if text[i] == ",":
            i = _WS.match(text, i + 1).end()


# ---- CSV: a header line, then one row per record ---------------------------------------------
def _csv_rows(path: Path):
    """Cells are text (TextRow): labels, scores and JSON lists are parsed by the format."""
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    old_limit = csv.field_size_limit(2**31 - 1)  # texts may be long; max_chars is the real limit
    try:
        header = next(reader, None)
        while header:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                raise DataError(str(path), reader.line_num, None, f"malformed CSV: {e}") from None
            if not cells:  # a blank line
                continue
            if len(cells) != len(header):
                yield start, RecordError(None, f"{len(cells)} cells but the header has {len(header)} columns")
            else:
                yield start, TextRow(zip(header, cells))
    finally:
        csv.field_size_limit(old_limit)


def _check_utf8(line: int, row):
    """Name the field holding invalid UTF-8 (left as surrogates by _read_text)."""
    if isinstance(row, dict):
        where = _bad_utf8_field(row, "")
        if where is not None:
            return line, RecordError(where or None, "invalid UTF-8")
    return line, row


def _bad_utf8_field(value, where: str) -> str | None:
    """The path ("chosen", "messages[1].content") of the first string with invalid UTF-8, or None."""
    if isinstance(value, str):
        return where if _BAD_BYTE.search(value) else None
    if isinstance(value, dict):
        children = ((f"{where}.{k}" if where else str(k), v) for k, v in value.items())
    elif isinstance(value, list):
        children = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for sub, item in children:
        found = where if _BAD_BYTE.search(sub) else _bad_utf8_field(item, sub)
        if found is not None:
            return found
    return None


# ---- columnar: Parquet and datasets folders --------------------------------------------------
def _parquet_rows(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=1024)
        n = 0
        for batch in batches:
            for row in batch.to_pylist():
                n += 1
                yield n, _drop_nulls(row)
    except (pa.ArrowException, OSError) as e:
        raise DataError(str(path), None, None, f"cannot read Parquet: {e}") from None


def _dataset_rows(path: Path):
    import datasets
    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:  # a broken folder fails in many ways; the user needs the one line
        raise DataError(str(path), None, None, f"cannot load the datasets folder: {e}") from None
    if isinstance(ds, datasets.DatasetDict):
        if "train" in ds:
            ds = ds["train"]
        elif len(ds) == 1:
            ds = next(iter(ds.values()))
        else:
            raise DataError(str(path), None, None, f"splits {sorted(ds)} and none is 'train'")
    for n, row in enumerate(ds, 1):
        yield n, _drop_nulls(row)


def _drop_nulls(row: dict) -> dict:
    """Columnar files give every row every column; a null cell means the row lacks that field."""
    return {k: v for k, v in row.items() if v is not None}
