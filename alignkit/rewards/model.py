"""Reward models: a scalar r(x, y) from a Hugging Face sequence-classification model (num_labels=1).

A causal-LM folder (e.g. a `LlamaForCausalLM` SFT model) loads as `AutoModelForSequenceClassification`
too: transformers keeps the backbone's weights and adds a fresh linear head `score` (hidden -> 1), the
"causal LM backbone with a scalar head" of InstructGPT (Ouyang et al. 2022, arXiv 2203.02155, sec. 3.5).
A folder that already holds a reward model keeps its trained head.

The score is read at each row's last *real* token (a pad position carries no score; Huang et al. 2024,
arXiv 2403.17031, read the reward at the EOS token), found from the attention
mask, so left and right padding give the same scores and a pad id equal to EOS (common in Llama
tokenizers) is harmless. We still set `config.pad_token_id`, so that transformers' own pooling works
for anyone who loads the saved folder with `AutoModelForSequenceClassification.from_pretrained(dir)`.
Encoder-style classifiers (no `score` head, e.g. DeBERTa reward models) pool themselves; their logits
are used as they are.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import ModelLoadError
from ..models.loading import DTYPES, LoraSettings, check_model_folder, apply_lora, load_tokenizer, save_model, unwrap

INFO_FILE = "alignkit_reward.json"  # how alignkit trained the model (max_length, label scaling)


def load_reward_model(path: str, dtype: str = "fp32", trust_remote_code: bool = False):
    """-> (transformers sequence-classification model with one output, tokenizer). Safetensors only."""
    from transformers import AutoConfig, AutoModelForSequenceClassification
    p = check_model_folder(path)
    if not any(p.glob("*.safetensors")):
        raise ModelLoadError(f"{path}: no .safetensors weights; alignkit refuses to unpickle .bin files "
                             "(convert them with transformers' save_pretrained(safe_serialization=True))")
    config = AutoConfig.from_pretrained(str(p), trust_remote_code=trust_remote_code)
    archs = config.architectures or []
    if any(a.endswith("ForSequenceClassification") for a in archs) and config.num_labels != 1:
        raise ModelLoadError(f"{path}: a classifier with {config.num_labels} labels, not a reward model "
                             "(a reward model has one output)")
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(p), num_labels=1, dtype=DTYPES[dtype], use_safetensors=True, trust_remote_code=trust_remote_code)
    except ValueError as e:  # no sequence-classification class for this architecture
        raise ModelLoadError(f"{path}: cannot load as a reward model (AutoModelForSequenceClassification): {e}")
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot load a reward model: {e}")
    tok = load_tokenizer(path, trust_remote_code)
    model.config.pad_token_id = tok.pad_token_id
    model.config.use_cache = False
    return model, tok


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """(N, T) -> (N,) column of each row's last real token, for left or right padding."""
    t = attention_mask.shape[1]
    return t - 1 - attention_mask.flip(-1).argmax(-1)


def _takes(module, arg: str) -> bool:
    """Does the module's forward name `arg` (not merely accept **kwargs)?"""
    import inspect
    return arg in inspect.signature(module.forward).parameters


class RewardModel(torch.nn.Module):
    """r(x, y) for a batch of token rows: forward(input_ids, attention_mask) -> (N,) float rewards.

    Wraps the transformers model (optionally under a peft LoRA adapter) so that one module's forward is
    the entry point: accelerate/DDP wrap this module and see every parameter used."""

    def __init__(self, hf_model):
        super().__init__()
        self.hf = hf_model

    def inner(self):
        """The transformers model, adapter layers injected in place under LoRA."""
        m = self.hf
        return m.get_base_model() if hasattr(m, "get_base_model") else m

    def packs(self) -> bool:
        """Does it take packed batches (alignkit/train/packing.py: shared prompts, no padding)?"""
        from ..train.packing import backbone_packs
        m = self.inner()
        return (getattr(m, "score", None) is not None and not m.config.is_encoder_decoder
                and backbone_packs(getattr(m, m.base_model_prefix)))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids=None,
                last=None) -> torch.Tensor:
        """With `last` given, the rows are a packed batch: attention_mask is its 4D mask, and r is read
        at the flat indices `last` (N,) of each sequence's last token."""
        m = self.inner()
        head = getattr(m, "score", None)
        if head is None or m.config.is_encoder_decoder:
            return self.hf(input_ids=input_ids, attention_mask=attention_mask).logits[:, 0].float()
        backbone = getattr(m, m.base_model_prefix)
        if last is not None:
            hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                              use_cache=False).last_hidden_state  # (R, L, H)
            return head(hidden.reshape(-1, hidden.shape[-1])[last]).squeeze(-1).float()  # (N,)
        kw = {}
        if _takes(backbone, "position_ids"):  # left padding: positions count real tokens only
            kw["position_ids"] = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # (N, T)
        if _takes(backbone, "use_cache"):
            kw["use_cache"] = False
        out = backbone(input_ids=input_ids, attention_mask=attention_mask, **kw)
        hidden = out.last_hidden_state  # (N, T, H)
        last = last_token_index(attention_mask)  # (N,)
        h = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # (N, H)
        return head(h).squeeze(-1).float()  # (N,)


def apply_lora_seq_cls(model, lora: LoraSettings):
    """A peft LoRA adapter for sequence classification: base weights frozen, the new head trained."""
    return apply_lora(model, lora, task_type="SEQ_CLS")


def save_reward_model(rm, tokenizer, out_dir, info: dict, adapter_only: bool = False):
    """Hugging Face format (AutoModelForSequenceClassification loads it), plus INFO_FILE."""
    rm = unwrap(rm)
    hf = rm.hf if isinstance(rm, RewardModel) else rm
    save_model(hf, tokenizer, out_dir, adapter_only=adapter_only)
    (Path(out_dir) / INFO_FILE).write_text(json.dumps(info, indent=1))


def read_info(path) -> dict:
    f = Path(path) / INFO_FILE
    return json.loads(f.read_text()) if f.is_file() else {}
