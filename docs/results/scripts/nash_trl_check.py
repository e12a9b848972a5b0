"""alignkit's nash-md against TRL's NashMDTrainer (TRL 1.13.0, the last release that ships it; see nash.md).

Run with TRL 1.13.0 on the path, installed beside the project's TRL 1.16.0 without touching it:
    .venv/bin/pip install -q --no-deps --target runs/trl113 trl==1.13.0
    PYTHONPATH=runs/trl113 OMP_NUM_THREADS=1 .venv/bin/python docs/results/scripts/nash_trl_check.py \
        --model BASE_DIR --output runs/nash/trl_check [--steps 30]

A. one update, exactly: TRL's trainer samples y ~ pi and y' ~ its GeometricMixtureWrapper on 8 prompts and
   takes one training_step (its rewards patched to the bundled task's r*, so P = sigma(r*(y) - r*(y')), the
   `truth` judge's compare); alignkit's nash_md_loss then runs on exactly those token ids and the same P.
   The policy is the base model with small noise on its weights, so the KL term is not zero. Compared: the
   loss and the gradient of every parameter.
B. the mixture: TRL's GeometricMixtureWrapper next-token log-probs against alignkit's mixture_logprobs on
   the mixture completions of A.
C. a short run of each (same model, prompts, judge, steps, lr, batch): the mean preference, KL and r* of the
   policy's samples, step by step (sampling differs, so this is a statistical comparison).
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

import alignkit.plugins  # noqa: F401  (the bundled task's judges)
from alignkit.models.generate import mixture_logprobs
from alignkit.models.loading import load_causal_lm, load_tokenizer
from alignkit.rl.forward import token_forward
from alignkit.rl.nash_md import nash_md_loss, reference_logps
from alignkit.synthetic.prompts import as_chat, sample_prompts
from alignkit.synthetic.reward import TruthJudge
from alignkit.train.forward import collate


def trl_trainer(policy, ref, tok, prompts, out, steps, lr, batch, beta, coef, max_new, seed):
    import trl
    from datasets import Dataset
    from trl.experimental.nash_md import NashMDConfig, NashMDTrainer
    assert trl.__version__ == "1.13.0", trl.__version__
    args = NashMDConfig(output_dir=str(out), per_device_train_batch_size=batch, learning_rate=lr, max_steps=steps,
                        logging_steps=1, report_to="none", save_strategy="no", beta=[beta], mixture_coef=[coef],
                        max_new_tokens=max_new, temperature=1.0, top_k=0, lr_scheduler_type="constant",
                        use_cpu=True, seed=seed, disable_tqdm=True, max_grad_norm=1.0, weight_decay=0.0,
                        bf16=False)  # transformers 5 defaults to bf16 autocast on a bf16-capable CPU (the reference then runs in bf16)
    ds = Dataset.from_list([{"prompt": p} for p in prompts])
    return NashMDTrainer(model=policy, ref_model=ref, reward_funcs=copy.deepcopy(ref), args=args,
                         processing_class=tok, train_dataset=ds)


def patch_rewards(trainer_cls, judge, record):
    """TRL's rewards from the bundled task's r* on the decoded completions (TRL's P = sigma(s - s'))."""
    def compute_rewards(self, model_data, mixture_data, context_length):
        tok = self.processing_class
        prompts = model_data["raw"]
        ys = tok.batch_decode(model_data["input_ids"][:, context_length:], skip_special_tokens=True)
        ym = tok.batch_decode(mixture_data["input_ids"][:, context_length:], skip_special_tokens=True)
        s, sm = judge.score(prompts, ys), judge.score(prompts, ym)
        record.setdefault("true_reward", []).append(sum(s) / len(s))
        return torch.tensor(s), torch.tensor(sm)
    trainer_cls._compute_rewards = compute_rewards


def one_update(model_dir, out, coef, beta, seed):
    from trl.experimental.nash_md import NashMDTrainer, nash_md_trainer
    tok = load_tokenizer(model_dir)
    ref = load_causal_lm(model_dir, "fp32").eval()
    policy = copy.deepcopy(ref)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
    prompts = [as_chat(p.text) for p in sample_prompts(8, "train", seed=seed)]
    rec: dict = {}
    patch_rewards(NashMDTrainer, TruthJudge(), rec)
    orig_logprobs, orig_losses = NashMDTrainer._compute_logprobs, NashMDTrainer._compute_losses

    def capture_logprobs(self, model, model_data, context_length):
        rec["model_data"], rec["ctx"] = {k: v for k, v in model_data.items() if k != "raw"}, context_length
        return orig_logprobs(self, model, model_data, context_length)

    def capture_losses(self, lp, ref_lp, probability):
        rec["probability"] = probability.detach().clone()
        loss, score, kl = orig_losses(self, lp, ref_lp, probability)
        rec["trl_loss"] = loss.item()
        return loss, score, kl

    NashMDTrainer._compute_logprobs, NashMDTrainer._compute_losses = capture_logprobs, capture_losses
    mixes = []
    orig_gen = NashMDTrainer._generate_completions

    def capture_gen(self, model, prompts_):
        a, b = orig_gen(self, model, prompts_)
        mixes.append((prompts_["input_ids"].shape[1], b.clone()))
        return a, b

    NashMDTrainer._generate_completions = capture_gen
    tr = trl_trainer(policy, copy.deepcopy(ref), tok, prompts, out / "trl_one", 1, 1e-4, 8, beta, coef, 48, seed)
    batch = next(iter(tr.get_train_dataloader()))
    tr.model.zero_grad()
    tr.training_step(tr.model, batch)
    trl_grads = {n: p.grad.detach().clone() for n, p in tr.model.named_parameters() if p.grad is not None}
    NashMDTrainer._compute_logprobs, NashMDTrainer._compute_losses = orig_logprobs, orig_losses
    NashMDTrainer._generate_completions = orig_gen

    # alignkit on the same tokens: prompt without its left padding, completion up to its first EOS
    md, ctx = rec["model_data"], rec["ctx"]
    ids, att = md["input_ids"].cpu(), md["attention_mask"].cpu()
    seqs = [(ids[i, :ctx][att[i, :ctx] == 1].tolist(), ids[i, ctx:][att[i, ctx:] == 1].tolist())
            for i in range(ids.shape[0])]
    ours = copy.deepcopy(tr.accelerator.unwrap_model(tr.model)).eval()
    ours.zero_grad()
    ref_lp, _ = reference_logps(ref, seqs, tok.pad_token_id, 8, False)
    sb = collate(seqs, tok.pad_token_id)
    lp = token_forward(ours, sb).logps
    outl = nash_md_loss(lp, ref_lp[:, ref_lp.shape[1] - lp.shape[1]:], sb.comp_mask, rec["probability"].cpu(), beta)
    loss = outl.loss.sum() / outl.weight.sum()
    loss.backward()
    ours_grads = {n: p.grad.detach() for n, p in ours.named_parameters() if p.grad is not None}
    names = sorted(trl_grads)
    assert names == sorted(ours_grads), "different trainable parameters"
    ga = torch.cat([trl_grads[n].flatten() for n in names])
    gb = torch.cat([ours_grads[n].flatten() for n in names])
    res = {"prompts": len(seqs), "completion_tokens": int(sb.comp_mask.sum()), "P": rec["probability"].tolist(),
           "loss_trl": rec["trl_loss"], "loss_alignkit": loss.item(),
           "grad_max_abs_diff": (ga - gb).abs().max().item(), "grad_norm_trl": ga.norm().item(),
           "grad_norm_alignkit": gb.norm().item(),
           "grad_rel_diff": ((ga - gb).norm() / ga.norm()).item(),
           "grad_cosine": torch.nn.functional.cosine_similarity(ga.double(), gb.double(), dim=0).item(),
           "kl_term_nonzero": float(outl.metrics["nash/kl_term"].abs().sum())}

    # B: the mixture distribution on TRL's own mixture samples
    from trl.experimental.nash_md.nash_md_trainer import GeometricMixtureWrapper
    t0, mix = mixes[0]
    mix = mix.cpu()
    attn = (mix != tok.pad_token_id).long()
    pol = tr.accelerator.unwrap_model(tr.model).eval()
    with torch.no_grad():
        w = GeometricMixtureWrapper(pol, ref, tr.generation_config, mixture_coef=coef)
        trl_lp = w(input_ids=mix, attention_mask=attn).logits[:, t0 - 1:-1]
        ours_lp = mixture_logprobs(pol(input_ids=mix, attention_mask=attn).logits[:, t0 - 1:-1],
                                   ref(input_ids=mix, attention_mask=attn).logits[:, t0 - 1:-1], coef)
    keep = attn[:, t0:].bool()
    res["mixture_logprob_max_abs_diff"] = (trl_lp - ours_lp)[keep].abs().max().item()
    res["mixture_positions"] = int(keep.sum())
    del nash_md_trainer
    return res


def short_runs(model_dir, out, steps, lr, batch, beta, coef, max_new, seed):
    from trl.experimental.nash_md import NashMDTrainer
    from alignkit.registry import resolve_job
    tok = load_tokenizer(model_dir)
    prompts = [as_chat(p.text) for p in sample_prompts(steps * batch, "train", seed=seed)]
    rec: dict = {}
    patch_rewards(NashMDTrainer, TruthJudge(), rec)
    tr = trl_trainer(load_causal_lm(model_dir, "fp32"), load_causal_lm(model_dir, "fp32").eval(), tok, prompts,
                     out / "trl_run", steps, lr, batch, beta, coef, max_new, seed)
    t = time.time()
    tr.train()
    trl_time = time.time() - t
    tr.save_model(str(out / "trl_run"))
    tok.save_pretrained(str(out / "trl_run"))
    logs = [h for h in tr.state.log_history if "rewards/probabilities" in h]
    trl_rows = [{"preference": h["rewards/probabilities"], "kl": h["loss/kl"], "true_reward": r}
                for h, r in zip(logs, rec["true_reward"])]

    class Recording(TruthJudge):
        seen: list = []

        def compare(self, prompts_, a, b):
            s = self.score(prompts_, a)
            self.seen.append(sum(s) / len(s))
            return super().compare(prompts_, a, b)

    judge = Recording()
    job = resolve_job("nash-md", model_dir, prompts, str(out / "alignkit_run"),
                      {"reward": "truth", "beta": beta, "mixture_coef": coef, "iterations": steps,
                       "prompts_per_step": batch, "max_new_tokens": max_new, "learning_rate": lr,
                       "lr_scheduler": "constant", "batch_size": batch, "eval_fraction": 0, "seed": seed,
                       "progress": False, "num_threads": 1}, log=lambda *a: None)
    job = type(job)(**{**job.__dict__, "method_cfg": type(job.method_cfg)(**{**job.method_cfg.__dict__, "reward": judge})})
    t = time.time()
    job.method.run(job)
    ours_time = time.time() - t
    rows = [json.loads(line) for line in open(out / "alignkit_run" / "metrics.jsonl")]
    ours_rows = [{"preference": r["preference"], "kl": r["kl"], "true_reward": s}
                 for r, s in zip([r for r in rows if r["split"] == "train"], judge.seen)]
    # both final models under the same held-out evaluation (r*, win rate against the base under r*)
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from nash_eval import evaluate
    ev = evaluate({"trl": str(out / "trl_run"), "alignkit": str(out / "alignkit_run")}, model_dir, 400, seed,
                  log=lambda *a: None)
    final = {n: {"mean_reward": ev["per_model"][n]["mean_reward"], "kl_to_base": ev["per_model"][n].get("kl_to_base"),
                 "rstar_win_rate_vs_base": ev["rstar_win_rate"][n]["base"] if n != "base" else None}
             for n in ("base", "trl", "alignkit")}
    return {"trl": trl_rows, "alignkit": ours_rows, "time_trl_s": trl_time, "time_alignkit_s": ours_time,
            "final": final}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(a.output)
    out.mkdir(parents=True, exist_ok=True)
    res = {"one_update": one_update(a.model, out, 0.5, 0.1, a.seed)}
    print(json.dumps(res["one_update"], indent=1))
    if a.steps:
        res["short_run"] = short_runs(a.model, out, a.steps, a.lr, 8, 0.1, 0.5, 48, a.seed)
        for name in ("trl", "alignkit"):
            rows = res["short_run"][name]
            for lo, hi in ((0, 5), (len(rows) - 5, len(rows))):
                part = rows[lo:hi]
                print(name, f"steps {lo + 1}-{hi}", {k: round(sum(r[k] for r in part) / len(part), 3) for k in part[0]})
        print({k: round(v, 1) for k, v in res["short_run"].items() if k.startswith("time")})
        print(json.dumps(res["short_run"]["final"], indent=1))
    (out / "result.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
