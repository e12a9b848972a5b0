"""Rollouts: sample completions for a batch of prompts, score them, and record the per-token
log-probs of the sampling policy and of the reference in one no-grad pass.

Sampling sits behind the small `Generator` interface (`generate(prompt_ids, cfg, seed)` and
`sync(policy)`): transformers' `generate` with the KV cache (alignkit/models/generate.py) everywhere,
or vLLM when it is installed and a GPU is present. Log-probs are always recomputed by a forward of
the training model at temperature 1 (the policy's own distribution, which the KL and the PPO ratio
are about), never taken from the sampler.
"""
from __future__ import annotations

import torch

from ..models.generate import HFGenerator, SamplingConfig
from ..train.forward import collate
from ..train.packing import prefer_packed
from ..train.refcache import reference_mode
from .forward import token_forward
from .length import length_controlled
from .types import Rollout


class HFBackend:
    """transformers' generate on the training model itself: nothing to sync."""
    name = "hf"

    def __init__(self, model, tokenizer):
        self.gen = HFGenerator(model, tokenizer)

    def generate(self, prompt_ids: list, cfg: SamplingConfig, seed: int | None = None) -> list:
        return self.gen.generate(prompt_ids, cfg, seed=seed)

    def sync(self, policy):
        pass


class VLLMBackend:
    """vLLM in the same process (colocated, as TRL's `vllm_mode="colocate"`); the policy's weights
    are pushed into it before each rollout. Needs `pip install vllm` and a CUDA GPU."""
    name = "vllm"

    def __init__(self, model_path: str, tokenizer, gpu_memory_utilization: float = 0.3):
        import os
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # keep the engine in this process
        from vllm import LLM
        self.llm = LLM(model=model_path, gpu_memory_utilization=gpu_memory_utilization,
                       dtype="float32" if not torch.cuda.is_bf16_supported() else "bfloat16")
        self.eos = tokenizer.eos_token_id

    def generate(self, prompt_ids: list, cfg: SamplingConfig, seed: int | None = None) -> list:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        # one seed per request: k copies of a prompt with one shared seed would be k identical samples
        params = [SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_new_tokens,
                                 seed=None if seed is None else seed + i) for i in range(len(prompt_ids))]
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompt_ids], params, use_tqdm=False)
        result = []
        for o in outs:
            c = o.outputs[0]
            ids = list(c.token_ids)
            if c.finish_reason == "stop" and self.eos is not None and (not ids or ids[-1] != self.eos):
                ids.append(self.eos)  # stopped on EOS: keep it, as the HF backend does
            result.append(ids)
        return result

    def sync(self, policy):
        """Copy the policy's current weights into the engine (merged first under LoRA)."""
        from ..errors import ConfigError
        m = getattr(policy, "module", policy)
        if hasattr(m, "peft_config"):
            import copy
            m = copy.deepcopy(m).merge_and_unload()
        worker = self.llm.llm_engine.model_executor.driver_worker
        runner = getattr(getattr(worker, "worker", worker), "model_runner", None)  # V1 wraps the worker
        if runner is None or not hasattr(runner.model, "load_weights"):
            raise ConfigError("this vLLM version's in-process engine layout is not supported for weight "
                              "updates; use --generator hf")
        runner.model.load_weights(m.state_dict().items())


def make_generator(kind: str, model, tokenizer, model_path: str):
    """kind: auto | hf | vllm. auto = vLLM when importable and a GPU is present, else transformers."""
    from ..errors import ConfigError
    if kind not in ("auto", "hf", "vllm"):
        raise ConfigError(f"generator must be auto, hf or vllm, not {kind!r}")
    if kind in ("auto", "vllm"):
        try:
            import vllm  # noqa: F401
            have = torch.cuda.is_available()
        except ImportError:
            have = False
        if have:
            return VLLMBackend(model_path, tokenizer)
        if kind == "vllm":
            raise ConfigError("generator vllm needs the vllm package and a CUDA GPU; use --generator hf")
    return HFBackend(model, tokenizer)


def _place(dst: torch.Tensor, rows: list, src: torch.Tensor):
    """Copy a chunk's right-aligned (n, tc) tensor into the last tc columns of dst's rows."""
    dst[rows, dst.shape[1] - src.shape[1]:] = src.to(dst.dtype).cpu()


def packs(model, seqs: list, share_prompts: bool) -> bool:
    """Packed rows (each group's prompt once, no padding) for these rows when allowed and cheaper for
    their shapes on this model (train/packing.py layout_costs), else plain padded rows."""
    config = getattr(getattr(model, "module", model), "config", None)
    return share_prompts and config is not None and prefer_packed(seqs, config)


