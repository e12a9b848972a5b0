"""`evaluate_policy`: sample a policy (and a baseline) on held-out prompts of the bundled task and score
the samples with the ground truth r* (metrics.py holds the formulas).

One response per prompt per model, sampled at the same temperature used for the KL estimate
(methods.md 9.5: KL must be measured on samples from the policy, at the sampling temperature; with
temperature 1 and top_p 1 the samples are exact draws from pi, so the k1 estimate is unbiased).
Policy and baseline use the same sampling seed, so a model compared with itself ties everywhere.

The forgetting measure (issue 18; the "alignment tax" of Pentyala et al. 2024, arXiv 2406.17923, sec.
1): next to what alignment taught (r*, win rate, harmlessness), what SFT taught: the answer accuracy on
arithmetic prompts (from the samples) and `demo_nll`, the per-token negative log-likelihood of the
task's demonstrations (the SFT corpus's behaviour mix, corpus.SFT_RATES) on held-out prompts, which no
run trained on. A model that keeps what SFT taught keeps its accuracy and its demonstration NLL.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import ConfigError
from ..models.generate import HFGenerator, SamplingConfig
from ..synthetic.prompts import as_chat, sample_prompts
from . import metrics

EVAL_SAMPLING = SamplingConfig(max_new_tokens=48, temperature=1.0, top_p=1.0, batch_size=64)


def load_policy(path: str):
    from ..models.loading import load_causal_lm, load_tokenizer
    model = load_causal_lm(str(path), "fp32")
    model.eval()
    return model, load_tokenizer(str(path))


def sample(model, tok, prompts: list, sampling: SamplingConfig, seed: int) -> tuple:
    """-> (prompt ids, completion ids with EOS kept, completion texts)."""
    from ..data.tokenize import Encoder
    enc = Encoder.untruncated(tok)
    p_ids = [enc.prompt_ids(p) for p in prompts]
    c_ids = HFGenerator(model, tok).generate(p_ids, sampling, seed=seed)
    texts = [tok.decode(c, skip_special_tokens=True).strip() for c in c_ids]
    return p_ids, c_ids, texts


@torch.no_grad()
def logprob_sums(model, prompt_ids: list, completion_ids: list, pad_id: int, batch_size: int = 64) -> list:
    """sum_t log pi(y_t | x, y_<t) for each (prompt, completion); an empty completion scores 0."""
    from ..train.forward import collate, sequence_logps
    out = [0.0] * len(prompt_ids)
    idx = [i for i, c in enumerate(completion_ids) if c]
    device = next(model.parameters()).device
    for s in range(0, len(idx), batch_size):
        chunk = idx[s: s + batch_size]
        batch = collate([(prompt_ids[i], completion_ids[i]) for i in chunk], pad_id).to(device)
        lp, _ = sequence_logps(model, batch)
        for i, v in zip(chunk, lp.sum().tolist()):
            out[i] = v
    return out


def heldout_demonstrations(n: int, seed: int = 0) -> list:
    """n (chat prompt, response) demonstrations of the task on held-out prompts (balanced over the four
    families), drawn from the SFT corpus's behaviour mix: the distribution SFT imitated, on prompts
    that no run trains on."""
    import random
    from .corpus import SFT_RATES, respond
    rng = random.Random(f"heldout-demos|{seed}")
    return [(as_chat(p.text), respond(p, rng, SFT_RATES)[0]) for p in sample_prompts(n, "heldout", seed=seed + 17)]


def demo_nll(model, tok, demos: list) -> float:
    """Mean per-token negative log-likelihood -sum log pi(y|x) / sum |y| of demonstrations (EOS counted)."""
    from ..data.tokenize import Encoder
    enc = Encoder.untruncated(tok)
    p_ids = [enc.prompt_ids(p) for p, _ in demos]
    c_ids = [enc.completion_ids(c) for _, c in demos]
    sums = logprob_sums(model, p_ids, c_ids, tok.pad_token_id)
    return -sum(sums) / max(1, sum(len(c) for c in c_ids))


# --- is this a model of the bundled task? -------------------------------------------------------------
FITTING_COMMANDS = ("`alignkit eval preferences --model DIR --data PAIRS.jsonl` (implicit-reward accuracy on labelled "
                    "pairs), `alignkit generate --model DIR --prompts FILE --output OUT.jsonl --judge SPEC` (completions "
                    "of your prompts scored by any judge) or `alignkit leaderboard --models NAME=DIR --tasks "
                    "xstest,truthfulqa,alpaca_eval,preferences`")


def _vocab(folder: Path) -> dict | None:
    """The token -> id map of a model folder's tokenizer (tokenizer.json's, read as JSON: no load), else None."""
    try:
        model = json.loads((Path(folder) / "tokenizer.json").read_text(encoding="utf-8")).get("model", {})
    except (OSError, ValueError, AttributeError):
        return None
    vocab = model.get("vocab") if isinstance(model, dict) else None
    return vocab if isinstance(vocab, dict) and vocab else None


def _lineage(folder: Path, hops: int = 16):
    """The folder, then the model each run started from (its config.yaml's `model`), and so on."""
    seen = set()
    while folder is not None and hops > 0 and folder.resolve() not in seen:
        seen.add(folder.resolve())
        yield folder
        hops -= 1
        try:
            import yaml
            start = (yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")) or {}).get("model")
        except (OSError, ValueError, AttributeError, ImportError, yaml.YAMLError):
            start = None
        if not isinstance(start, str) or not start:
            return
        nxt = Path(start)
        candidates = [nxt] if nxt.is_absolute() else [nxt, folder / nxt, folder.parent / nxt]
        folder = next((c for c in candidates if (c / "config.json").is_file()), None)


def task_model_problem(model_dir: str) -> str | None:
    """None when `model_dir` is a model of the bundled task, else why not (one line, with the commands
    that fit). A model is the task's when it or a model it was trained from (config.yaml's `model`,
    followed back) is a world base model (its manifest.json), or when its tokenizer's vocabulary is
    that of the shipped base model or of a world base built in the cache: the task's prompts and r*
    are written in that vocabulary, and a model that never learnt it scores all zeros."""
    from .base import MANIFEST, SHIPPED, cache_root
    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        return None  # not a model folder at all: loading reports that
    if any((f / MANIFEST).is_file() for f in _lineage(folder)):
        return None
    vocab = _vocab(folder)
    worlds = [SHIPPED] + sorted((cache_root() / "world").glob("*/sft"))
    if vocab is not None and any(_vocab(w) == vocab for w in worlds):
        return None
    why = "its tokenizer is not the task's" if vocab is not None else "it has no tokenizer.json of the task"
    return (f"{model_dir}: not a model of the bundled task ({why}, and it was not trained from the task's base "
            "model), so the task's table under r* would be meaningless (all zeros); `alignkit eval` scores the "
            f"bundled task only. For this model use {FITTING_COMMANDS}")


def check_task_models(*model_dirs) -> None:
    """ConfigError for the first of `model_dirs` (None and "" skipped) that is not the bundled task's."""
    for d in model_dirs:
        problem = task_model_problem(str(d)) if d else None
        if problem:
            raise ConfigError(problem)


def _same_vocab(tok_a, tok_b) -> bool:
    return len(tok_a) == len(tok_b) and tok_a.get_vocab() == tok_b.get_vocab()


def describe(model, tok, prompts: list, sampling: SamplingConfig, seed: int, ref=None, demos=None) -> tuple:
    """Sample one model and compute its metrics (and its KL to `ref` = (model, tok) when given, and its
    per-token NLL of `demos` when given)."""
    p_ids, c_ids, texts = sample(model, tok, prompts, sampling, seed)
    m = metrics.policy_metrics(prompts, texts)
    if demos:
        m["demo_nll"] = demo_nll(model, tok, demos)
    m["length_tokens"] = sum(len(c) for c in c_ids) / max(1, len(c_ids))
    if ref is not None:
        ref_model, ref_tok = ref
        if not _same_vocab(tok, ref_tok):
            raise ConfigError("the reference model's tokenizer differs from the policy's; KL(policy || ref) "
                              "needs the same vocabulary")
        if sampling.temperature != 1.0 or sampling.top_p != 1.0:
            m["kl_note"] = "samples were not drawn at temperature 1 / top_p 1: the KL is of the tempered policy"
        pol = logprob_sums(model, p_ids, c_ids, tok.pad_token_id)
        rf = logprob_sums(ref_model, p_ids, c_ids, tok.pad_token_id)
        m["kl_to_ref"] = metrics.kl_k1(pol, rf)
    return m, texts


def evaluate_policy(model: str, baseline: str | None = None, ref: str | None = None, n_prompts: int = 200,
                    seed: int = 0, split: str = "heldout", sampling: SamplingConfig = EVAL_SAMPLING,
                    keep_samples: int = 0, nll_demos: int = 200, require_task_model: bool = False, log=print) -> dict:
    """Metrics of `model` (and of `baseline`, plus the win rate of model over baseline) on `n_prompts`
    prompts of `split`, balanced over the four families. The KL reference is `ref`, else the baseline.
    `nll_demos` held-out demonstrations give each model's demo_nll (0 = skip it). require_task_model:
    refuse (ConfigError, one line) a model that is not the task's (`task_model_problem`)."""
    if n_prompts < 1:
        raise ConfigError(f"--n-prompts must be at least 1, got {n_prompts}")
    if nll_demos < 0:
        raise ConfigError(f"nll_demos must be >= 0, got {nll_demos}")
    if require_task_model:
        check_task_models(model, baseline, ref)
    demos = heldout_demonstrations(nll_demos, seed) if nll_demos else None
    infos = sample_prompts(n_prompts, split, seed=seed)
    prompts = [as_chat(p.text) for p in infos]
    ref_path = ref or baseline
    loaded = {}

    def get(path):
        key = str(Path(path).resolve())
        if key not in loaded:
            loaded[key] = load_policy(path)
        return loaded[key]

    ref_pair = get(ref_path) if ref_path else None
    res = {"n_prompts": len(prompts), "split": split, "seed": seed, "temperature": sampling.temperature,
           "max_new_tokens": sampling.max_new_tokens, "model": str(model), "baseline": baseline, "ref": ref_path,
           "nll_demos": nll_demos}
    log(f"sampling {len(prompts)} {split} prompts from {model}")
    pm, ptexts = describe(*get(model), prompts, sampling, seed, ref_pair, demos)
    res["policy"] = pm
    if baseline:
        log(f"sampling {len(prompts)} {split} prompts from {baseline}")
        bm, btexts = describe(*get(baseline), prompts, sampling, seed, ref_pair, demos)
        res["baseline_metrics"] = bm
        r_p = [metrics.true_reward_breakdown(p.text, t)["total"] for p, t in zip(infos, ptexts)]
        r_b = [metrics.true_reward_breakdown(p.text, t)["total"] for p, t in zip(infos, btexts)]
        res["win_rate"] = metrics.win_rate(r_p, r_b)
    if keep_samples:
        res["samples"] = [{"prompt": p.text, "family": p.family, "policy": t,
                           **({"baseline": btexts[i]} if baseline else {})}
                          for i, (p, t) in enumerate(zip(infos[:keep_samples], ptexts))]
    return res


# what alignment taught (r* and its parts), then what SFT taught (accuracy, held-out demonstration NLL)
ROWS = (("mean true reward", "mean_reward"), ("harmlessness (harmful refused)", "harmlessness"),
        ("over-refusal (benign refused)", "over_refusal"), ("on topic (open)", "on_topic"), ("rude", "rude"),
        ("answer accuracy", "accuracy"), ("demo NLL (held-out, per token)", "demo_nll"),
        ("KL to reference", "kl_to_ref"), ("length (tokens)", "length_tokens"))


def format_table(columns: list, win_rate: dict | None = None) -> str:
    """columns: [(header, metrics dict)] -> an aligned text table (+ the win-rate line)."""
    w0 = max(len(r[0]) for r in ROWS) + 2
    lines = ["metric".ljust(w0) + "".join(h.rjust(14) for h, _ in columns)]
    lines.append("-" * len(lines[0]))
    for label, key in ROWS:
        vals = [m.get(key) for _, m in columns]
        if all(v is None for v in vals):
            continue
        lines.append(label.ljust(w0) + "".join(("-" if v is None else f"{v:.3f}").rjust(14) for v in vals))
    if win_rate:
        lines.append(f"win rate of {columns[-1][0]} vs {columns[0][0]} under r*: {win_rate['win_rate']:.3f} "
                     f"(W={win_rate['wins']} L={win_rate['losses']} T={win_rate['ties']})")
    return "\n".join(lines)
