"""sDPO (Kim et al. 2024, arXiv 2403.19270): split the preference data into T chunks; stage t
starts from M_{t-1} and uses M_{t-1} as its reference (M_0 = the SFT model), training the pairwise
loss (DPO by default) on chunk t."""
from __future__ import annotations

import dataclasses
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..config import option
from ..errors import ConfigError
from ..train.run import Job, load_split


@dataclass(frozen=True)
class SDPOConfig:
    loss: str = "dpo"  # the pairwise loss of every stage (its own flags follow, e.g. --beta)
    stages: int = option(2, ge=1)  # number of data chunks, used one after another (paper: 2, easy to hard)
    order: str = option("as_is", choices=("as_is", "random"))  # as_is | random: chunk the data in file order (pre-sort it easy->hard) or shuffled

    def __post_init__(self):
        if self.stages < 1:
            raise ValueError(f"stages must be >= 1, got {self.stages}")
        if self.order not in ("as_is", "random"):
            raise ValueError(f"order must be as_is or random, not {self.order!r}")


def run_sdpo(job: Job) -> dict:
    from ..train.offline import train_offline
    cfg, scfg, log = job.cfg, job.method_cfg, job.log
    spec, loss_cfg = job.inner
    train, ev = load_split(job.data, cfg, "pairwise", log)
    if scfg.order == "random":
        train = list(train)
        random.Random(cfg.seed).shuffle(train)
    n = len(train)
    if n < scfg.stages:
        raise ConfigError(f"sdpo: {n} training pairs cannot fill {scfg.stages} stages")
    chunks = [train[i * n // scfg.stages:(i + 1) * n // scfg.stages] for i in range(scfg.stages)]
    current = job.model
    out = Path(job.output)
    job.write_record()  # config.yaml: the run's record, that --resume compares and --config repeats
    stages = []
    for t, chunk in enumerate(chunks, 1):
        stage_dir = out / f"stage-{t}"
        log(f"sdpo stage {t}/{scfg.stages}: {len(chunk)} pairs, reference = {current}")
        stage_cfg = dataclasses.replace(cfg, ref=current, ref_cache="memory", resume=False, overwrite=True)
        s = train_offline(spec, loss_cfg, stage_cfg, current, chunk, ev, str(stage_dir), log)
        stages.append({"stage": t, "pairs": len(chunk), "eval_start": s["eval_start"], "eval_end": s["eval_end"]})
        current = str(stage_dir)
    for f in Path(current).iterdir():  # the last stage's model is the result
        if f.is_file() and f.name != "config.yaml":  # the run's own record stays
            shutil.copy2(f, out / f.name)
    summary = {"method": "sdpo", "loss": spec.name, "stages": stages}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
