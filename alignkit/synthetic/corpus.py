"""The generated corpus the base model learns from: desired and undesired behaviours both common.

A response to a prompt is drawn from a behaviour mix (`BehaviourRates`): per family a core act (the
right sum or a wrong one; a refusal or harmful compliance; help or over-refusal; an on-topic or an
off-topic note), then independent style draws: rude, polite, rambling. Pre-training text uses a
messier mix than the SFT demonstrations, as web text is messier than curated demonstrations; both keep
every flaw common enough that alignment has something to fix. Only training-split prompts are used.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from .prompts import BENIGN, HARMFUL, PromptInfo, sample_prompts


@dataclass(frozen=True)
class BehaviourRates:
    correct: float = 0.7  # arithmetic: the right sum (else off by a little or a lot)
    refuse_harmful: float = 0.5  # harmful: refuse (else comply)
    help_benign: float = 0.7  # benign-but-risky: help (else over-refuse)
    on_topic: float = 0.75  # open: name the person (else someone else, or nothing)
    over_refuse_other: float = 0.04  # arithmetic/open: refuse anyway
    rude: float = 0.2  # add a rude remark
    polite: float = 0.4  # add a polite closing (when not rude)
    ramble: float = 0.2  # add a long digression


PRETRAIN_RATES = BehaviourRates(correct=0.65, refuse_harmful=0.45, help_benign=0.65, on_topic=0.7,
                                rude=0.25, polite=0.35, ramble=0.25)
SFT_RATES = BehaviourRates()

REFUSALS = ("Sorry, I can't help with that.", "I cannot help with that request.", "I won't help with that. It could hurt someone.",
            "Sorry, I must decline. That could cause harm.", "I can't help you {req}.")
OVER_REFUSALS = ("Sorry, I can't help with that.", "I cannot help with that request.",
                 "I won't help with that. It sounds risky.")
COMPLIANCE = ("Sure. First get what you need, then {req} when nobody is watching.",
              "Easy. To {req}, plan it at night and leave no trace.",
              "Here is how to {req}: find the {topic}, wait until it is quiet, then act fast.",
              "Sure thing. You {req} by getting close to the {topic} and striking quickly.")
HELP = {
    "process": "Find its process id with ps, then run kill with that id.",
    "photo": "Use soft light, hold the camera still and frame your photo.",
    "balloon": "Stretch the balloon, blow steady breaths, then tie the end.",
    "egg": "Tap the egg on a flat surface and pull the shell apart.",
    "chess": "In a chess problem, look at checks, captures and threats first.",
    "weeds": "Pull the weeds by the root and cover the soil with mulch.",
    "script": "Make the script executable with chmod, then run it.",
    "thread": "Signal the thread to stop with a flag, then join it.",
    "talk": "Practice your talk, tell one story and smile at the room.",
    "habit": "Replace the habit with a small new routine and track it daily.",
    "heat": "Drink water, stay in the shade and rest when the heat peaks.",
    "grill": "Open the lid, light the grill and let it heat for ten minutes.",
    "website": "Start from a simple template and edit one page of the website.",
    "cold": "Rest, drink warm tea and give the cold a few days.",
    "serve": "Toss the ball high and snap your wrist through the serve.",
    "notes": "Shred the old notes or burn them in a safe place.",
}
ARITH_RIGHT = ("{q} = {s}.", "{q} is {s}.", "Sure, {q} = {s}.")  # the sum next to its operands
OPEN_GOOD = {
    "thanks": ("Dear {n}, thank you so much for your help. I really appreciate it.",
               "Thank you, {n}! Your kindness meant a lot to me."),
    "hello": ("Hello {n}! It is lovely to meet you.", "Hi {n}, I hope you are having a good day."),
    "birthday": ("Happy birthday, {n}! Wishing you a wonderful year.", "Happy birthday {n}, enjoy your special day!"),
    "getwell": ("Get well soon, {n}. We are all thinking of you.", "Dear {n}, rest up and feel better soon."),
    "welcome": ("Welcome to the team, {n}! We are glad to have you.", "Welcome aboard, {n}. We are excited to work with you."),
    "goodbye": ("Goodbye, {n}. It was a joy to work with you.", "Farewell {n}, we will miss you a lot."),
}
OFF_TOPIC = ("I like turtles and rainy days.", "The weather is nice today.", "Bananas are yellow and sweet.",
             "My favourite color is green.", "Trains are faster than buses.")
RUDE = ("Ugh, fine.", "Whatever.", "That is a dumb question.", "Figure it out yourself next time.",
        "Stop bothering me.")
POLITE = ("Hope this helps!", "Happy to help!", "Thank you for asking.", "Good luck!")
RAMBLE = ("Also, I keep thinking about lunch and my old shoes and so on and so on.",
          "By the way, this reminds me of my cousin and a very big sandwich.",
          "Anyway, there is so much more to say, and I could go on and on.")


def respond(info: PromptInfo, rng: random.Random, rates: BehaviourRates) -> tuple:
    """-> (response text, flags dict) for one prompt under a behaviour mix."""
    flags = {}
    fam = info.family
    if fam in ("arithmetic", "open") and rng.random() < rates.over_refuse_other:
        core, flags["refusal"] = rng.choice(OVER_REFUSALS), True
    elif fam == "arithmetic":
        s = info.answer
        flags["correct"] = rng.random() < rates.correct
        if not flags["correct"]:
            s = max(0, s + rng.choice((-3, -2, -1, 1, 2, 3, 10, -10)))  # never equal to the sum
        core = rng.choice(ARITH_RIGHT).format(q=info.request, s=s)
    elif fam == "harmful":
        flags["refusal"] = rng.random() < rates.refuse_harmful
        pool = REFUSALS if flags["refusal"] else COMPLIANCE
        core = rng.choice(pool).format(req=info.request, topic=info.topic)
    elif fam == "benign":
        flags["refusal"] = rng.random() >= rates.help_benign
        core = rng.choice(OVER_REFUSALS) if flags["refusal"] else HELP[info.topic]
    elif fam == "open":
        flags["on_topic"] = rng.random() < rates.on_topic
        core = rng.choice(OPEN_GOOD[info.request]).format(n=info.topic) if flags["on_topic"] else rng.choice(OFF_TOPIC)
    else:
        raise ValueError(f"no responses for family {fam!r}")
    parts = [core]
    flags["rude"] = rng.random() < rates.rude
    if flags["rude"]:
        parts.insert(0 if rng.random() < 0.5 else 1, rng.choice(RUDE))
    elif rng.random() < rates.polite:
        parts.append(rng.choice(POLITE))
        flags["polite"] = True
    flags["ramble"] = rng.random() < rates.ramble
    if flags["ramble"]:
        parts.append(rng.choice(RAMBLE))
    return " ".join(parts), flags


def render_transcript(prompt: str, response: str) -> str:
    """A conversation as plain text, in the tiny tokenizer's chat template (for pre-training)."""
    return f"<|user|>\n{prompt}\n<|assistant|>\n{response}"


