"""`alignkit constitution revise|prefs|show`: Constitutional AI (Bai et al. 2022, arXiv 2212.08073) on
any model: the supervised stage (critique and revision -> SFT data), the AI-preference stage (a
feedback model's multiple-choice choice under a principle -> preference data), and the constitution
itself. The library is alignkit/judges/constitution.py; its ReviseConfig and PreferenceConfig are the
flags.

    alignkit constitution revise --model hf:DIR --data prompts.jsonl --output sl-cai.jsonl [--rounds N]
    alignkit constitution prefs  --feedback hf:DIR --data prompts.jsonl --policy hf:SLCAI --output prefs.jsonl
    alignkit constitution show   [--constitution FILE]
"""
from __future__ import annotations

from dataclasses import dataclass

from ..judges.constitution import PreferenceConfig, ReviseConfig
from .common import Options, add_command, add_group


def cmd_revise(cfg: ReviseConfig) -> int:
    from ..judges.constitution import run_revise
    run_revise(cfg)
    return 0


def cmd_prefs(cfg: PreferenceConfig) -> int:
    from ..judges.constitution import run_preferences
    run_preferences(cfg)
    return 0


@dataclass(frozen=True)
class ShowOptions:
    constitution: str = "default"  # default (the shipped one) or a constitution file (JSONL) to check and print
    principles: str = "all"  # which principles: harmless | helpful | all | NAME[+NAME...]


def cmd_show(opts: ShowOptions) -> int:
    from ..judges.constitution import read_constitution
    c = read_constitution(opts.constitution)
    pool = c.select(opts.principles)
    print(f"{c.source}: {len(c.principles)} principles "
          f"({sum(p.kind == 'harmless' for p in c.principles)} harmless, "
          f"{sum(p.kind == 'helpful' for p in c.principles)} helpful)")
    for p in pool:
        print(f"\n[{p.name}] ({p.kind})\n  critique: {p.critique}\n  revision: {p.revision}\n  choice:   {p.choice}")
    return 0


def register(sub):
    _, group = add_group(
        sub, "constitution", help="Constitutional AI: critique-and-revision SFT data, AI preferences under principles",
        description="Constitutional AI (Bai et al. 2022): `revise` samples a response per prompt, has a model "
                    "critique and rewrite it against randomly drawn principles, and writes the revisions as SFT "
                    "data; `prefs` has a feedback model choose between two responses under a principle phrased "
                    "as a multiple-choice question and writes preference pairs with its probability; `show` "
                    "checks and prints a constitution. Both stages resume when rerun after an interruption.")
    add_command(group, "revise", cmd_revise, Options(ReviseConfig, "supervised stage (SL-CAI)"),
                help="the supervised stage: sample, critique, revise (N rounds) -> SFT demonstrations",
                description="For each prompt: sample a response from --model, then for --rounds rounds draw a "
                            "principle (seeded), ask --critic (default: the same model) for a critique against it "
                            "and a revision. Writes prompt/completion rows (the last revision) for `alignkit train "
                            "sft`, with the first response and every critique and revision alongside, and "
                            "OUTPUT's .report.json. Resumable: rerun the same command after an interruption.")
    add_command(group, "prefs", cmd_prefs, Options(PreferenceConfig, "AI-preference stage (RL-CAI)"),
                help="the AI-preference stage: a feedback model's choice under a principle -> preference pairs",
                description="Compare every two responses of each prompt (from --data, or sampled from --policy) "
                            "with --feedback under a principle drawn per comparison and asked as a multiple-choice "
                            "question; the preference is the probability of each option's label (both orders "
                            "averaged). Writes prompt/chosen/rejected rows with weight = P(chosen > rejected) and "
                            "the principle, for `alignkit train rm` or `train dpo`, and the label report "
                            "(position consistency, calls). Resumable.")
    add_command(group, "show", cmd_show, Options(ShowOptions, "show options"),
                help="check a constitution file and print its principles",
                description="Read a constitution (the shipped default or a JSONL file), report any problem as "
                            "FILE:LINE: field 'F': ..., and print the selected principles.")
