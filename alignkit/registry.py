"""The one method registry: name -> Method (alignkit/method.py).

`alignkit methods`, `alignkit train NAME [--help]` and the Python API read only this. It is filled by
static imports of each subsystem's declarations: the offline losses (losses/registry.py, run by the
offline loop), reward models (rewards/methods.py), online RL (rl/methods.py) and the recipes that
chain sampling, judging and a loss (online/methods.py).
"""
from __future__ import annotations

import dataclasses

from .errors import ConfigError
from .losses.registry import LOSSES, get_loss
from .merge.paft import PAFT_METHODS
from .method import THEMES, Method
from .online.methods import ONLINE_METHODS
from .rewards.methods import REWARD_METHODS
from .rl.methods import RL_METHODS
from .train.offline import run_offline
from .train.record import absolute, read_config_file
from .train.run import Job, split_layers, start_job


def _build() -> dict:
    methods: dict = {}
    for m in (*LOSSES.values(), *REWARD_METHODS, *RL_METHODS, *ONLINE_METHODS, *PAFT_METHODS):
        if m.name in methods:
            raise RuntimeError(f"two methods named {m.name!r}")
        # a loss runs on the offline loop; a recipe brings its own flow
        methods[m.name] = m if m.run else dataclasses.replace(m, run=run_offline)
    return methods


METHODS: dict = _build()


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; run `alignkit methods` to list them "
                          f"({', '.join(sorted(METHODS))})")
    return METHODS[name]


def method_rows() -> list:
    """Every method as a dict (name, theme, feedback, reference, paper, description), by theme."""
    rows = [{"name": m.name, "theme": m.theme, "feedback": m.feedback, "reference": bool(m.reference),
             "paper": m.paper, "description": m.description} for m in METHODS.values()]
    rows.sort(key=lambda r: (THEMES.index(r["theme"]), r["feedback"], r["name"]))
    return rows


def inner_loss_name(method: Method, yaml_dict: dict, overrides: dict) -> str:
    """A composite method's inner loss: --loss on the command line, else in the YAML, else its default."""
    for layer in (overrides or {}, yaml_dict or {}):
        if layer.get("loss") is not None:
            return str(layer["loss"])
    return method.config.__dataclass_fields__["loss"].default


def resolve_job(method: str | None, model: str | None, data, output: str | None, overrides: dict | None = None,
                config_file: str | None = None, log=print) -> Job:
    """Resolve the configs (defaults < YAML < overrides) of `method` and, for a composite recipe, of
    its inner loss. A config file may also name the method, model, data and output (a run's own
    config.yaml does): the arguments win, except a method that differs from the file's, an error.
    Local paths become absolute (the run's records resolve from any working directory)."""
    yaml_dict = {}
    if config_file:
        meta, yaml_dict = read_config_file(config_file)
        if meta.get("method") and method and meta["method"] != method:
            raise ConfigError(f"{config_file}: its method is {meta['method']!r}, not {method!r}; "
                              f"drop the method to repeat that run, or use a config file without `method:`")
        method = method or meta.get("method")
        model = model or meta.get("model")
        data = data if data is not None else meta.get("data")
        output = output or meta.get("output")
    if not method:
        raise ConfigError("no method: name it (alignkit train METHOD) or give `method:` in --config")
    for name, value in (("model", model), ("output", output)):
        if not value:
            raise ConfigError(f"--{name} is required (or `{name}:` in --config)")
    m = get_method(method)
    inner = get_loss(inner_loss_name(m, yaml_dict, overrides), m.inner_feedback) if m.inner_feedback else None
    cfg, mcfg, icfg = split_layers(m.config, yaml_dict, overrides or {}, inner.config if inner else None)
    data = absolute(data) if isinstance(data, str) else data
    return Job(m, cfg, mcfg, absolute(model), data, absolute(output, local=True), log, (inner, icfg) if inner else None)


def run_train(method: str, model: str, data, output: str, overrides: dict | None = None,
              config_file: str | None = None, log=print) -> dict:
    """Train `model` with `method`; the output folder gets the model, config.yaml, metrics.jsonl and
    summary.json. Returns the summary."""
    job = resolve_job(method, model, data, output, overrides, config_file, log)
    start_job(job)  # --output checked (--overwrite, --resume's config check)
    return job.method.run(job)