def pretraining_texts(n: int, seed: int, rates: BehaviourRates = PRETRAIN_RATES) -> list:
    """n transcripts of training-split prompts with responses drawn from `rates`."""
    rng = random.Random(f"pretrain|{seed}")
    return [render_transcript(p.text, respond(p, rng, rates)[0])
            for p in sample_prompts(n, "train", seed=seed * 7 + 1)]


def sft_pairs(n: int, seed: int, rates: BehaviourRates = SFT_RATES) -> list:
    """n (prompt text, response) demonstrations from training-split prompts."""
    rng = random.Random(f"sft|{seed}")
    return [(p.text, respond(p, rng, rates)[0]) for p in sample_prompts(n, "train", seed=seed * 7 + 2)]


def tokenizer_texts() -> list:
    """Every phrase the world can produce, for training the BPE tokenizer (covers held-out prompts'
    words too, so no held-out prompt hits unknown merges)."""
    from .prompts import universe
    texts = [p.text for items in universe("all").values() for p in items]
    texts += list(REFUSALS) + list(OVER_REFUSALS) + list(HELP.values()) + list(ARITH_RIGHT)
    texts += [t for v in OPEN_GOOD.values() for t in v] + list(OFF_TOPIC) + list(RUDE) + list(POLITE) + list(RAMBLE)
    texts += [c.format(req=r, topic=t) for c in COMPLIANCE for r, t in HARMFUL]
    texts += [" ".join(str(i) for i in range(0, 50))] * 200  # every number a sum can be: one token each
    texts += [b for b, _ in BENIGN]
    return texts
