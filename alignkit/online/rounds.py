"""The round machinery every iterative method shares: sample -> judge -> records -> train, round after round,
resumable by round, with the held-out figures and the --stop-when rules after each round.

A method is a `Recipe` (what differs: the judge of a round, extra candidates, the scores, what one prompt's
judged answers become, anything trained before the round's loss) plus a config that extends `RoundsConfig`.
iterative-dpo, dno, self-rewarding and iterative-cringe are recipes (alignkit/online/methods.py).

One round t (1-based), from the current policy pi_{t-1} (round-{t-1}/, or the starting model):
1. prompts: the next `prompts_per_iteration` of a seeded shuffle of the training prompts (all when 0);
2. K answers per prompt from pi_{t-1} at `temperature` (plus a recipe's extra candidates);
3. the recipe's judge scores them (a pairwise-only judge: each answer's mean P(win) against the others);
   with --eval-judge, the agreement of the judge's orderings with that judge's (pairs both order strictly);
4. the recipe turns each prompt's judged answers into records (round-T/pairs.jsonl), trains its loss on
   them from pi_{t-1} (reference: the initial model or pi_{t-1}, --reference) -> round-T/, pi_t; with
   --reuse-rounds N also on the records of rounds t-N..t-1 (replayed, with this round's reference);
5. with --stop-when or --eval-judge: the held-out figures of pi_t (watch.py) and the stop rules
   (stopping.py); round-T/round.json records the round, and a rule that fires ends the run.
The result (the output folder's model) is the last round, or, when a rule other than max stopped the run
and --stop-keep is previous, the round before the one that failed the rule (the initial model if round 1).
"""
from __future__ import annotations

import dataclasses
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..config import option
from ..data.convert import write_jsonl
from ..rl.logs import write_round_completions
from ..errors import ConfigError
from ..train.record import run_record
from ..train.run import Job, load_split
from .stopping import decide, describe, parse_stop_when


@dataclass(frozen=True)
class RoundsConfig:
    loss: str = "dpo"  # the loss each round trains (its own flags follow, e.g. --beta)
    iterations: int = option(3, ge=1)  # rounds of sample -> judge -> train (the most a run does; --stop-when may stop it earlier)
    prompts_per_iteration: int = option(0, ge=0)  # fresh prompts each round (a seeded shuffle of the data); 0 = every prompt every round
    samples_per_prompt: int = option(4, ge=1)  # K responses per prompt from the current policy
    temperature: float = option(1.0, ge=0, aliases=("sample_temperature",))  # sampling temperature of the responses
    max_new_tokens: int = option(64, ge=1)  # longest response in tokens
    reference: str = option("initial", choices=("initial", "previous"))  # initial | previous: round t's reference (initial: Xiong et al.; previous: Yuan et al., Rosset et al.)
    min_gap: float = option(0.0, ge=0)  # keep a prompt only if its best and worst scores differ by at least this (large-margin pairs)
    stop_when: str = ""  # stop rules, any of which ends the run after a round: winrate[:T], kl:B, plateau[:EPS[:N]], max:N, comma-separated (alignkit/online/stopping.py)
    stop_judge: str = ""  # judge of the winrate rule's held-out comparisons ("" = the run's judge), any judge spec
    eval_judge: str = ""  # a judge reported every round but never trained on (e.g. truth: r* on the bundled task): held-out reward and win rate vs the previous round, and its agreement with the run's judge
    heldout_prompts: int = option(64, ge=0)  # held-out prompts for the stop rules and --eval-judge (one answer each per round)
    heldout_data: str = ""  # file of held-out prompts; "" = the task's held-out split without --data, else the last heldout_prompts of --data (then not trained on)
    stop_confidence: float = option(0.95, gt=0, lt=1)  # two-sided confidence of the winrate rule's interval
    stop_keep: str = option("previous", choices=("previous", "last"))  # previous | last: the result when a rule other than max stops the run (previous = the last round that passed)
    reuse_rounds: int = option(0, ge=0)  # also train each round on the records of the previous N rounds (replay: earlier rounds' pairs with this round's reference); 0 = the round's own only
    # --resume reuses the rounds an interrupted run finished (their round.json) and restarts the one it was in


