"""A model's context window, and the length flags checked against it before any work.

A sequence longer than the model's positions is not an error in torch for every architecture (rotary
models extrapolate silently, learned absolute positions index past their table), so alignkit checks:
- `--max-length` (prompt + completion in training) may not exceed the context: an error, not a clamp,
  since a clamp would change what the run trains on without saying so. The one exception is the
  default (TrainConfig's 512), which a shorter-context model lowers to its context, with a note;
- sampling (`--max-new-tokens` of RL, the iterative recipes and RSO): the longest prompt plus the new
  tokens must fit the context, and under RL, where prompts are cut to `--max-length` minus the new
  tokens, the new tokens must leave room for a prompt.
"""
from __future__ import annotations

from ..errors import ConfigError

POSITION_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length")


def context_length(config) -> int | None:
    """The model's number of positions from its transformers config (None when it does not say)."""
    for key in POSITION_KEYS:
        n = getattr(config, key, None)
        if isinstance(n, int) and n > 0:
            return n
    return None


def check_max_length(config, max_length: int, model: str = "the model", default: int | None = None,
                     log=print) -> int:
    """The max_length to train with: `max_length` itself, or the context when `max_length` is the
    untouched `default` and the context is shorter (with a note). Any other --max-length past the
    context is a one-line error naming both numbers."""
    ctx = context_length(config)
    if ctx is None or max_length <= ctx:
        return max_length
    if default is not None and max_length == default:
        log(f"note: --max-length {ctx}: the default {default} is past the context of {model} ({ctx} positions)")
        return ctx
    raise ConfigError(f"--max-length {max_length} is past the context of {model} ({ctx} positions); "
                      f"use --max-length {ctx} or less")


def check_new_tokens(max_new_tokens: int, max_length: int) -> None:
    """RL: prompts are cut to max_length - max_new_tokens, so the new tokens must leave room for one."""
    if max_new_tokens >= max_length:
        raise ConfigError(f"--max-new-tokens {max_new_tokens} leaves no room for the prompt within --max-length "
                          f"{max_length} (prompt + completion); lower --max-new-tokens or raise --max-length")


def check_prompts_fit(config, prompt_lengths, max_new_tokens: int) -> None:
    """Sampling: the longest prompt plus max_new_tokens within the context, else a one-line error."""
    ctx = context_length(config)
    longest = max(prompt_lengths, default=0)
    if ctx is not None and longest + max_new_tokens > ctx:
        raise ConfigError(f"--max-new-tokens {max_new_tokens}: the longest prompt ({longest} tokens) plus "
                          f"{max_new_tokens} new tokens passes the model's context ({ctx} positions); use "
                          f"--max-new-tokens {max(ctx - longest, 0)} or less, or shorter prompts")
