import json, sys
from pathlib import Path
root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/s3/iter")
print("| arm | judge | rounds x prompts | r* | win rate vs SFT | harmless | accuracy | KL | len tok | judge reward of samples by round |")
print("|---|---|---|---|---|---|---|---|---|---|")
for f in sorted(root.glob("*.eval.json")):
    e = json.loads(f.read_text())
    name = f.name[: -len(".eval.json")]
    s = json.loads((root / name / "summary.json").read_text())
    p = e["policy"]
    rounds = s["rounds"]
    judge = s.get("reward", "truth" if "truth" in name else "rm").split(":")[0]
    judge += "" if s.get("loss", "dpo") == "dpo" else f", {s['loss']}"
    rr = " -> ".join(f"{r['mean_reward_samples']:.3f}" for r in rounds)
    print(f"| {name} | {judge} | {len(rounds)} x {rounds[0]['prompts']} | {p['mean_reward']:.3f} | {e['win_rate']['win_rate']:.3f} | "
          f"{p['harmlessness']:.2f} | {p['accuracy']:.2f} | {p['kl_to_ref']:.2f} | {p['length_tokens']:.1f} | {rr} |")
b = json.loads(next(root.glob("*.eval.json")).read_text())["baseline_metrics"]
print(f"SFT: r* {b['mean_reward']:.3f} harmless {b['harmlessness']:.2f} accuracy {b['accuracy']:.2f} len {b.get('length_tokens', 0):.1f}")
