"""LoRA: the reference is the same model with its adapter disabled (no second copy), the saved
model is merged (plain transformers loads it) unless --save-adapter-only."""
import math

from safetensors.torch import load_file

from alignkit.losses.registry import get_loss
from alignkit.train.config import TrainConfig
from alignkit.train.offline import train_offline

from conftest import make_pairs


def test_lora_dpo_trains_and_saves_merged(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM
    spec = get_loss("dpo")
    pairs = make_pairs(40)
    cfg = TrainConfig(max_steps=8, batch_size=8, learning_rate=5e-3, lora_r=4, lora_alpha=8, progress=False,
                      lora_target_modules=("q_proj", "v_proj"))
    res = train_offline(spec, spec.config(), cfg, str(tiny_model_dir), pairs[:32], pairs[32:],
                        str(tmp_path / "lora"), log=lambda *a: None)
    # at step 0 the adapter-disabled reference equals the policy (LoRA's B starts at zero): loss = log 2
    assert abs(res["eval_start"]["loss"] - math.log(2)) < 1e-5
    assert res["eval_end"]["rewards/accuracy"] > res["eval_start"]["rewards/accuracy"]
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "lora")
    base = load_file(str(tiny_model_dir / "model.safetensors"))
    after = merged.state_dict()
    changed = [k for k in base if "q_proj" in k and (after[k] - base[k]).abs().max() > 1e-6]
    untouched = [k for k in base if "mlp" in k and (after[k] - base[k]).abs().max() > 0]
    assert changed and not untouched  # only adapted modules moved


def test_lora_adapter_only(tiny_model_dir, tmp_path):
    spec = get_loss("sft")
    from conftest import make_demos
    cfg = TrainConfig(max_steps=2, batch_size=4, lora_r=2, save_adapter_only=True, progress=False, eval_fraction=0)
    train_offline(spec, spec.config(), cfg, str(tiny_model_dir), make_demos(8), [], str(tmp_path / "a"),
                  log=lambda *a: None)
    assert (tmp_path / "a" / "adapter_config.json").is_file()
    assert (tmp_path / "a" / "adapter_model.safetensors").is_file()
