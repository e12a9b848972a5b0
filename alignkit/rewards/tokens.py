"""Where the credit falls, token by token (the work of `alignkit rewards tokens`, commands/rewards.py).

"From r to Q*" (Rafailov et al. 2024, arXiv 2404.12358, sec. 4): a policy trained against a reference
with a DPO-family loss defines, for each completion token, the implicit reward
    r_t = beta * (log pi(y_t | x, y_<t) - log pi_ref(y_t | x, y_<t))        (`losses.token.token_rewards`)
whose sum over t is the sequence-level implicit reward beta * (log pi(y|x) - log pi_ref(y|x)).
`alignkit rewards tokens` prints each completion with its tokens coloured by r_t (green positive, red negative,
stronger for larger |r_t|), the sequence total and the five tokens with the largest |r_t|; pairwise
data shows the chosen and the rejected side, listwise data every response. --html writes the same view
as a self-contained page (hover a token for its value); --json prints the numbers.
"""
from __future__ import annotations

import html
import os
from dataclasses import dataclass, field

from ..data import records as R
from ..data.records import prompt_text

TOP_K = 5


@dataclass
class TokenView:
    """One completion and the implicit reward of each of its tokens (EOS included, last)."""
    record: int  # 0-based index of the record in the data file
    source: str  # "file:line"
    side: str  # "completion", "chosen", "rejected", "response 1", ...
    note: str  # the data's label for it: "thumbs up", "score 0.93", ""
    prompt: str
    ids: list = field(default_factory=list)
    pieces: list = field(default_factory=list)  # the text of each token (joined: the decoded completion)
    rewards: list = field(default_factory=list)  # r_t per token

    @property
    def total(self) -> float:
        return float(sum(self.rewards))

    def top(self, k: int = TOP_K) -> list:
        """[(position, piece, reward)] of the k tokens with the largest |reward|."""
        order = sorted(range(len(self.rewards)), key=lambda t: -abs(self.rewards[t]))[:k]
        return [(t, self.pieces[t], self.rewards[t]) for t in order]

    def to_dict(self) -> dict:
        return {"record": self.record, "source": self.source, "side": self.side, "note": self.note,
                "prompt": self.prompt, "total": self.total,
                "tokens": [{"id": i, "text": p, "reward": r} for i, p, r in zip(self.ids, self.pieces, self.rewards)],
                "top": [{"position": t, "text": p, "reward": r} for t, p, r in self.top()]}


# ---- what to show of each record ---------------------------------------------------------------
def completions_of(rec) -> list:
    """[(side, note, completion)] of one record: both sides of a pair, every response of a list."""
    if isinstance(rec, R.Pairwise):
        return [("chosen", "", rec.chosen), ("rejected", "", rec.rejected)]
    if isinstance(rec, R.Listwise):
        return [(f"response {k + 1}", f"score {s:g}", c) for k, (c, s) in enumerate(zip(rec.completions, rec.scores))]
    if isinstance(rec, R.Binary):
        return [("completion", "thumbs up" if rec.label else "thumbs down", rec.completion)]
    if isinstance(rec, R.Scored):
        return [("completion", f"score {rec.score:g}", rec.completion)]
    return [("completion", "", rec.completion)]


def token_pieces(tok, ids: list) -> list:
    """The text each token adds to the decoded completion (so the pieces join to the decoded text).
    A token ending inside a multi-byte character gets "" and the token completing it the character."""
    pieces, prev = [], ""
    for i in range(len(ids)):
        cur = tok.decode(ids[: i + 1], skip_special_tokens=False)
        if cur.endswith("\ufffd") and i + 1 < len(ids):
            pieces.append("")
            continue
        pieces.append(cur[len(prev):] if cur.startswith(prev) else tok.decode([ids[i]], skip_special_tokens=False))
        prev = cur
    return pieces


def compute_views(policy, ref, tok, encoder, records: list, beta: float, batch_size: int = 8) -> list:
    """TokenViews of every completion of `records`, rewards from one forward of each model per batch."""
    import torch
    from ..losses.token import token_rewards
    from ..train.forward import collate, sequence_logps
    items = []
    for i, rec in enumerate(records):
        for side, note, completion in completions_of(rec):
            enc = encoder.encode(rec.prompt, completion)
            if enc is None:  # nothing of the completion fits in max_length
                continue
            items.append((TokenView(i, rec.source, side, note, prompt_text(rec.prompt)),
                          (enc.prompt_ids, enc.completion_ids)))
    device = next(policy.parameters()).device
    for start in range(0, len(items), batch_size):
        chunk = items[start: start + batch_size]
        sb = collate([seq for _, seq in chunk], tok.pad_token_id).to(device)
        with torch.no_grad():
            lp, _ = sequence_logps(policy, sb)
            lr, _ = sequence_logps(ref, sb)
        r = token_rewards(lp, lr, beta).double().cpu()  # (n, Tc), completions right-aligned
        mask = sb.comp_mask.bool().cpu()  # (n, Tc)
        for row, (view, (_, comp)) in enumerate(chunk):
            view.ids = list(comp)
            view.rewards = r[row][mask[row]].tolist()
            view.pieces = token_pieces(tok, view.ids)
    return [view for view, _ in items]


