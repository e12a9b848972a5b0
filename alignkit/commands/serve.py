"""`alignkit serve`: a judge and/or a model behind a small HTTP server (the server: alignkit/serve.py).

    alignkit serve --reward SPEC [--model DIR] [--host H --token T] [--port P]
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..config import option
from ..serve import TOKEN_ENV, cmd_serve, help_examples
from .common import add_command, at_least


@dataclass(frozen=True)
class ServeConfig:
    reward: str = ""  # judge spec to serve on POST /score (as for --reward elsewhere)
    model: str = ""  # local Hugging Face model folder to serve on POST /generate and the OpenAI-compatible /v1/completions, /v1/chat/completions, /v1/models
    model_name: str = ""  # the model's id on /v1/models and in requests ("": the folder name)
    max_logprobs: int = option(20, ge=0)  # most alternatives a request may ask for per token (logprobs, top_logprobs)
    host: str = "127.0.0.1"  # address to bind (127.0.0.1: this machine only; any other needs a token)
    port: int = option(8000, ge=0, le=65535)  # port (0 picks a free one)
    token: str = ""  # bearer token every request must carry ("": $ALIGNKIT_SERVE_TOKEN)
    max_new_tokens: int = option(64, ge=1)  # longest completion a request may ask for
    max_request_bytes: int = option(10 * 2**20, ge=1)  # largest request body, in bytes
    trust_remote_code: bool = False  # allow model code from the model folder
    quiet: bool = False  # no per-request log lines

    def __post_init__(self):
        at_least(self, "port", 0, 65535)
        at_least(self, "max_logprobs", 0)
        at_least(self, "max_new_tokens", 1)
        at_least(self, "max_request_bytes", 1)


def register(sub):
    add_command(sub, "serve", cmd_serve, ServeConfig,
                help="serve a judge (POST /score) and/or a model (POST /generate, OpenAI /v1/) over HTTP",
                description="A small HTTP server for a judge and/or a generator. Binds to 127.0.0.1; another "
                            f"--host needs --token (or {TOKEN_ENV}), and then every request needs "
                            "'Authorization: Bearer TOKEN'.",
                epilog=help_examples(), formatter_class=argparse.RawDescriptionHelpFormatter)
