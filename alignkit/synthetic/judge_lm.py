"""The bundled task's feedback model: a tiny generative LM trained to judge, critique and revise, so
that RLAIF and Constitutional AI run on CPU with a judge whose errors are real (learned), not scripted.

Built like the task's base model (base.py): its own byte-level BPE tokenizer (the world's phrases and
the judging prompts), a tiny Llama pre-trained on the world's transcripts, then SFT with
`run_train("sft", ...)` on prompts made by the very classes that query it later, so training and use
see the same text:

- pairwise judging (RLAIF, Lee et al. 2023, arXiv 2309.00267, sec. 2.1): the task's template
  (judge_template.txt) filled with a prompt and two responses; the completion is the label of the
  better response under r* (or under a Bradley-Terry labeller on r* with `labeler_temperature` > 0).
  Positions are balanced: the better response is shown first in exactly half of the examples;
- multiple-choice comparison under a principle (Constitutional AI, Bai et al. 2022, arXiv 2212.08073,
  sec. 4.1): the built-in `constitution` template with a principle of the task's constitution
  (constitution.jsonl); the label is the response better on the principle's part of r*, ties broken
  by the whole r*;
- critiques and revisions (CAI sec. 3.1): the chat turns `alignkit constitution revise` sends; the
  critique says whether, and how, the response breaks the drawn principle ("Yes. It is rude." /
  "No. It is polite."); the revision is the response itself when it does not, else a response from
  the world's ideal behaviour (refuses harm, right sum, helps, names the topic, no rudeness or
  rambling).

Responses come from the base model's SFT behaviour mix (corpus.py) and, with `policy_candidates`,
from the SFT base model itself (temperature 1), on training-split prompts. After training the judge is
measured on pairs from held-out prompts (`judge.json`: agreement with r* of one order and of both
orders averaged, position consistency, the first position's win rate, critique accuracy).

The model is cached under `cache_root() / "judge" / <hash of the config, the world and the code>`.
The default one also ships with the package (assets/judge: 2 MB of safetensors, its tokenizer and
manifest.json, exactly what a build writes), used while its manifest's `config_hash` equals this code's
and its weights' sha256 matches, so `task-judge` needs no build on a fresh clone. Builds run on
BUILD_THREADS torch threads (sampling included), which makes them deterministic.
The plug-in registers two judge kinds on it (plugin.py): `task-judge[:OPTIONS]` (the pairwise judge,
llm-pair) and `task-cai[:OPTIONS]` (the constitution judge, llm-cai with the task's constitution).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..data.records import Demonstration
from .prompts import as_chat, sample_prompts

HERE = Path(__file__).parent
TEMPLATE = HERE / "judge_template.txt"
CONSTITUTION = HERE / "constitution.jsonl"
VERSION = 1
BUILD_THREADS = 1  # torch threads of a build: fixed, so a rebuild reproduces the shipped model
SHIPPED = HERE / "assets" / "judge"  # the default judge LM, shipped with the package
# the files whose content decides what the judge learns: an edit rebuilds it (as do changes to the text of
# the queries the judges send, see _query_formats)
_KEY_FILES = (HERE / "judge_lm.py", HERE / "reward.py", HERE / "corpus.py", HERE / "prompts.py", TEMPLATE,
              CONSTITUTION)


@dataclass(frozen=True)
class JudgeLMConfig:
    vocab_size: int = 1280  # BPE vocabulary size (the world's phrases and the judging prompts)
    hidden_size: int = 128  # model width
    num_layers: int = 2  # transformer blocks
    num_heads: int = 4  # attention heads
    intermediate_size: int = 344  # MLP width
    max_positions: int = 512  # context length
    pretrain_examples: int = 16000  # world transcripts in the pre-training corpus
    pretrain_epochs: float = 1.0  # passes over them
    pretrain_lr: float = 3e-3  # peak learning rate (cosine, 3% warm-up)
    prompts: int = 2000  # training-split prompts the judging examples are made from
    corpus_candidates: int = 3  # responses per prompt drawn from the SFT behaviour mix
    policy_candidates: int = 2  # responses per prompt sampled from the task's SFT base model (0 = none)
    pairwise_examples: int = 6000  # pairwise judging examples (task template)
    choice_examples: int = 2000  # multiple-choice examples under a principle (constitution template)
    critique_examples: int = 1500  # critique examples
    revision_examples: int = 1500  # revision examples
    labeler_temperature: float = 0.0  # 0: the label is r*'s better response; > 0: a Bradley-Terry labeller on r*
    sft_epochs: float = 2.0  # passes over the judging examples
    sft_lr: float = 1e-3  # peak learning rate (cosine)
    batch_size: int = 32  # sequences per optimizer step
    max_length: int = 256  # longest judging prompt + completion, in tokens
    heldout_pairs: int = 400  # pairs on held-out prompts the built judge is measured on (judge.json)
    seed: int = 0  # data, initialisation and order

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            low = 0 if f.name in ("policy_candidates", "choice_examples", "critique_examples", "revision_examples",
                                  "heldout_pairs", "labeler_temperature", "seed") else 1
            if isinstance(v, float) and f.name != "labeler_temperature":
                low = 1e-12  # learning rates and epochs: positive
            if v < low:
                raise ValueError(f"judge LM {f.name} must be {'> 0' if low == 1e-12 else f'>= {low}'}, got {v}")
        if self.corpus_candidates + self.policy_candidates < 2:
            raise ValueError("judge LM: corpus_candidates + policy_candidates must be >= 2 (pairs need two responses)")


TINY_JUDGE = JudgeLMConfig(vocab_size=600, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                           pretrain_examples=300, prompts=60, corpus_candidates=3, policy_candidates=0,
                           pairwise_examples=120, choice_examples=40, critique_examples=40, revision_examples=40,
                           sft_epochs=1.0, heldout_pairs=16)  # for smoke tests

def _ideal():
    """The world's ideal behaviour: refuses harm, right sums, helps, names the topic, never rude or rambling."""
    from .corpus import BehaviourRates
    return BehaviourRates(correct=1.0, refuse_harmful=1.0, help_benign=1.0, on_topic=1.0, over_refuse_other=0.0,
                          rude=0.0, polite=0.5, ramble=0.0)


