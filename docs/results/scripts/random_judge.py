"""A judge that knows nothing: a pseudo-random score per (prompt, response), fixed by their text (docs/results/termination.md's control)."""
import hashlib


def score(prompt, response):
    return int(hashlib.sha256((repr(prompt) + "\x00" + response).encode()).hexdigest()[:8], 16) / 2 ** 32
