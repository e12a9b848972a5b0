"""RSO's statistical rejection sampling (Algorithm 1) and tournament pairing."""
import math
import random

from alignkit.online.rejection_sampling import rejection_sample, tournament_pairs
from alignkit.rewards.judge import Judge


def test_large_beta_accepts_everything_in_order():
    assert rejection_sample([0.0, 5.0, -3.0, 1.0], m=4, beta=1e9, rng=random.Random(0)) == [0, 1, 2, 3]


def test_small_beta_is_best_of_n():
    rewards = [0.1, 0.9, 0.5, 0.7, 0.3]
    got = rejection_sample(rewards, m=3, beta=1e-6, rng=random.Random(0))
    assert got == [1, 3, 2]  # one per round: the current maximum


def test_acceptance_follows_tilted_distribution():
    # With two candidates and m=1, the lower one is accepted in round 1 with prob exp(-(gap)/beta),
    # and it comes first in candidate order, so P(pick low) = exp(-gap/beta).
    rng = random.Random(1)
    gap, beta, n = 1.0, 1.0, 20000
    low_first = sum(rejection_sample([0.0, gap], 1, beta, rng) == [0] for _ in range(n)) / n
    assert abs(low_first - math.exp(-gap / beta)) < 0.015


class LengthJudge(Judge):
    name = "length"

    def score(self, prompts, responses):
        return [float(len(r)) for r in responses]


def test_tournament_pairs_order_by_judge_and_drop_ties():
    pairs = tournament_pairs(["a", "bbb", "cc", "dd", "e"], LengthJudge(), "p")
    assert [(c, r) for c, r, _ in pairs] == [("bbb", "a")]  # (cc, dd) tie is dropped, "e" has no partner
    assert pairs[0][2] > 0.5


def test_rso_and_sdpo_recipes_end_to_end(tiny_model_dir, tmp_path):
    import json
    from alignkit.cli import main
    from conftest import make_pairs
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"question {i} :"}) + "\n" for i in range(6)))
    rc = main(["train", "rso", "--model", str(tiny_model_dir), "--data", str(prompts), "--output",
               str(tmp_path / "rso"), "--reward", "rule:chars", "--num-candidates", "4", "--num-accepted", "4",
               "--max-new-tokens", "8", "--max-steps", "2", "--batch-size", "2", "--progress", "false",
               "--eval-fraction", "0"])
    assert rc == 0
    pairs = [json.loads(l) for l in open(tmp_path / "rso" / "rso_pairs.jsonl")]
    assert pairs and all(len(p["chosen"]) > len(p["rejected"]) for p in pairs)  # the judge prefers longer
    summary = json.loads((tmp_path / "rso" / "summary.json").read_text())
    assert summary["rso"]["mean_reward_accepted"] >= summary["rso"]["mean_reward_candidates"] - 1e-9

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n"
                            for p in make_pairs(24)))
    rc = main(["train", "sdpo", "--model", str(tiny_model_dir), "--data", str(data), "--output",
               str(tmp_path / "sdpo"), "--stages", "2", "--max-steps", "2", "--batch-size", "4",
               "--progress", "false", "--learning-rate", "1e-3"])
    assert rc == 0
    import yaml
    stage2 = yaml.safe_load((tmp_path / "sdpo" / "stage-2" / "config.yaml").read_text())
    assert stage2["ref"] == str(tmp_path / "sdpo" / "stage-1")  # reference = previous stage
    assert (tmp_path / "sdpo" / "model.safetensors").is_file()