# ---- what the principles of the task's constitution look at -------------------------------------------
def principle_utility(name: str, info, response: str) -> float:
    """The part of r* that the task principle `name` is about (0 = no flaw under it, < 0 = a flaw)."""
    from .reward import is_harmful_compliance, is_refusal, true_reward_breakdown
    b = true_reward_breakdown(info, response)
    if name == "harm":
        return -1.0 if is_harmful_compliance(info, response) else 0.0
    if name == "refusal":
        return -1.0 if info.family != "harmful" and is_refusal(response) else 0.0
    if name == "correct":
        return b["correctness"]
    if name == "topic":
        return b["on_topic"]
    if name == "polite":
        return min(b["style"], 0.0)
    if name == "concise":
        return b["length"]
    raise ValueError(f"the task has no principle {name!r}")


def critique_text(name: str, info, response: str) -> tuple:
    """(flawed, critique) the judge LM learns for the task principle `name`."""
    from .reward import LENGTH_BANDS, n_words
    flawed = principle_utility(name, info, response) < 0
    if name == "harm":
        return flawed, "Yes. It helps with a harmful request." if flawed else "No. It is not harmful."
    if name == "refusal":
        return flawed, "Yes. It refuses a harmless request." if flawed else "No. It does not refuse a harmless request."
    if name == "correct":
        if info.family != "arithmetic":
            return flawed, "No. There is no answer to check."
        return flawed, f"Yes. The answer is {info.answer}." if flawed else "No. The answer is right."
    if name == "topic":
        return flawed, f"Yes. It should mention {info.topic}." if flawed else "No. It is on topic."
    if name == "polite":
        return flawed, "Yes. It is rude." if flawed else "No. It is polite."
    lo, _ = LENGTH_BANDS.get(info.family, LENGTH_BANDS["unknown"])
    if not flawed:
        return flawed, "No. The length is fine."
    return flawed, "Yes. It is too short." if n_words(response) < lo else "Yes. It is too long."


# ---- examples --------------------------------------------------------------------------------------
class _ChatStub:
    """What the judge classes need of a backend to build their queries: the chat flag and a name."""
    chat = True
    name = "judge-lm"

    def usage(self):
        return {}


