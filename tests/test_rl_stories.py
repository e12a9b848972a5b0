"""Done-when check on a real pretrained model: ../shared/models/stories260K (TinyStories, 260K
parameters, vocab 512). The reward is rule:positive, a positive-sentiment lexicon count on the
generated story (the DPO paper's controlled-sentiment setting in miniature). PPO and RLOO must raise
the held-out reward while the KL to the reference stays bounded. Each run: 30 iterations of
8 prompts x 4 samples x 48 tokens (about 20 s of one CPU core)."""
import json

import pytest

from alignkit.rl import methods as R
from alignkit.rl.trainer import train_rl
from alignkit.train.config import TrainConfig

from conftest import shared_path

PROMPTS = ["Once upon a time", "One day", "Once upon a time, there was a little girl", "Tom and his friend",
           "Lily was", "There was a big dog", "One sunny day", "Sam had a", "Once upon a time, in a small town",
           "The cat", "Mia and her mom", "A little bird", "Once there was a boy", "Ben wanted to", "The sun was",
           "Sue found a"]

RUNS = {  # method -> (method, config, learning rate)
    "ppo": (R.PPO, R.PPOConfig(reward="rule:positive", samples_per_prompt=4, ppo_epochs=1, kl_coef=0.2), 5e-4),
    "rloo": (R.RLOO, R.RLOOConfig(reward="rule:positive", samples_per_prompt=4, kl_coef=0.5), 3e-4),
}


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(RUNS))
def test_story_model_gets_more_positive_with_bounded_kl(name, tmp_path):
    model = shared_path("models", "stories260K")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    method, mcfg, lr = RUNS[name]
    mcfg = type(mcfg)(**{**mcfg.__dict__, "prompts_per_step": 8, "max_new_tokens": 48, "eval_samples": 16})
    cfg = TrainConfig(max_steps=30, learning_rate=lr, lr_scheduler="constant", batch_size=32, eval_fraction=0.25,
                      progress=False, seed=0)
    s = train_rl(method, cfg, mcfg, str(model), str(prompts), str(tmp_path / name), log=lambda *a: None)
    start, end = s["eval_start"], s["eval_end"]
    rows = [json.loads(line) for line in open(tmp_path / name / "metrics.jsonl")]
    train = [r for r in rows if r["split"] == "train"]
    print(f"{name}: held-out reward {start['reward']:.3f} -> {end['reward']:.3f}, KL {end['kl']:.2f}, "
          f"training reward first 5 {sum(r['reward'] for r in train[:5]) / 5:.3f} -> "
          f"last 5 {sum(r['reward'] for r in train[-5:]) / 5:.3f}, max KL {max(r['kl'] for r in train):.2f}")
    # the reward rises: on held-out prompts, and over training
    assert end["reward"] > 1.5 * start["reward"] and end["reward"] > start["reward"] + 0.4
    assert sum(r["reward"] for r in train[-5:]) > sum(r["reward"] for r in train[:5]) + 0.4 * 5
    # the KL stays bounded (nats per 48-token story) and the model still writes (entropy not collapsed)
    assert 0.5 < end["kl"] < 12 and max(r["kl"] for r in train) < 15
    assert end["entropy"] > 0.8
    assert (tmp_path / name / "reward_vs_kl.png").is_file()