# ---- colours ---------------------------------------------------------------------------------
def colour_scale(views: list) -> float:
    """|r| that gets the full colour: the 99th percentile of |r_t| over everything shown (1 if all 0)."""
    values = sorted(abs(r) for v in views for r in v.rewards)
    scale = values[min(len(values) - 1, int(0.99 * len(values)))] if values else 0.0
    return scale if scale > 0 else 1.0


def token_colour(reward: float, scale: float) -> tuple:
    """(background rgb, foreground rgb): white -> green (0, 160, 0) for r > 0, white -> red (200, 0, 0)
    for r < 0, linear in |r| / scale (clipped at 1)."""
    a = min(1.0, abs(reward) / scale)
    if reward >= 0:
        bg = (round(255 * (1 - a)), round(255 - 95 * a), round(255 * (1 - a)))
    else:
        bg = (round(255 - 55 * a), round(255 * (1 - a)), round(255 * (1 - a)))
    fg = (0, 0, 0) if a < 0.55 else (255, 255, 255)
    return bg, fg


def _ansi(rgb: tuple, background: bool, mode: str) -> str:
    layer = 48 if background else 38
    if mode == "24bit":
        return f"\x1b[{layer};2;{rgb[0]};{rgb[1]};{rgb[2]}m"
    r, g, b = (round(c / 255 * 5) for c in rgb)  # the 6x6x6 cube of the 256-colour palette
    return f"\x1b[{layer};5;{16 + 36 * r + 6 * g + b}m"


def colour_mode(choice: str, stream) -> str:
    """"24bit", "256" or "" (plain) for --color auto|always|never (auto: a TTY without NO_COLOR)."""
    if choice == "never" or (choice == "auto" and (os.environ.get("NO_COLOR") or not stream.isatty())):
        return ""
    return "24bit" if os.environ.get("COLORTERM", "").lower() in ("truecolor", "24bit") else "256"


# ---- terminal --------------------------------------------------------------------------------
def _shown(piece: str) -> str:
    return repr(piece)[1:-1] if piece.strip() == "" or "\n" in piece else piece


def render_terminal(views: list, beta: float, mode: str) -> str:
    """The coloured view (mode "24bit"/"256") or, plain, each token followed by [its reward]."""
    scale = colour_scale(views)
    out = []
    if mode:
        out.append(f"token rewards beta*(log pi - log pi_ref), beta={beta:g}: "
                   f"{_paint(' positive ', scale, scale, mode)} {_paint(' negative ', -scale, scale, mode)} "
                   f"full colour at |r| >= {scale:.4g}")
    else:
        out.append(f"token rewards beta*(log pi - log pi_ref), beta={beta:g}; each token is followed by [its reward]")
    for v in views:
        head = f"record {v.record} ({v.source}) {v.side}" + (f", {v.note}" if v.note else "")
        prompt = v.prompt if len(v.prompt) <= 300 else "..." + v.prompt[-300:]
        out.append("")
        out.append(("\x1b[1m" + head + "\x1b[0m") if mode else head)
        out.append(("\x1b[2m" if mode else "") + "prompt: " + prompt.replace("\n", "\n        ") + ("\x1b[0m" if mode else ""))
        if mode:
            body = "".join(_paint(p, r, scale, mode) for p, r in zip(v.pieces, v.rewards))
        else:
            body = "".join(f"{p}[{r:+.4f}]" for p, r in zip(v.pieces, v.rewards))
        out.append(body)
        out.append(f"total: {v.total:+.6f} over {len(v.rewards)} tokens")
        out.append("top tokens by |reward|: " + ", ".join(
            f"#{t} {_shown(p)!r} {r:+.4f}" for t, p, r in v.top()))
    return "\n".join(out) + "\n"


def _paint(piece: str, reward: float, scale: float, mode: str) -> str:
    """A token on its colour; newlines stay plain so the background does not run to the line's end."""
    bg, fg = token_colour(reward, scale)
    on = _ansi(bg, True, mode) + _ansi(fg, False, mode)
    return "\n".join(on + part + "\x1b[0m" if part else "" for part in piece.split("\n"))