def task_constitution():
    from ..judges.constitution import read_constitution
    return read_constitution(str(CONSTITUTION))


def _pair_judge():
    from ..judges.pairwise import PairwiseLLMJudge
    from ..judges.templates import load_template
    return PairwiseLLMJudge(_ChatStub(), load_template(str(TEMPLATE), "pairwise"))


def _choice_judge():
    from ..judges.constitution import ConstitutionalJudge
    from ..judges.templates import load_template
    return ConstitutionalJudge(_ChatStub(), load_template("constitution", "pairwise"), task_constitution(), "all")


def candidates(cfg: JudgeLMConfig, split: str, n_prompts: int, seed: int, base: Path | None, log) -> list:
    """[(PromptInfo, [distinct responses])] on `n_prompts` prompts of `split`."""
    from .candidates import sample_from_corpus, sample_from_model
    infos = sample_prompts(n_prompts, split, seed=seed)
    cands = sample_from_corpus(infos, cfg.corpus_candidates, seed=seed)
    if cfg.policy_candidates and base is not None:
        from ..models.generate import SamplingConfig
        log(f"judge LM: sampling {cfg.policy_candidates} responses for each of {len(infos)} {split} prompts "
            f"from {base}")
        sampling = SamplingConfig(max_new_tokens=48, temperature=1.0, top_p=1.0, batch_size=64)
        pol = sample_from_model(str(base), infos, cfg.policy_candidates, sampling, seed=seed, progress=False)
        cands = [c + p for c, p in zip(cands, pol)]
    return [(info, list(dict.fromkeys(t for t in c if t.strip()))) for info, c in zip(infos, cands)]


def _better(u_a, u_b, rng: random.Random, temperature: float):
    """True if a is labelled better, False if b, None for a tie (no label). Utilities are tuples compared
    in order (a principle's part of r*, then r*); with temperature > 0 the first differing part's gap
    goes through a Bradley-Terry draw."""
    from ..rewards.judge import sigmoid
    gap = next((x - y for x, y in zip(u_a, u_b) if x != y), 0.0)
    if gap == 0:
        return None
    if temperature == 0:
        return gap > 0
    return rng.random() < sigmoid(gap / temperature)


def pair_examples(cands: list, n: int, rng: random.Random, cfg: JudgeLMConfig, principled: bool) -> list:
    """n (query, label) pairwise examples; principled: under a drawn task principle (constitution template)."""
    from .reward import true_reward
    judge = _choice_judge() if principled else _pair_judge()
    pool = judge.pool if principled else None
    pairs = [(info, a, b) for info, c in cands for i, a in enumerate(c) for b in c[i + 1:]]
    rng.shuffle(pairs)
    out = []
    for info, a, b in pairs:
        if len(out) >= n:
            break
        prompt = as_chat(info.text)
        if principled:
            pr = pool[rng.randrange(len(pool))]
            ua = (principle_utility(pr.name, info, a), true_reward(info, a))
            ub = (principle_utility(pr.name, info, b), true_reward(info, b))
        else:
            pr, ua, ub = None, (true_reward(info, a),), (true_reward(info, b),)
        a_better = _better(ua, ub, rng, cfg.labeler_temperature)
        if a_better is None:
            continue
        good, bad = (a, b) if a_better else (b, a)
        first_good = len(out) % 2 == 0  # exactly balanced positions
        shown = (good, bad) if first_good else (bad, good)
        fields = judge.fields(prompt, shown)
        if principled:
            fields["principle"] = pr.choice
        labels = judge.template.labels
        out.append((judge.direct_query(fields), labels[0] if first_good else labels[1]))
    return out


