"""Turning (prompt, completion) into token ids with a completion mask.

- Conversational prompts go through the tokenizer's own chat template when it has one, else through
  DEFAULT_CHAT_TEMPLATE (documented below). Plain-text prompts are used as they are (TRL "standard").
- The prompt and the completion are tokenized separately and concatenated, so the boundary is exact
  and the loss sees completion tokens only. EOS is appended to the completion and trained, so the
  model learns to stop.
- Truncation keeps the prompt's *end* (the part next to the answer) and the completion's *start*.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Used when a tokenizer has no chat template of its own: one line per turn, role in angle bars.
DEFAULT_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


# Built-in chat templates for --chat-template NAME (the formats these model families were tuned with;
# markers such as <|im_start|> are plain text to a tokenizer that lacks them as special tokens).
CHAT_TEMPLATES = {
    "alignkit": DEFAULT_CHAT_TEMPLATE,
    "chatml": ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
               "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"),
    "zephyr": ("{% for m in messages %}{{ '<|' + m['role'] + '|>\n' + m['content'] + eos_token + '\n' }}"
               "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"),
    "llama-3": ("{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n'"
                " + m['content'] | trim + '<|eot_id|>' }}{% endfor %}"
                "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"),
}


def chat_template_text(spec: str) -> str:
    """--chat-template: a built-in name (CHAT_TEMPLATES) or a Jinja file. Raises ConfigError."""
    from pathlib import Path

    from ..errors import ConfigError
    if spec in CHAT_TEMPLATES:
        return CHAT_TEMPLATES[spec]
    p = Path(spec)
    if p.is_file():
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"--chat-template: {spec}: cannot read it: {e}")
        if "messages" not in text:
            raise ConfigError(f"--chat-template: {spec}: not a chat template (a Jinja template over `messages`)")
        return text
    raise ConfigError(f"--chat-template: {spec!r} is neither a built-in template ({', '.join(CHAT_TEMPLATES)}) "
                      "nor a Jinja file")


def use_chat_template(tokenizer, spec: str, conversational: bool) -> str | None:
    """Set the chat template a run trains with on `tokenizer`, so that saving the tokenizer saves it:
    --chat-template when given; else the tokenizer's own; else, for conversational data, the built-in
    `alignkit` one (DEFAULT_CHAT_TEMPLATE). Returns a note for the log, or None when nothing changed."""
    if spec:
        tokenizer.chat_template = chat_template_text(spec)
        return f"chat template: {spec} (saved with the tokenizer)"
    if getattr(tokenizer, "chat_template", None) or not conversational:
        return None
    tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    return ("chat template: the model has none; conversations are rendered with alignkit's built-in one "
            "(saved with the tokenizer; --chat-template NAME|FILE picks another)")


def is_conversational(prompts) -> bool:
    """Any prompt given as messages (TRL's conversational format)."""
    return any(not isinstance(p, str) for p in prompts)


def render_prompt(tokenizer, prompt) -> str:
    """The text a model continues for this prompt."""
    if isinstance(prompt, str):
        return prompt
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return _render_default(prompt)


def _render_default(messages) -> str:
    out = "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages)
    return out + "<|assistant|>\n"


@dataclass
class Encoded:
    prompt_ids: list
    completion_ids: list
    truncated: bool = False


@dataclass
class TruncationReport:
    total: int = 0
    truncated: int = 0
    dropped: int = 0
    notes: list = field(default_factory=list)

    def summary(self) -> str:
        return (f"tokenized {self.total} sequences: {self.truncated} truncated, "
                f"{self.dropped} dropped (no completion token left)")


NO_LIMIT = 2 ** 62  # a max_length that never truncates


def _stderr(msg: str) -> None:
    import sys
    print(msg, file=sys.stderr)


def trained_max_length(explicit: int | None, trained: dict, model_config, log=_stderr) -> tuple:
    """(max_length, max_prompt_length) for scoring with a trained model: the explicit value, else the
    one it was trained with (its run's config), else its context window (said so on stderr, or `log`: never on stdout, which may carry JSON)."""
    if explicit:
        return explicit, trained.get("max_prompt_length") or None
    if trained.get("max_length"):
        return trained["max_length"], trained.get("max_prompt_length") or None
    ctx = getattr(model_config, "max_position_embeddings", None) or 512
    log(f"note: no training max_length recorded; scoring with the model's context of {ctx} tokens")
    return ctx, None


class Encoder:
    """Caches prompt encodings: the same prompt appears in every pair/list of a record."""

    def __init__(self, tokenizer, max_length: int, max_prompt_length: int | None = None,
                 add_eos: bool = True):
        self.tok = tokenizer
        self.max_length = max_length
        self.max_prompt_length = max_prompt_length or max_length // 2
        self.add_eos = add_eos
        self.report = TruncationReport()
        self._prompt_cache: dict = {}

    @classmethod
    def untruncated(cls, tokenizer, add_eos: bool = True) -> "Encoder":
        """An encoder that never truncates (sampling prompts, scoring whole texts)."""
        return cls(tokenizer, NO_LIMIT, add_eos=add_eos)

    def prompt_ids(self, prompt) -> list:
        key = prompt if isinstance(prompt, str) else repr(prompt)
        ids = self._prompt_cache.get(key)
        if ids is None:
            ids = self.tok(render_prompt(self.tok, prompt), add_special_tokens=False)["input_ids"]
            bos = self.tok.bos_token_id
            if bos is not None and (not ids or ids[0] != bos):
                ids = [bos] + ids
            self._prompt_cache[key] = ids
        return ids

    def completion_ids(self, completion: str) -> list:
        ids = self.tok(completion, add_special_tokens=False)["input_ids"]
        if self.add_eos and self.tok.eos_token_id is not None:
            ids = ids + [self.tok.eos_token_id]
        return ids

    def encode(self, prompt, completion: str) -> Encoded | None:
        """None when nothing of the completion fits (counted as dropped)."""
        p, c = self.prompt_ids(prompt), self.completion_ids(completion)
        self.report.total += 1
        truncated = False
        if len(p) + len(c) > self.max_length:
            truncated = True
            keep_p = min(len(p), max(self.max_prompt_length, self.max_length - len(c)))
            p = p[len(p) - keep_p:]  # keep the prompt's end
            c = c[: self.max_length - len(p)]  # keep the completion's start
        if not c:
            self.report.dropped += 1
            return None
        self.report.truncated += truncated
        return Encoded(p, c, truncated)
