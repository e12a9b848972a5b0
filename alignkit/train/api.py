"""`run_train`: the one entry point behind `alignkit train METHOD` (and the Python API).

Resolves the configs (defaults < YAML < overrides), reads and splits the data, and hands over to the
loop the method's feedback calls for: the offline loop for every registered loss, or a recipe from
RECIPES for methods that are a data flow of their own (reward models, RL, iterative methods).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..config import build_config, read_yaml
from ..errors import ConfigError
from ..losses.registry import LOSSES
from .config import TrainConfig


@dataclass(frozen=True)
class Recipe:
    """A method that is a data flow of its own (reward-model training, RL, iterative DPO...).
    run(train_cfg, method_cfg, model_path, data, output, log) -> summary dict."""
    name: str
    run: Callable
    config: type
    feedback: str
    paper: str
    theme: str = "optimization"
    reference: bool = False
    description: str = ""


# name -> Recipe, filled by the subsystems that own those loops (see _load_recipes).
RECIPES: dict = {}


def register_recipe(recipe: Recipe) -> Recipe:
    RECIPES[recipe.name] = recipe
    return recipe


def _load_recipes():
    # Import the subsystems that register recipes (reward models, RL, online recipes).
    import importlib
    for mod in ("alignkit.rewards.recipes", "alignkit.rl.recipes", "alignkit.online.recipes", "alignkit.online.iterative"):
        importlib.import_module(mod)


def all_methods() -> dict:
    _load_recipes()
    return {**{k: v for k, v in LOSSES.items()}, **RECIPES}


def split_layers(method_cfg_cls, yaml_dict: dict, overrides: dict) -> tuple:
    """Route each key to the run config or the method's config; unknown keys are errors."""
    import dataclasses
    train_keys = {f.name for f in dataclasses.fields(TrainConfig)}
    method_keys = {f.name for f in dataclasses.fields(method_cfg_cls)}
    layers_t, layers_m = [], []
    for where, layer in (("config file", yaml_dict), ("command line", overrides)):
        t, m = {}, {}
        for k, v in (layer or {}).items():
            key = k.replace("-", "_")
            if key in method_keys:
                m[key] = v
            elif key in train_keys:
                t[key] = v
            else:
                known = sorted(train_keys | method_keys)
                raise ConfigError(f"{where}: unknown key {k!r}; known keys: {', '.join(known)}")
        layers_t.append(t)
        layers_m.append(m)
    return (build_config(TrainConfig, *layers_t, where="train config"),
            build_config(method_cfg_cls, *layers_m, where="method config"))


def load_split(data, cfg: TrainConfig, shape: str, log=print) -> tuple:
    """-> (train records, eval records) from a path or a list of records."""
    if shape == "negative":  # negatives come as demonstrations, thumbs-down or pairwise rejected sides
        shape = None
    from ..data.convert import split_records
    from ..data.readers import read_records
    if isinstance(data, (str, Path)):
        records, report = read_records(str(data), shape=cfg.data_format or shape,
                                       on_bad_record=cfg.on_bad_record, max_chars=cfg.max_chars)
        log(report.summary())
    else:
        records = list(data)
    if cfg.max_examples:
        records = records[: cfg.max_examples]
    if cfg.eval_data:
        ev, rep = read_records(cfg.eval_data, shape=cfg.data_format or shape,
                               on_bad_record=cfg.on_bad_record, max_chars=cfg.max_chars)
        log(rep.summary())
        return records, ev
    if cfg.eval_fraction > 0 and len(records) > 1:
        return split_records(records, cfg.eval_fraction, cfg.seed)
    return records, []


def run_train(method: str, model: str, data, output: str, overrides: dict | None = None,
              config_file: str | None = None, log=print) -> dict:
    methods = all_methods()
    if method not in methods:
        raise ConfigError(f"unknown method {method!r}; run `alignkit methods` to list them "
                          f"({', '.join(sorted(methods))})")
    yaml_dict = read_yaml(config_file) if config_file else {}
    entry = methods[method]
    if method in RECIPES:
        cfg, mcfg = split_layers(entry.config, yaml_dict, overrides or {})
        return entry.run(cfg, mcfg, model, data, output, log)
    from .offline import train_offline
    cfg, loss_cfg = split_layers(entry.config, yaml_dict, overrides or {})
    train, ev = load_split(data, cfg, entry.feedback, log)
    return train_offline(entry, loss_cfg, cfg, model, train, ev, output, log)