def critique_examples(cands: list, n_crit: int, n_rev: int, rng: random.Random) -> tuple:
    """(critique examples, revision examples): half of each on responses the drawn principle flags."""
    from ..judges.constitution import critique_query, revision_query
    from .corpus import respond
    pool = task_constitution().principles
    flagged = {p.name: [] for p in pool}
    clean_ = {p.name: [] for p in pool}
    for info, c in cands:
        for y in c:
            for p in pool:
                (flagged if critique_text(p.name, info, y)[0] else clean_)[p.name].append((info, y))
    ideal = _ideal()

    def pick(k):
        p = pool[rng.randrange(len(pool))]
        want = flagged if (k % 2 == 0 and flagged[p.name]) else clean_
        src = want[p.name] or flagged[p.name] or clean_[p.name]
        info, y = src[rng.randrange(len(src))]
        return p, info, y

    crit, rev = [], []
    for k in range(n_crit):
        p, info, y = pick(k)
        crit.append((critique_query(True, as_chat(info.text), y, p), critique_text(p.name, info, y)[1]))
    for k in range(n_rev):
        p, info, y = pick(k)
        flawed, critique = critique_text(p.name, info, y)
        target = respond(info, rng, ideal)[0] if flawed else y
        rev.append((revision_query(True, as_chat(info.text), y, p, critique), target))
    return crit, rev


def judging_records(cfg: JudgeLMConfig, base: Path | None, log=print) -> tuple:
    """(SFT demonstrations, counts) for the judge LM."""
    rng = random.Random(f"judge-lm|{cfg.seed}")
    cands = candidates(cfg, "train", cfg.prompts, cfg.seed * 13 + 5, base, log)
    pw = pair_examples(cands, cfg.pairwise_examples, rng, cfg, principled=False)
    mc = pair_examples(cands, cfg.choice_examples, rng, cfg, principled=True) if cfg.choice_examples else []
    crit, rev = critique_examples(cands, cfg.critique_examples, cfg.revision_examples, rng)
    recs = [Demonstration(q, t) for q, t in pw + mc + crit + rev]
    rng.shuffle(recs)
    return recs, {"pairwise": len(pw), "choice": len(mc), "critique": len(crit), "revision": len(rev)}


# ---- building and caching ---------------------------------------------------------------------------
def _query_formats() -> list:
    """One query of each kind, as the generic judges and `constitution revise` build them: the judge is
    trained on these texts, so a change in how they are written must rebuild it."""
    from ..judges.constitution import critique_query, revision_query
    p = task_constitution().principles[0]
    prompt = as_chat("What is 1 + 2?")
    fields = {"context": "c", "response_a": "a", "response_b": "b"}
    return [_pair_judge().direct_query(fields), _choice_judge().direct_query({**fields, "principle": p.choice}),
            critique_query(True, prompt, "r", p), revision_query(True, prompt, "r", p, "k")]


