"""The run configuration shared by every training command. Method-specific knobs (beta, gamma, ...)
live in each loss's own config class; `alignkit train METHOD --help` lists both."""
from __future__ import annotations

from dataclasses import dataclass

from ..config import check_fields, option
from ..data.records import FEEDBACK_SHAPES


@dataclass(frozen=True)
class TrainConfig:
    # optimisation
    epochs: float = option(1.0, gt=0)  # passes over the training data (fractions allowed); ignored when max_steps > 0
    max_steps: int = option(0, ge=0)  # optimizer steps to run; 0 = derive from epochs
    batch_size: int = option(8, ge=1)  # examples (pairs, lists, demonstrations) per micro-batch per process
    grad_accum: int = option(1, ge=1)  # micro-batches per optimizer step; the loss is normalised over all of them
    learning_rate: float = option(5e-5, gt=0)  # peak learning rate (AdamW)
    weight_decay: float = option(0.0, ge=0)  # AdamW weight decay
    adam_beta1: float = option(0.9, ge=0, lt=1)  # AdamW beta1
    adam_beta2: float = option(0.999, ge=0, lt=1)  # AdamW beta2
    fused_adamw: bool = True  # torch's fused AdamW kernel on CPU/CUDA (the same update; a ~6x faster optimizer step on CPU); not under FSDP/DeepSpeed
    lr_scheduler: str = option("linear", choices=("linear", "cosine", "constant"))  # linear | cosine | constant (after warm-up)
    warmup_steps: int = option(0, ge=0)  # linear warm-up steps (overrides warmup_ratio when > 0)
    warmup_ratio: float = option(0.0, ge=0, le=1)  # warm-up as a fraction of the total steps
    max_grad_norm: float = option(1.0, ge=0)  # gradient clipping norm; 0 disables clipping
    l1_delta: float = option(0.0, ge=0)  # lambda of an L1 penalty lambda * ||theta - theta_0||_1 on the trainable weights' move from the start (PAFT, arXiv 2406.17923 sec. 3), added once per optimizer step; keeps a copy of the starting weights; 0 = off
    delta_threshold: float = option(0.0, ge=0)  # |theta - theta_0| at or below this counts as unmoved in the logged delta_sparsity; 0 = the peak learning rate (Adam's step: an entry the penalty holds at theta_0 oscillates within about one step of it)
    dtype: str = option("fp32", choices=("fp32", "bf16", "fp16"))  # fp32 | bf16 | fp16: mixed precision of the forwards (fp32 master weights, optimizer state and losses); bf16 = --bf16; fp16 (CUDA only) adds a gradient scaler against fp16 underflow
    bf16: bool = False  # bf16 autocast for training, evaluation, reference passes and RL sampling (fp32 master weights, optimizer and losses); faster only where bf16 matmuls are (GPUs, AMX CPUs): on the AVX512-BF16 Xeon of benchmarks/RESULTS.md they run at half the fp32 rate
    seed: int = 0  # seeds data order, initialisation and sampling
    # data
    max_length: int = option(512, ge=1)  # longest prompt+completion in tokens; longer ones are truncated
    max_prompt_length: int = option(0, ge=0)  # prompt token budget when truncating; 0 = max_length // 2
    max_chars: int = option(100000, ge=1)  # a text longer than this many characters is a bad record
    on_bad_record: str = option("error", choices=("error", "skip"))  # error | skip: stop at the first bad record, or skip and count them
    data_format: str = option("", choices=("", *FEEDBACK_SHAPES))  # force a feedback shape when reading (demonstration, pairwise, ...); "" = from the method
    columns: str = ""  # other field names mapped to the ones the formats read, applied before format detection: prompt=question,chosen=good,rejected=bad
    chat_template: str = ""  # chat template for conversational data: a built-in name (alignkit, chatml, zephyr, llama-3) or a Jinja file; "" = the model's own, else the built-in alignkit one; saved with the output's tokenizer
    eval_data: str = ""  # held-out file; "" = split eval_fraction off the training data
    eval_fraction: float = option(0.1, ge=0, lt=1)  # held-out share of the data when eval_data is empty (seeded split)
    max_examples: int = option(0, ge=0)  # use only the first N training examples; 0 = all
    max_eval_examples: int = option(0, ge=0)  # evaluate on only the first N held-out examples (the split is unchanged: the rest are not trained on); 0 = all. On a 135M model 180 held-out pairs take longer than a short run
    # reference model
    ref: str = ""  # reference model folder; "" = the initial policy (or, under LoRA, the adapter-disabled model)
    ref_cache: str = option("disk", choices=("disk", "memory", "none"))  # disk | memory | none: keep reference log-probs once computed (disk: reused on --resume)
    ref_upfront: bool = False  # compute every example's reference log-probs before the first step (as TRL's precompute_ref_log_probs) instead of as training reaches them: a slower start, but the reference model is gone before training (lower peak memory)
    # LoRA
    lora_r: int = option(0, ge=0)  # LoRA rank; 0 = full fine-tuning
    lora_alpha: int = option(16, gt=0)  # LoRA scaling alpha
    lora_dropout: float = option(0.0, ge=0, lt=1)  # dropout on the LoRA branch
    lora_target_modules: tuple = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")  # modules that get adapters (comma-separated)
    load_in_4bit: bool = False  # QLoRA (Dettmers et al. 2023, arXiv 2305.14314): load the base model in 4-bit NF4 with double quantization (bitsandbytes, CUDA only) and train LoRA adapters on it; needs --lora-r > 0
    save_adapter_only: bool = False  # under LoRA, save only the adapter instead of a merged model
    # evaluation, checkpoints, logging
    eval_every: int = option(0, ge=0)  # evaluate on the held-out split every N steps (0 = at the start and the end only)
    eval_at: tuple = option(("start", "end"), choices=("start", "end", "none"))  # when else to evaluate on the held-out split: start, end, both (start,end) or none ("" / none): skipping them saves their forwards
    save_every: int = option(0, ge=0)  # write a resumable checkpoint every N steps (0 = none until the end)
    keep_checkpoints: int = option(2, ge=0)  # newest checkpoints to keep (0 = all)
    resume: bool = False  # continue from the newest checkpoint in the output folder; refused when the model, data (by content) or a setting differs from its config.yaml (the error lists them), except the length and reporting settings (max_steps, epochs, iterations, threads, logging, evaluation and checkpoint schedule)
    resume_allow_changes: bool = False  # with --resume: continue even though the model, data or settings differ from the stored config.yaml (the differences are logged and config.yaml is rewritten)
    overwrite: bool = False  # replace what --output holds: a finished run (summary.json, a model), an earlier run's checkpoints, or files that are not an alignkit run are refused without it
    log_every: int = option(1, ge=1)  # write training metrics every N steps
    report_to: str = option("none", choices=("none", "tensorboard", "wandb"))  # none | tensorboard | wandb (when installed)
    progress: bool = True  # show a progress bar
    max_nonfinite: int = option(5, ge=1)  # stop after this many consecutive non-finite losses/gradients (each is skipped)
    num_threads: int = option(0, ge=0)  # torch CPU threads; 0 = the cores free when the run starts (affinity less the busy ones, at most torch's default)
    gradient_checkpointing: bool = False  # recompute each block's activations in the backward pass instead of keeping them (less activation memory for about one more forward pass; the same gradients)
    trust_remote_code: bool = False  # allow model code from the model folder (off unless you trust it)

    def __post_init__(self):
        check_fields(self)  # the declared ranges and choices, for a config built in Python too
        if self.bf16 and self.dtype == "fp16":
            raise ValueError("--bf16 and --dtype fp16 exclude each other (choose one mixed precision)")
        if self.load_in_4bit and self.lora_r <= 0:
            raise ValueError("--load-in-4bit needs --lora-r > 0 (QLoRA trains LoRA adapters on the frozen 4-bit base)")
        if self.columns:
            from ..data.formats import parse_columns
            parse_columns(self.columns)  # ConfigError naming --columns and the known fields
        if self.chat_template:
            from ..data.tokenize import chat_template_text
            chat_template_text(self.chat_template)  # a known name or a readable file


# the default --max-length, which a model of shorter context lowers to its own (models/context.py)
MAX_LENGTH_DEFAULT = TrainConfig.__dataclass_fields__["max_length"].default
