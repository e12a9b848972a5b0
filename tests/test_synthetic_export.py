"""`alignkit world export`: TRL-shaped JSONL files that read back to the labelled records."""
import json

from alignkit.cli import main
from alignkit.data.readers import read_records
from alignkit.synthetic.prompts import universe


def test_export_writes_every_feedback_shape_in_trl_fields(tmp_path):
    out = tmp_path / "export"
    rc = main(["world", "export", "--output", str(out), "--n-prompts", "20", "--samples-per-prompt", "3",
               "--position-bias", "0.2", "--seed", "1"])
    assert rc == 0
    first = {f.name: json.loads((out / f.name).read_text().splitlines()[0]) for f in out.glob("*.jsonl")}
    assert set(first) == {"prompts_train.jsonl", "prompts_heldout.jsonl", "sft.jsonl", "pairwise.jsonl",
                          "binary.jsonl", "listwise.jsonl", "scored.jsonl"}
    assert set(first["pairwise.jsonl"]) == {"prompt", "chosen", "rejected"}
    assert set(first["binary.jsonl"]) == {"prompt", "completion", "label"}
    assert set(first["sft.jsonl"]) == {"prompt", "completion"}
    assert set(first["listwise.jsonl"]) == {"prompt", "completions", "scores"}
    assert set(first["scored.jsonl"]) == {"prompt", "completion", "score"}
    assert first["pairwise.jsonl"]["prompt"][0]["role"] == "user"  # conversational format
    n_held = sum(len(v) for v in universe("heldout").values())
    assert len((out / "prompts_heldout.jsonl").read_text().splitlines()) == n_held
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["binary"] == 60 and manifest["counts"]["listwise"] == 20
    assert manifest["labeler"]["position_bias"] == 0.2
    binary, _ = read_records(str(out / "binary.jsonl"))
    assert len(binary) == 60 and all(isinstance(r.label, bool) for r in binary)
    pairs, _ = read_records(str(out / "pairwise.jsonl"))
    assert 0 < len(pairs) <= 20 and all(p.chosen != p.rejected for p in pairs)