def config_hash(cfg: JudgeLMConfig, world) -> str:
    """The cache key: the config, the world it samples from (with policy_candidates), the code and data
    files that make its examples, and the text of the queries it is trained on."""
    from .base import config_hash as world_hash
    code = "".join(hashlib.sha256(p.read_bytes()).hexdigest() for p in _KEY_FILES)
    blob = json.dumps({"version": VERSION, "code": code, "queries": _query_formats(),
                       "world": world_hash(world) if cfg.policy_candidates else None, **dataclasses.asdict(cfg)},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def judge_dir(cfg: JudgeLMConfig, world, cache_dir: str | None = None) -> Path:
    from .base import cache_root
    return cache_root(cache_dir) / "judge" / config_hash(cfg, world)


def _tokenizer_texts(records: list, pre_texts: list) -> list:
    """The world's phrases, transcripts and judging examples as the model will read them (the tiny
    tokenizer's default chat template)."""
    from ..data.tokenize import render_prompt
    from .corpus import tokenizer_texts

    class _NoTemplate:
        chat_template = None
    sample = [render_prompt(_NoTemplate(), r.prompt) + r.completion for r in records[:3000]]
    return tokenizer_texts() + pre_texts[:4000] + sample


def shipped_judge(cfg: JudgeLMConfig, world) -> Path | None:
    """The shipped judge LM when it was built from `cfg` and `world` by this code (its manifest's hash)
    and its weights are intact (their sha256), else None."""
    from .base import file_sha256, read_manifest
    man = read_manifest(SHIPPED)
    weights = SHIPPED / "model.safetensors"
    if man.get("config_hash") != config_hash(cfg, world) or not weights.is_file():
        return None
    return SHIPPED if file_sha256(weights) == man.get("sha256", {}).get("model.safetensors") else None


def build_judge_lm(cfg: JudgeLMConfig = JudgeLMConfig(), world=None, cache_dir: str | None = None,
                   force: bool = False, threads: int = BUILD_THREADS, log=print) -> Path:
    """The judge LM's folder: the cached one when present, else the shipped one when it was built from
    this config, else built (minutes at the defaults) on `threads` torch threads and cached. Its
    manifest.json holds the config hash, the examples' counts and sha256, the held-out measures and the
    weights' sha256. force: build."""
    import torch

    from ..models.tiny import TinyLlamaConfig, build_tiny_llama, train_tokenizer
    from ..registry import run_train
    from . import corpus
    from .base import MANIFEST, WorldConfig, _check, _quiet, _train_overrides, build_base, file_sha256

    world = world or WorldConfig()
    final = judge_dir(cfg, world, cache_dir)
    if (final / "model" / "config.json").is_file() and not force:
        log(f"judge LM: reusing {final / 'model'}")
        return final / "model"
    shipped = None if force else shipped_judge(cfg, world)
    if shipped is not None:
        log(f"judge LM: the shipped one ({shipped})")
        return shipped
    base = build_base(world, cache_dir=cache_dir, log=log) if cfg.policy_candidates else None
    work = final.parent / f"{final.name}.building-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.time()
    threads_before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        log(f"judge LM: building in {final} (pre-training, then SFT on judging, critique and revision prompts; "
            "cached for later runs)")
        records, counts = judging_records(cfg, base, log)
        pre_texts = corpus.pretraining_texts(cfg.pretrain_examples, cfg.seed + 101)
        tok = train_tokenizer(_tokenizer_texts(records, pre_texts), cfg.vocab_size)
        model = build_tiny_llama(tok, TinyLlamaConfig(cfg.hidden_size, cfg.num_layers, cfg.num_heads,
                                                      cfg.intermediate_size, cfg.max_positions), seed=cfg.seed)
        init = work / "init"
        model.save_pretrained(init, safe_serialization=True)
        tok.save_pretrained(init)
        n_params = sum(p.numel() for p in model.parameters())
        train_world = dataclasses.replace(world, seed=cfg.seed, batch_size=cfg.batch_size)
        log(f"[judge 1/3] pre-training a {n_params / 1e6:.2f}M-parameter Llama on {len(pre_texts)} transcripts")
        pre = {**_train_overrides(train_world, cfg.pretrain_lr, cfg.pretrain_epochs), "num_threads": threads}
        _check(run_train("sft", str(init), [Demonstration("", t) for t in pre_texts], str(work / "pretrained"),
                         pre, log=_quiet(log)))
        log(f"[judge 2/3] SFT on {len(records)} examples ({', '.join(f'{v} {k}' for k, v in counts.items())})")
        sft = {**_train_overrides(train_world, cfg.sft_lr, cfg.sft_epochs), "max_length": cfg.max_length,
               "num_threads": threads}
        _check(run_train("sft", str(work / "pretrained"), records, str(work / "model"), sft, log=_quiet(log)))
        shutil.rmtree(init)
        shutil.rmtree(work / "pretrained")
        log(f"[judge 3/3] measuring it on {cfg.heldout_pairs} pairs from held-out prompts")
        quality = measure(work / "model", cfg, base, log) if cfg.heldout_pairs else {}
        digest = hashlib.sha256(json.dumps([[r.prompt, r.completion] for r in records]).encode()).hexdigest()
        manifest = {"config_hash": config_hash(cfg, world), "config": dataclasses.asdict(cfg),
                    "world": dataclasses.asdict(world), "version": VERSION, "parameters": n_params,
                    "threads": threads, "torch": torch.__version__, "examples": counts, "examples_sha256": digest,
                    "heldout": quality, "build_seconds": round(time.time() - t0, 1),
                    "sha256": {"model.safetensors": file_sha256(work / "model" / "model.safetensors")}}
        (work / "model" / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        (work / "judge.json").write_text(json.dumps(manifest, indent=1) + "\n")
        if final.exists():
            shutil.rmtree(final)
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        torch.set_num_threads(threads_before)
    log(f"judge LM: built in {time.time() - t0:.0f}s -> {final / 'model'}")
    return final / "model"


def measure(model_dir: Path, cfg: JudgeLMConfig, base: Path | None, log=print) -> dict:
    """The judge on held-out pairs: agreement with r* (one order; both averaged), position consistency,
    P(first shown preferred); critique accuracy (does its critique's first word match the truth)."""
    from ..judges.constitution import critique_query
    from ..judges.hf import HFBackend
    from .reward import true_reward
    rng = random.Random(f"judge-lm-heldout|{cfg.seed}")
    n_prompts = max(8, cfg.heldout_pairs // 2)
    cands = candidates(cfg, "heldout", n_prompts, cfg.seed * 13 + 6, base, log)
    pairs = [(info, a, b) for info, c in cands for i, a in enumerate(c) for b in c[i + 1:]
             if true_reward(info, a) != true_reward(info, b)]
    rng.shuffle(pairs)
    pairs = pairs[: cfg.heldout_pairs]
    backend = HFBackend(str(model_dir), batch_size=32)
    judge = _pair_judge()
    judge.backend = backend
    prompts = [as_chat(i.text) for i, _, _ in pairs]
    out = judge.judge_pairs(prompts, [a for _, a, _ in pairs], [b for _, _, b in pairs])
    truth = [true_reward(i, a) > true_reward(i, b) for i, a, b in pairs]
    n = max(len(pairs), 1)
    res = {"pairs": len(pairs),
           "agreement_one_order": sum((j.forward > 0.5) == t for j, t in zip(out, truth)) / n,
           "agreement_debiased": sum((j.probability > 0.5) == t for j, t in zip(out, truth)) / n,
           "position_consistency": sum(bool(j.agree) for j in out) / n,
           "first_position_preferred": sum(sum(j.first_preferred) / 2 for j in out) / n}
    pool = task_constitution().principles
    items = [(pool[rng.randrange(len(pool))], info, y) for info, c in cands for y in c][: cfg.heldout_pairs]
    texts = backend.generate([critique_query(True, as_chat(i.text), y, p) for p, i, y in items], 16, 0.0, 0)
    hits = [t.strip().lower().startswith("yes") == critique_text(p.name, i, y)[0] for (p, i, y), t in zip(items, texts)]
    res["critique_accuracy"] = sum(hits) / max(len(hits), 1)
    log("judge LM on held-out pairs: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                   for k, v in res.items()))
    return res


# ---- judge specs on it --------------------------------------------------------------------------------
def judge_spec(kind: str = "pair", options: str = "", cfg: JudgeLMConfig = JudgeLMConfig(), world=None,
               cache_dir: str | None = None, log=print) -> str:
    """An llm-pair (kind "pair") or llm-cai (kind "cai") spec on the task's judge LM (built or cached)."""
    model = build_judge_lm(cfg, world, cache_dir, log=log)
    if kind == "pair":
        spec = f"llm-pair:hf:{model},template={TEMPLATE},batch_size=32"
    elif kind == "cai":
        spec = f"llm-cai:hf:{model},constitution={CONSTITUTION},principles=all,batch_size=32"
    else:
        raise ValueError(f"kind must be pair or cai, got {kind!r}")
    return spec + ("," + options if options else "")


def task_judge(kind: str, arg: str):
    """The judge of the spec `task-judge[:OPTIONS]` (kind "pair") or `task-cai[:OPTIONS]` ("cai"): the
    llm-pair / llm-cai options pass through; `world=mini` uses the seconds-long miniature (tests)."""
    from ..errors import ConfigError
    from ..judges.specs import llm_judge
    from .base import TINY_WORLD, WorldConfig
    pieces = [p.strip() for p in arg.split(",") if p.strip()]
    worlds = [p.partition("=")[2] for p in pieces if p.startswith("world=")]
    if any(w not in ("default", "mini") for w in worlds):
        raise ConfigError(f"task-{'judge' if kind == 'pair' else 'cai'}:{arg}: world must be default or mini")
    mini = "mini" in worlds
    rest = ",".join(p for p in pieces if not p.startswith("world="))
    spec = judge_spec(kind, rest, TINY_JUDGE if mini else JudgeLMConfig(), TINY_WORLD if mini else WorldConfig())
    name, _, body = spec.partition(":")
    return llm_judge(name, body)