@torch.no_grad()
def score_forward(policy, reference, value_fn, seqs: list, pad_id: int, batch_size: int,
                  share_prompts: bool = True, policy_pass: bool = True) -> dict:
    """(B, T) old log-probs, entropies, values (value_fn given) and reference log-probs (reference
    given; under LoRA the reference is the policy with its adapter disabled) for collated rows.
    policy_pass=False skips the policy's own forward (no old_logps or entropy: the update computes
    them, when each rollout batch gets exactly one update)."""
    tc = max(len(c) for _, c in seqs)
    b = len(seqs)
    out = {"mask": torch.zeros(b, tc)}
    if policy_pass:
        out.update(old_logps=torch.zeros(b, tc), entropy=torch.zeros(b, tc))
    if reference is not None:
        out["ref_logps"] = torch.zeros(b, tc)
    if value_fn is not None:
        out["values"] = torch.zeros(b, tc)
    device = next(policy.parameters()).device
    shared = value_fn is not None and value_fn.uses_policy_hidden
    # packed: rows in their prompt-major order, so a chunk holds whole groups and each prompt runs once;
    # plain: sorted by length, little padding per chunk
    share_prompts = packs(policy, seqs, share_prompts)
    order = list(range(b)) if share_prompts else sorted(range(b), key=lambda i: len(seqs[i][0]) + len(seqs[i][1]))
    for i in range(0, b, batch_size):
        rows = order[i: i + batch_size]
        sb = collate([seqs[r] for r in rows], pad_id, share_prefix=share_prompts).to(device)
        _place(out["mask"], rows, sb.comp_mask)
        if policy_pass or value_fn is not None:
            fw = token_forward(policy, sb, want_hidden=shared, want_entropy=policy_pass)
            if policy_pass:
                _place(out["old_logps"], rows, fw.logps)
                _place(out["entropy"], rows, fw.entropy)
            if value_fn is not None:
                _place(out["values"], rows, value_fn(sb, fw.hidden))
        if reference is not None:
            with reference_mode(reference) as ref:
                _place(out["ref_logps"], rows, token_forward(ref, sb).logps)
    return out


def collect_rollout(policy, reference, value_fn, tokenizer, generator, prompts: list, prompt_ids: list,
                    judge, cfg, seed: int, batch_size: int, greedy_baseline: bool = False,
                    policy_pass: bool = True) -> Rollout:
    """Sample cfg.samples_per_prompt completions per prompt (prompt-major rows), score them with the judge,
    apply length control, and run the no-grad forward (without the policy's own pass when
    policy_pass is False: old_logps and entropy stay None). With greedy_baseline, also decode each
    prompt greedily and score it (ReMax's baseline)."""
    k = cfg.samples_per_prompt
    eos = tokenizer.eos_token_id
    sampling = SamplingConfig(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                              top_p=cfg.top_p, batch_size=cfg.generation_batch_size)
    flat_ids = [p for p in prompt_ids for _ in range(k)]
    flat_prompts = [p for p in prompts for _ in range(k)]
    group = torch.arange(len(prompts)).repeat_interleave(k)  # (B,)
    comps = [c or [eos] for c in generator.generate(flat_ids, sampling, seed=seed)]  # never empty
    ended = torch.tensor([eos is not None and c[-1] == eos for c in comps])
    texts = tokenizer.batch_decode(comps, skip_special_tokens=True)
    judge_scores = torch.tensor(judge.score(flat_prompts, texts), dtype=torch.float32)
    lengths = torch.tensor([float(len(c)) for c in comps])
    rewards = length_controlled(judge_scores, lengths, ended, cfg)
    seqs = list(zip(flat_ids, comps))
    fw = score_forward(policy, reference, value_fn, seqs, tokenizer.pad_token_id, batch_size, cfg.share_prompts,
                       policy_pass=policy_pass)
    baseline = None
    if greedy_baseline:
        greedy_cfg = SamplingConfig(max_new_tokens=cfg.max_new_tokens, temperature=0.0,
                                    batch_size=sampling.batch_size)
        g = [c or [eos] for c in generator.generate(prompt_ids, greedy_cfg)]
        g_ended = torch.tensor([eos is not None and c[-1] == eos for c in g])
        g_scores = torch.tensor(judge.score(prompts, tokenizer.batch_decode(g, skip_special_tokens=True)),
                                dtype=torch.float32)
        g_rewards = length_controlled(g_scores, torch.tensor([float(len(c)) for c in g]), g_ended, cfg)
        baseline = g_rewards[group]  # (B,)
    return Rollout(prompts=flat_prompts, texts=texts, seqs=seqs, group=group, mask=fw["mask"],
                   old_logps=fw.get("old_logps"), ended=ended, judge_scores=judge_scores, rewards=rewards,
                   ref_logps=fw.get("ref_logps"), values=fw.get("values"), entropy=fw.get("entropy"),
                   baseline_rewards=baseline)
