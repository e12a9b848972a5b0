"""Value functions V(s_t) for PPO: one scalar per completion position (the state before token t).

Choices (`value_model` in the PPO config):
- Separate value model (default, `value_model = "policy"`; or a folder, e.g. the reward model, as
  InstructGPT initialises it): a backbone loaded from the starting policy's folder or from DIR (any
  Hugging Face causal-LM or sequence-classification folder; its transformer body is used) plus a
  fresh linear head, trained by the value loss only. As in Huang et al. 2024 and TRL's PPO.
- Shared backbone (`value_model = "shared"`): a linear head on the policy's last hidden state, as
  in TRL's early `AutoModelForCausalLMWithValueHead`. One forward serves policy and value, and the
  value loss (weighted by vf_coef) also trains the shared backbone. Cheaper, but the value
  regression then moves the language model too: on stories260K at lr 3e-4 the value loss grew with
  the KL part of the returns and dragged the policy away from the reference (KL up, reward flat),
  which a separate value model avoids.
Heads start at zero (V = 0), so the first advantages are the discounted rewards themselves.
"""
from __future__ import annotations

import torch
from torch import nn

from ..train.forward import collate
from ..train.packing import PackedBatch, attention_mask, backbone_packs, token_rows
from .forward import completion_columns


class SharedValueHead(nn.Module):
    uses_policy_hidden = True

    def __init__(self, hidden_size: int):
        super().__init__()
        self.head = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, sb, policy_hidden: torch.Tensor) -> torch.Tensor:
        """sb: SeqBatch or PackedBatch; policy_hidden: (N, Tc, H) -> values (N, Tc), zero outside the completion mask."""
        return self.head(policy_hidden).squeeze(-1) * sb.comp_mask


def make_value_function(spec: str, policy_path: str, hidden_size: int, trust_remote_code: bool = False):
    """spec: "policy" (a separate copy of the starting policy), "shared", or a model folder."""
    if spec == "shared":
        return SharedValueHead(hidden_size)
    return SeparateValueModel(policy_path if spec in ("", "policy") else spec, trust_remote_code)


class SeparateValueModel(nn.Module):
    uses_policy_hidden = False

    def __init__(self, path: str, trust_remote_code: bool = False):
        super().__init__()
        from transformers import AutoModel
        from ..errors import ModelLoadError
        from ..models.loading import check_model_folder
        local = str(check_model_folder(path))  # a hub name: its cached snapshot
        try:
            self.body = AutoModel.from_pretrained(local, dtype=torch.float32, use_safetensors=True,
                                                  trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as e:
            raise ModelLoadError(f"{path}: cannot load a value model backbone: {e}")
        self.head = nn.Linear(self.body.config.hidden_size, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, sb, policy_hidden=None) -> torch.Tensor:
        if isinstance(sb, PackedBatch):  # each group's prompt once, as the policy's pass
            if backbone_packs(self.body):
                out = self.body(input_ids=sb.input_ids, attention_mask=attention_mask(self.body, sb),
                                position_ids=sb.position_ids, use_cache=False)
                return self.head(token_rows(out.last_hidden_state, sb).float()).squeeze(-1) * sb.comp_mask
            sb = collate(sb.seqs, sb.pad_id).to(sb.comp_ids.device)
        out = self.body(input_ids=sb.input_ids, attention_mask=sb.attention_mask,
                        position_ids=sb.position_ids, use_cache=False)
        h = out.last_hidden_state[:, completion_columns(sb)].float()  # (N, Tc, H)
        return self.head(h).squeeze(-1) * sb.comp_mask
