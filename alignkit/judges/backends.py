"""What an LLM judge needs from a language model, whoever serves it.

A backend answers two questions about a *query* (plain text for a completion model, or a list of
{"role", "content"} messages for a chat model):

- `label_logprobs(queries, labels)`: log P(label | query) for each of a few short label strings
  ("1"/"2", "A"/"B", "0".."5"), read from the model's next-token distribution. This is how RLAIF reads
  a preference (Lee et al. 2023, arXiv 2309.00267, sec. 2.1: the probability of the tokens "1" and
  "2" after the prompt, normalised over the two) instead of parsing generated text.
- `generate(queries, max_new_tokens, temperature, seed)`: text, for chain-of-thought rationales and
  for judges that write their verdict out.

Backends: `hf:DIR` (a local Hugging Face folder, `alignkit.judges.hf`) and `http(s)://HOST[:PORT]/v1`
(any OpenAI-compatible server: vLLM, a hosted API, `alignkit serve --model DIR`;
`alignkit.judges.client`). Each counts its calls and tokens (`usage()`).
"""
from __future__ import annotations

import math
import threading

from ..errors import ConfigError


class Backend:
    """A language model a judge can query. Subclasses implement the two methods below."""

    name = "backend"
    chat = False  # queries go out as chat messages (True) or as plain text (False)

    def __init__(self):
        self._usage_lock = threading.Lock()
        self._usage = {"calls": 0, "cache_hits": 0, "retries": 0, "prompt_tokens": 0, "completion_tokens": 0}

    def label_logprobs(self, queries: list, labels: tuple) -> list:
        """[[log P(label_k | query_i) for k] for i]: unnormalised over the labels."""
        raise NotImplementedError

    def generate(self, queries: list, max_new_tokens: int, temperature: float = 0.0, seed: int = 0) -> list:
        """One completion string per query (greedy at temperature 0)."""
        raise NotImplementedError

    def count(self, **deltas) -> None:
        with self._usage_lock:
            for k, v in deltas.items():
                self._usage[k] = self._usage.get(k, 0) + v

    def usage(self) -> dict:
        """Counters since the backend was made: model calls (cache hits are not calls), tokens."""
        with self._usage_lock:
            return dict(self._usage)


def logsumexp(values: list) -> float:
    finite = [v for v in values if v != -math.inf]
    if not finite:
        return -math.inf
    top = max(finite)
    return top + math.log(sum(math.exp(v - top) for v in finite))


def normalise(logprobs: list) -> list:
    """Probabilities over the labels only: softmax of their log-probs (RLAIF sec. 2.1). Labels the
    model gives no mass at all share equally, so two missing labels mean 0.5 each, not a crash."""
    z = logsumexp(logprobs)
    if z == -math.inf:
        return [1.0 / len(logprobs)] * len(logprobs)
    return [math.exp(v - z) for v in logprobs]


def labels_from_top(top: list, labels: tuple) -> tuple:
    """Label log-probs from a server's top-k list [(token_text, logprob), ...] for one position.

    A label's log-prob is the log-sum-exp of every listed token whose text, stripped of whitespace,
    is the label (" 1" and "1" are both the answer "1"). A label outside the top k is not lost: its
    probability is at most the smallest listed one and at most the mass the list leaves over, and we
    use that bound (so the verdict between two missing labels is 0.5). Returns (logprobs, missing)."""
    listed = [lp for _, lp in top]
    floor = -math.inf
    if listed:
        rest = 1.0 - sum(math.exp(lp) for lp in listed)
        floor = min(min(listed), math.log(rest) if rest > 1e-12 else -27.6)  # log(1e-12)
    out, missing = [], False
    for label in labels:
        hits = [lp for tok, lp in top if tok.strip() == label]
        if hits:
            out.append(logsumexp(hits))
        else:
            out.append(floor)
            missing = True
    return out, missing


# Local judge models by name: the folder `alignkit models get NAME --output runs/NAME` (and `make smollm2`)
# writes, relative to the working directory. `smollm2` (SmolLM2-135M-Instruct) is the default local judge:
# `llm-pair:smollm2`, `llm-score:smollm2,template=harmless`.
LOCAL_MODELS = {"smollm2": "smollm2-135m-instruct", "smollm2-135m-instruct": "smollm2-135m-instruct"}
DEFAULT_LOCAL_JUDGE = "smollm2"


def local_model_dir(name: str) -> str:
    """The folder of a named local model; a one-line error saying how to fetch it when it is not there."""
    from pathlib import Path
    full = LOCAL_MODELS[name]
    folder = Path("runs") / full
    if not (folder / "config.json").is_file():
        raise ConfigError(f"judge backend {name!r} reads the model folder {folder}, which holds no model: fetch it "
                          f"with `alignkit models get {full} --output {folder}` (or `make smollm2`), "
                          "or name a folder as hf:DIR")
    return str(folder)


def backend_from_spec(spec: str, **options) -> Backend:
    """`hf:DIR`, `http(s)://HOST[:PORT]/v1` or a local model's name (LOCAL_MODELS: `smollm2`) -> a
    Backend. Options are the backend's keyword arguments (from a judge spec's `key=value` pieces),
    already converted to their types."""
    spec = spec.strip()
    if spec in LOCAL_MODELS:
        from .hf import HFBackend
        return HFBackend(local_model_dir(spec), **options)
    if spec.startswith("hf:"):
        from .hf import HFBackend
        return HFBackend(spec[3:], **options)
    if spec.startswith(("http://", "https://")):
        from .client import HTTPBackend
        return HTTPBackend(spec, **options)
    raise ConfigError(f"judge backend {spec!r}: expected hf:DIR (a local model folder), "
                      f"{' or '.join(sorted(LOCAL_MODELS))} (a fetched local model) or "
                      "http(s)://HOST[:PORT]/v1 (an OpenAI-compatible server)")