# ---- HTML ------------------------------------------------------------------------------------
PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
.view { border: 1px solid #ccc; border-radius: 6px; padding: 0.8em 1em; margin: 1em 0; }
.head { font-weight: bold; }
.prompt { color: #666; white-space: pre-wrap; margin: 0.4em 0; }
.completion { font-family: ui-monospace, monospace; white-space: pre-wrap; line-height: 1.6; }
.tok { border-radius: 2px; }
.tok:hover { outline: 1px solid #000; }
.tok:empty::before { content: "\\00b7"; color: #999; }
.legend span { padding: 0 0.4em; }
table { border-collapse: collapse; margin-top: 0.4em; }
td, th { padding: 0 0.8em 0 0; text-align: left; font-size: 90%; }
"""


def _span(index: int, token_id: int, piece: str, reward: float, scale: float) -> str:
    bg, fg = token_colour(reward, scale)
    return (f'<span class="tok" style="background:rgb{bg};color:rgb{fg}" '
            f'title="{reward:+.6f} (token {index}, id {token_id})">{html.escape(piece)}</span>')


def render_html(views: list, beta: float, model: str, ref: str, data: str) -> str:
    scale = colour_scale(views)
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>Token-level implicit rewards</title>", f"<style>{PAGE_STYLE}</style></head><body>",
             "<h1>Token-level implicit rewards</h1>",
             f"<p>r<sub>t</sub> = &beta; (log &pi;(y<sub>t</sub>|x, y<sub>&lt;t</sub>) - log &pi;<sub>ref</sub>"
             f"(y<sub>t</sub>|x, y<sub>&lt;t</sub>)), &beta; = {beta:g} (Rafailov et al. 2024, "
             "&ldquo;From r to Q*&rdquo;). Hover a token for its value.</p>",
             f"<p>policy <code>{e(model)}</code>, reference <code>{e(ref)}</code>, data <code>{e(data)}</code></p>",
             f'<p class="legend"><span style="background:rgb{token_colour(scale, scale)[0]};color:#fff">positive</span> '
             f'<span style="background:rgb{token_colour(-scale, scale)[0]};color:#fff">negative</span> '
             f"full colour at |r| &ge; {scale:.4g}</p>"]
    for v in views:
        head = f"record {v.record} ({v.source}) {v.side}" + (f", {v.note}" if v.note else "")
        body = "".join(_span(t, i, p, r, scale) for t, (i, p, r) in enumerate(zip(v.ids, v.pieces, v.rewards)))
        rows = "".join(f"<tr><td>#{t}</td><td><code>{e(repr(p))}</code></td><td>{r:+.4f}</td></tr>"
                       for t, p, r in v.top())
        parts.append(f'<div class="view"><div class="head">{e(head)}</div>'
                     f'<div class="prompt">{e(v.prompt)}</div><div class="completion">{body}</div>'
                     f"<p>total: <b>{v.total:+.6f}</b> over {len(v.rewards)} tokens</p>"
                     f"<table><tr><th>position</th><th>token</th><th>reward</th></tr>{rows}</table></div>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ---- a policy's token rewards on a data file ---------------------------------------------------
def token_views(model: str, data: str, ref: str | None = None, beta: float | None = None, limit: int = 0,
                max_length: int = 0, log=print) -> tuple:
    """(views, beta, reference folder): the TokenViews of the first `limit` records of `data` (0: all)
    under `model` against `ref` (default: the reference in the policy's config.yaml), with `beta`
    (default: the policy's training beta) and `max_length` (default: its training max_length, else
    its context window)."""
    import torch
    from ..data.readers import read_records
    from ..data.tokenize import Encoder, trained_max_length
    from ..errors import ConfigError
    from ..models.loading import load_causal_lm, load_tokenizer
    from .implicit import default_beta, default_reference, training_config

    ref_dir = ref or default_reference(model)
    beta = default_beta(model) if beta is None else float(beta)
    records, report = read_records(data, limit=limit or None)
    log(report.summary())
    policy = load_causal_lm(model).eval()
    reference = load_causal_lm(ref_dir).eval()
    if policy.config.vocab_size != reference.config.vocab_size:
        raise ConfigError(f"{model} and {ref_dir} have different vocabularies "
                          f"({policy.config.vocab_size} vs {reference.config.vocab_size} tokens)")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    policy.to(device)
    reference.to(device)
    tok = load_tokenizer(model)
    train = training_config(model)
    encoder = Encoder(tok, *trained_max_length(max_length, train, policy.config, log=log))
    return compute_views(policy, reference, tok, encoder, records, beta), beta, ref_dir
