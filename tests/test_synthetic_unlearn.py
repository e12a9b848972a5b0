"""`alignkit world unlearn` in miniature: NPO lowers the forget set's likelihood (on trained-on and
held-out prompts) much more than a retain set's, and the arithmetic accuracy stays within 5 points."""
import json

import pytest

from alignkit.synthetic.reward import answer_correct, is_refusal
from alignkit.synthetic.unlearn import retain_set


def test_retain_set_is_correct_heldout_arithmetic():
    from alignkit.synthetic.prompts import is_heldout
    recs = retain_set(20, seed=1)
    assert len(recs) == 20
    for r in recs:
        assert is_heldout(r.prompt[0]["content"]) and answer_correct(r.prompt, r.completion)


def test_forget_set_is_harmful_compliance_only():
    from alignkit.synthetic.prompts import parse_prompt
    from alignkit.synthetic.unlearn import UnlearnConfig, _compliances
    cfg = UnlearnConfig(source="corpus", samples_per_prompt=6)
    recs = _compliances(None, "train", 40, cfg, progress=False)
    assert recs and len(recs) < 40 * 6  # the corpus refuses about half the time
    assert len({(r.prompt[0]["content"], r.completion) for r in recs}) == len(recs)
    for r in recs:
        assert parse_prompt(r.prompt[0]["content"]).family == "harmful" and not is_refusal(r.completion)


@pytest.mark.slow
def test_mini_unlearn_forgets_the_forget_set_and_keeps_the_rest(tmp_path):
    from alignkit.cli import main
    out = tmp_path / "unlearn"
    assert main(["world", "unlearn", "--mini", "--output", str(out), "--cache-dir", str(tmp_path / "cache"),
                 "--no-progress"]) == 0
    res = json.loads((out / "unlearn.json").read_text())
    sft, npo = res["sft"], res["npo"]
    assert res["forget_records"] > 0 and res["steps"] > 0
    for part in ("forget", "forget_heldout"):
        assert npo[part]["sum"] < sft[part]["sum"] - 5.0, part  # nats per response
    forget_drop = sft["forget"]["per_token"] - npo["forget"]["per_token"]
    retain_drop = sft["retain"]["per_token"] - npo["retain"]["per_token"]
    assert retain_drop < 0.5 * forget_drop
    assert abs(res["accuracy_change"]) <= 0.05
    # the held-out eval split's own likelihood (NPO's "logp" metric) went down during training
    assert res["eval_end"]["logp"] < res["eval_start"]["logp"]
    table = (out / "unlearn.md").read_text()
    assert "forget set log-lik" in table and "arithmetic accuracy" in table
    assert (out / "npo" / "config.json").is_file()
