"""End to end: a miniature `alignkit quickstart` through the CLI (tiny base model, a few pairs), then
`alignkit world base` reusing its cache and `alignkit eval` on the models it kept."""
import json

import pytest

from alignkit.cli import main


@pytest.mark.slow
def test_mini_quickstart_then_eval_through_the_cli(tmp_path, capsys):
    cache, out = tmp_path / "cache", tmp_path / "qs"
    assert main(["quickstart", "--mini", "--cache-dir", str(cache), "--output", str(out), "--seed", "1",
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "[5/5]" in printed and "win rate of DPO (after) vs SFT (before)" in printed
    res = json.loads((out / "results.json").read_text())
    for side in ("before", "after"):
        assert {"mean_reward", "harmlessness", "over_refusal", "accuracy", "kl_to_ref", "length_tokens"} <= set(res[side])
    assert res["before"]["kl_to_ref"] == pytest.approx(0.0, abs=1e-6)  # the SFT model is the reference
    wr = res["win_rate"]
    assert wr["wins"] + wr["losses"] + wr["ties"] == res["config"]["eval_prompts"]
    assert (out / "aligned" / "config.json").is_file() and (out / "pairs.jsonl").is_file()

    assert main(["world", "base", "--mini", "--cache-dir", str(cache)]) == 0  # cached: no rebuild
    assert "reusing" in capsys.readouterr().out

    base = res["base_model"]
    assert main(["eval", "--model", str(out / "aligned"), "--baseline", base, "--n-prompts", "8",
                 "--max-new-tokens", "8", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["n_prompts"] == 8 and 0.0 <= ev["win_rate"]["win_rate"] <= 1.0
    assert main(["eval", "policy", "--model", base, "--n-prompts", "4", "--max-new-tokens", "8"]) == 0
    assert "mean true reward" in capsys.readouterr().out