class Recipe:
    """What one iterative method does differently. Subclasses override what they change."""

    data_file = "pairs.jsonl"  # where a round's training records go

    def __init__(self, job: Job):
        self.job, self.mc = job, job.method_cfg
        self.spec, self.loss_cfg = job.inner
        self.name = job.method.name

    def check(self) -> None:
        """ConfigErrors for settings the method cannot run with."""

    def judge(self, policy: str):
        """The judge of the round whose policy is `policy` (also the run's judge of its held-out figures)."""
        raise NotImplementedError

    def judge_name(self) -> str:
        return getattr(self.mc, "reward", "")

    def candidates(self, prompt, answers: list) -> list:
        """A prompt's candidates: the policy's answers (DNO adds a teacher's)."""
        return answers

    def scores(self, judge, groups: list) -> list:
        """[(prompt, candidates)] -> per group, a score per candidate (higher is better)."""
        return judge_scores(judge, groups)

    def records(self, prompt, candidates: list, scores: list, source: str) -> list:
        raise NotImplementedError

    def mean_reward(self, scores: list) -> float:
        """The round's mean judge reward of its samples, as logged."""
        flat = [x for s in scores for x in s]
        return sum(flat) / len(flat)

    def before_training(self, t: int, policy: str, rdir: Path, judge, round_cfg) -> str:
        """Anything trained before the round's loss; returns the model the loss starts from."""
        return policy

    def release(self) -> None:
        """Drop what the recipe holds in memory (a judge's model) before training."""

    def empty_message(self, t: int) -> str:
        return (f"round {t}: no prompt's samples differ enough under the judge (ties, or gaps below min_gap); raise "
                "--samples-per-prompt or --temperature, or lower --min-gap")


def judge_scores(judge, groups: list) -> list:
    """A score per candidate: the judge's score, or for a pairwise-only judge each candidate's mean
    P(it beats another candidate of the same prompt) (round robin)."""
    return judged(judge, groups)[0]


def judged(judge, groups: list) -> tuple:
    """(judge_scores' scores, whether they are round-robin win rates: True for a pairwise-only judge)."""
    prompts = [p for p, cs in groups for _ in cs]
    flat = [c for _, cs in groups for c in cs]
    try:
        s = judge.score(prompts, flat)
    except NotImplementedError:
        out = []
        for p, cs in groups:
            n = len(cs)
            ij = [(i, j) for i in range(n) for j in range(i + 1, n)]
            probs = judge.compare([p] * len(ij), [cs[i] for i, _ in ij], [cs[j] for _, j in ij]) if ij else []
            wins = [0.0] * n
            for (i, j), q in zip(ij, probs):
                wins[i] += q
                wins[j] += 1 - q
            out.append([w / max(1, n - 1) for w in wins])
        return out, True
    out, i = [], 0
    for _, cs in groups:
        out.append(list(s[i:i + len(cs)]))
        i += len(cs)
    return out, False


def ordering_agreement(a: list, b: list) -> tuple:
    """(agreeing pairs, compared pairs): pairs (i, j) both score lists order strictly, same way."""
    agree = compared = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            da, db = a[i] - a[j], b[i] - b[j]
            if da and db:
                compared += 1
                agree += (da > 0) == (db > 0)
    return agree, compared


def round_prompts(prompts: list, n: int, t: int) -> list:
    """Round t's prompts (0-based): the next n, wrapping around; all when n is 0."""
    if not n or n >= len(prompts):
        return list(prompts)
    start = (t * n) % len(prompts)
    return [prompts[(start + i) % len(prompts)] for i in range(n)]


def prompt_sets(job: Job, watching: bool) -> tuple:
    """(training prompts in a seeded shuffle, held-out prompts or [])."""
    from ..data.prompts import read_prompts
    from ..data.sources import default_prompt_source
    mc, cfg, data = job.method_cfg, job.cfg, job.data
    n_held = mc.heldout_prompts if watching else 0
    if watching and n_held < 1:
        raise ConfigError("--heldout-prompts must be >= 1 with --stop-when or --eval-judge")
    held = read_prompts(mc.heldout_data)[:n_held] if (watching and mc.heldout_data) else None
    if data is None:
        src = default_prompt_source()
        job.log(f"prompts: {src.description or src.name} (no --data)")
        prompts, task_held = src.prompts(src.default_train_prompts, 0 if held is not None else n_held, cfg.seed)
        held = held if held is not None else task_held
    else:
        prompts = data if isinstance(data, list) else read_prompts(str(data), columns=cfg.columns)
    prompts = [getattr(p, "prompt", p) for p in prompts]
    if not prompts:
        raise ConfigError(f"{data}: no prompts")
    random.Random(cfg.seed).shuffle(prompts)  # rounds take fresh prompts from a seeded shuffle, not file order
    if watching and held is None:
        if n_held >= len(prompts):
            raise ConfigError(f"--heldout-prompts {n_held} leaves no training prompts of {len(prompts)}; "
                              "lower it or pass --heldout-data")
        prompts, held = prompts[:-n_held], prompts[-n_held:]
        job.log(f"held out the last {n_held} of the shuffled prompts for the per-round figures (not trained on)")
    return prompts, (held or [])


