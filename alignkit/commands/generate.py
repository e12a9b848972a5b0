"""`alignkit generate`: completions for a prompts file, optionally scored by a judge.

    alignkit generate --model DIR --prompts FILE --output OUT.jsonl [--judge SPEC]
                      [--max-new-tokens N --temperature T --samples-per-prompt K --seed S --batch-size B]
                      [--turns first|all] [--as-chat auto|always|never] [--limit N] [--overwrite]

The work is alignkit/eval/generate.py (prompt formats, MT-Bench turns, the record format).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import option
from ..eval.generate import GenerateSettings
from .common import Options, add_command, required
from .rewards import SPEC_HELP


@dataclass(frozen=True)
class GenerateConfig:
    model: str = ""  # the model to sample (a local Hugging Face folder)
    prompts: str = ""  # prompts: a file, a hub-style folder of shards or a cached dataset's NAME[:SPLIT]; .jsonl/.json/.csv/.parquet rows with `prompt` (text or messages), `messages`, MT-Bench's `turns` or `instruction`; or .txt, one prompt per line
    output: str = ""  # JSONL to write: {prompt, completion, sample, [turn], [score], the row's other fields} per completion
    judge: str = ""  # score each completion with this judge and print the mean ("": no scoring); any judge spec: rm:DIR, rule:NAME, llm-score:hf:DIR, truth, file:F.py:FN, weighted sums
    limit: int = option(0, ge=0)  # only the first N prompts (0: all)
    overwrite: bool = False  # replace an existing --output (otherwise an existing file is refused)
    trust_remote_code: bool = False  # allow model code from the model folder
    num_threads: int = option(0, ge=0)  # torch CPU threads; 0 = the cores free when sampling starts

    def __post_init__(self):
        required(self, "model", "prompts", "output")


def cmd_generate(cfg: GenerateConfig, settings: GenerateSettings) -> int:
    from ..errors import AlignkitError, ConfigError
    from ..eval.generate import generate_records, read_prompt_file, score_completions, score_summary, write_jsonl_atomic
    from ..models.loading import load_causal_lm, load_tokenizer
    out = Path(cfg.output)
    if out.exists() and not cfg.overwrite:
        raise ConfigError(f"--output {out}: the file exists; pass --overwrite to replace it, or choose another path")
    if out.is_dir():
        raise ConfigError(f"--output {out}: a folder; expected a .jsonl file path")
    items = read_prompt_file(cfg.prompts, cfg.limit)  # a bad prompts file fails before the model loads
    judge = None
    if cfg.judge:  # a bad spec fails before sampling
        from ..rewards.specs import judge_from_spec
        from .rewards import make_judge
        judge = make_judge(judge_from_spec, cfg.judge)
    from ..models.threads import set_threads
    set_threads(cfg.num_threads)
    model = load_causal_lm(cfg.model, "fp32", cfg.trust_remote_code).eval()
    tok = load_tokenizer(cfg.model, cfg.trust_remote_code)
    multi = sum(1 for it in items if it.later_turns)
    turns = (f"; {multi} multi-turn rows, " + ("every turn answered" if settings.turns == "all" else
                                               "first turn only (--turns all answers every turn)")) if multi else ""
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731  (stdout carries only the summary)
    log(f"generating {settings.samples_per_prompt} completion(s) for {len(items)} prompts from {cfg.model}{turns}")
    t0 = time.time()
    records = generate_records(model, tok, items, settings, log=log)
    log(f"{len(records)} completions in {time.time() - t0:.1f}s")
    del model
    write_jsonl_atomic(str(out), records)  # before scoring: a judge that fails leaves the completions
    if judge is not None:
        try:
            score_completions(records, judge)
        except AlignkitError as e:
            raise AlignkitError(f"{e} (the {len(records)} completions are in {out}, without scores)") from None
        write_jsonl_atomic(str(out), records)
    summary = score_summary(records)
    line = f"wrote {len(records)} records to {out}"
    if summary:
        line += f"; mean score {summary['mean_score']:.4f} under {cfg.judge} (n={summary['n']})"
        for t, m in summary.get("mean_score_by_turn", {}).items():
            line += f"; turn {t}: {m:.4f}"
    print(line)
    return 0


def register(sub):
    add_command(sub, "generate", cmd_generate, GenerateConfig, Options(GenerateSettings, "sampling"),
                help="sample completions for a prompts file (MT-Bench turns too); optionally score them with a judge",
                description="Sample a model on a prompts file and write TRL prompt-completion records (JSONL, written "
                            "atomically). Text prompts go through the model's chat template when it has one (--as-chat). "
                            "MT-Bench's question.jsonl works as it is: --turns first answers each question's first "
                            "turn, --turns all asks each later turn after the model's own previous answers. With "
                            f"--judge SPEC ({SPEC_HELP}) every completion gets a `score` and the mean is printed.")