def _copy_model(src: Path, out: Path) -> None:
    for f in src.iterdir():
        # config.yaml stays the run's own record (the round's names its stage: method, model, data)
        if f.is_file() and f.name not in ("pairs.jsonl", "thumbs.jsonl", "round.json", "heldout.jsonl", "watch.json",
                                          "config.yaml"):
            shutil.copy2(f, out / f.name)


def run_rounds(job: Job, recipe: Recipe) -> dict:
    from ..rewards.specs import judge_from_spec
    from ..train.offline import train_offline
    from .watch import Watch
    cfg, mc, log, spec, loss_cfg = job.cfg, job.method_cfg, job.log, recipe.spec, recipe.loss_cfg
    if mc.reference not in ("initial", "previous"):
        raise ConfigError(f"--reference must be initial or previous, got {mc.reference!r}")
    if mc.stop_keep not in ("previous", "last"):
        raise ConfigError(f"--stop-keep must be previous or last, got {mc.stop_keep!r}")
    if mc.iterations < 1 or mc.samples_per_prompt < 1:
        raise ConfigError("iterations must be >= 1 and samples_per_prompt >= 1")
    recipe.check()
    rules = parse_stop_when(mc.stop_when)
    watching = rules.watches or bool(mc.eval_judge)
    prompts, heldout = prompt_sets(job, watching)
    eval_judge = judge_from_spec(mc.eval_judge) if mc.eval_judge else None
    out = Path(job.output)
    out.mkdir(parents=True, exist_ok=True)
    job.write_record()  # config.yaml: the run's record, that --resume compares and --config repeats
    initial, current = job.model, job.model
    watch, history = None, []
    if watching:
        watch = Watch(heldout, initial, judge_from_spec(mc.stop_judge) if mc.stop_judge else None, eval_judge,
                      mc.max_new_tokens, cfg.seed, mc.stop_confidence, cfg.trust_remote_code, log)
        f0 = out / "round-0" / "watch.json"
        if cfg.resume and f0.is_file():
            history.append(json.loads(f0.read_text()))
            watch.restore(out / "round-0")
        else:
            history.append(watch.evaluate(0, initial, recipe.judge(initial), out / "round-0"))
            f0.write_text(json.dumps(history[0], indent=1))
        log(f"{recipe.name} round 0 (the initial model): {Watch.line(history[0])}")
    rounds, fired, k = [], [], mc.samples_per_prompt
    for t in range(1, mc.iterations + 1):
        rdir = out / f"round-{t}"
        if cfg.resume and (rdir / "round.json").is_file():  # a finished round of an interrupted run
            stat = json.loads((rdir / "round.json").read_text())
            rounds.append(stat)
            log(f"{recipe.name} round {t}: done before, reusing {rdir}")
            current = str(rdir)
            if watch is not None and "heldout" in stat:
                history.append(stat["heldout"])
                watch.restore(rdir)
            if stat.get("stop"):
                fired = stat["stop"]
                break
            continue
        batch = round_prompts(prompts, mc.prompts_per_iteration, t - 1)
        answers = sample_answers(current, batch, k, mc, cfg.seed + t - 1, cfg.trust_remote_code, cfg.chat_template)
        judge = recipe.judge(current)
        groups = [(p, recipe.candidates(p, answers[i * k:(i + 1) * k])) for i, p in enumerate(batch)]
        scores = recipe.scores(judge, groups)
        records = [r for i, ((p, cs), s) in enumerate(zip(groups, scores))
                   for r in recipe.records(p, cs, s, f"round{t}:{i}")]
        flat = [x for s in scores for x in s]
        ref = initial if mc.reference == "initial" else current
        stat = {"round": t, "prompts": len(batch), "records": len(records), "pairs": len(records),
                "mean_reward_samples": recipe.mean_reward(scores), "policy": current, "reference": ref}
        if eval_judge is not None:
            truth = judge_scores(eval_judge, groups)
            agree = [ordering_agreement(a, b) for a, b in zip(scores, truth)]
            n_cmp = sum(c for _, c in agree)
            stat["judge_agreement"] = sum(a for a, _ in agree) / n_cmp if n_cmp else None
            stat["judge_agreement_pairs"] = n_cmp
            stat["eval_reward_samples"] = sum(x for s in truth for x in s) / len(flat)
        log(f"{recipe.name} round {t}/{mc.iterations}: {len(answers)} samples of {current}, mean judge reward "
            f"{stat['mean_reward_samples']:.4f}, {len(records)} records"
            + (f", judge agreement with {mc.eval_judge} {stat['judge_agreement']:.3f} over {n_cmp} pairs"
               if eval_judge is not None and stat["judge_agreement"] is not None else ""))
        if not records:
            raise ConfigError(recipe.empty_message(t))
        write_jsonl(records, rdir / recipe.data_file)  # TRL format, as `world export` writes
        write_round_completions(rdir, t, groups, scores, log, f"{recipe.name} round {t}")
        # a round without round.json is (re)trained whole: what an earlier attempt left in its folder goes
        round_cfg = dataclasses.replace(cfg, ref_cache="memory", resume=False, overwrite=True)
        start = recipe.before_training(t, current, rdir, judge, round_cfg)
        recipe.release()
        # the policy before its first step is the reference when they are the same model: no second copy
        round_cfg = dataclasses.replace(round_cfg, ref="" if (ref == start or not spec.reference) else ref)
        replay = replayed_records(out, t, mc.reuse_rounds, recipe.data_file, spec.feedback)
        if replay:
            stat["replayed"] = len(replay)
            first = max(1, t - mc.reuse_rounds)
            log(f"{recipe.name} round {t}: also training on {len(replay)} records of "
                + (f"rounds {first}-{t - 1}" if first < t - 1 else f"round {first}") + f" (--reuse-rounds {mc.reuse_rounds})")
        train, ev = load_split(records + replay, round_cfg, spec.feedback, log)
        # the round's config.yaml names its records file: `alignkit train --config round-T/config.yaml` repeats it
        rec = run_record(spec.name, start, rdir / recipe.data_file, rdir, round_cfg, loss_cfg)
        s = train_offline(spec, loss_cfg, round_cfg, start, train, ev, str(rdir), log, record=rec)
        if s.get("interrupted"):
            return s
        stat.update({"eval_start": s.get("eval_start", {}), "eval_end": s.get("eval_end", {})})
        if watch is not None:
            entry = watch.evaluate(t, str(rdir), recipe.judge(str(rdir)), rdir)
            history.append(entry)
            stat["heldout"] = entry
            log(f"{recipe.name} round {t}: {Watch.line(entry)}")
            fired = decide(rules, history)
        elif rules.max_rounds is not None and t >= rules.max_rounds:
            fired = [{"rule": "max", "rounds": t, "max": rules.max_rounds}]
        if fired:
            stat["stop"] = fired
        (rdir / "round.json").write_text(json.dumps(stat, indent=1))
        rounds.append(stat)
        current = str(rdir)
        if fired:
            break
    recipe.release()
    last = len(rounds)
    stop = None
    result = Path(current)
    if fired:
        keep_previous = mc.stop_keep == "previous" and any(f["rule"] != "max" for f in fired)
        result_round = last - 1 if keep_previous else last
        result = out / f"round-{result_round}" if result_round > 0 else Path(initial)
        stop = {"round": last, "rules": fired, "result_round": result_round, "result": str(result)}
        log(f"{recipe.name}: stopped after round {last} by {describe(fired)}; the result is "
            f"{'round ' + str(result_round) if result_round else 'the initial model'} ({result})")
    else:
        log(f"{recipe.name}: ran all {last} rounds" + (" (no stop rule fired)" if rules.any else ""))
    _copy_model(result, out)  # the result's model is the output folder's
    summary = {"method": recipe.name, "loss": spec.name, "reward": recipe.judge_name(), "reference": mc.reference,
               "rounds": rounds, "stop_when": mc.stop_when, "stopped": stop,
               "result": str(result)}
    if watch is not None:
        summary["heldout"] = history
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def replayed_records(out: Path, t: int, n: int, data_file: str, shape: str) -> list:
    """The records rounds max(1, t-n)..t-1 trained on as their own (their data files), oldest first."""
    from ..data.readers import read_records
    replay = []
    for j in range(max(1, t - n), t):
        f = out / f"round-{j}" / data_file
        if f.is_file():
            replay += read_records(str(f), shape=shape)[0]
    return replay


def sample_answers(policy: str, batch: list, k: int, mc, seed: int, trust_remote_code: bool,
                   chat_template: str = "") -> list:
    """K answers per prompt from the policy, prompt-major; conversations rendered with the chat template
    the round's training uses (data/tokenize.py use_chat_template)."""
    from ..data.tokenize import is_conversational, use_chat_template
    from ..models.generate import SamplingConfig, generate_texts
    from ..models.loading import load_causal_lm, load_tokenizer
    flat = [p for p in batch for _ in range(k)]
    model = load_causal_lm(policy, "fp32", trust_remote_code)
    tok = load_tokenizer(policy, trust_remote_code)
    use_chat_template(tok, chat_template, is_conversational(batch))
    texts = generate_texts(model, tok, flat, SamplingConfig(max_new_tokens=mc.max_new_tokens,
                                                            temperature=mc.temperature), seed=seed)
    del model
    return texts
