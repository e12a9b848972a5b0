"""Reward models: loading from a causal-LM folder, the score at the last real token (left or right
padding), batched == unbatched and deterministic scoring, HF-format saving, LoRA, implicit rewards."""
import dataclasses

import pytest
import torch

from alignkit.models.loading import LoraSettings
from alignkit.rewards.model import (RewardModel, apply_lora_seq_cls, last_token_index, load_reward_model,
                                    read_info, save_reward_model)
from alignkit.rewards.scoring import RewardModelJudge

PROMPTS = ["what is two plus three ?", "please help me", "the cat", "what is two plus three ?", "dog ?"]
RESPONSES = ["five .", "sure , here is how . the dog ran to the park and sat on a mat", "sat",
             "no , i cannot help with that .", "the dog ran"]


def test_last_token_index_left_and_right_padding():
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    assert last_token_index(mask).tolist() == [3, 2, 3, 0]


def test_causal_lm_folder_loads_with_a_scalar_head(tiny_model_dir):
    model, tok = load_reward_model(str(tiny_model_dir))
    assert type(model).__name__ == "LlamaForSequenceClassification"
    assert model.score.out_features == 1
    assert model.config.pad_token_id == tok.pad_token_id is not None


def test_score_is_read_at_the_last_real_token_for_either_padding(tiny_model_dir):
    torch.manual_seed(0)
    model, tok = load_reward_model(str(tiny_model_dir))
    rm = RewardModel(model).eval()
    a, b = [5, 9, 11, 4, 2], [7, 3, 2]
    pad = tok.pad_token_id
    with torch.no_grad():
        alone = [rm(torch.tensor([x]), torch.ones(1, len(x), dtype=torch.long)).item() for x in (a, b)]
        left = rm(torch.tensor([a, [pad, pad] + b]), torch.tensor([[1] * 5, [0, 0, 1, 1, 1]]))
        right = rm(torch.tensor([a, b + [pad, pad]]), torch.tensor([[1] * 5, [1, 1, 1, 0, 0]]))
    assert left.tolist() == pytest.approx(alone, abs=1e-5)
    assert right.tolist() == pytest.approx(alone, abs=1e-5)
    assert abs(alone[0] - alone[1]) > 1e-6  # different inputs, different scores


def test_scoring_is_batched_deterministic_and_order_preserving(tiny_model_dir):
    torch.manual_seed(0)
    judge = RewardModelJudge(str(tiny_model_dir), batch_size=4)
    batched = judge.score(PROMPTS, RESPONSES)
    assert judge.score(PROMPTS, RESPONSES) == batched  # deterministic, bit for bit
    one_by_one = [judge.score([p], [r])[0] for p, r in zip(PROMPTS, RESPONSES)]
    assert batched == pytest.approx(one_by_one, abs=1e-5)
    judge.batch_size = 2
    assert judge.score(PROMPTS[::-1], RESPONSES[::-1]) == pytest.approx(batched[::-1], abs=1e-5)
    # compare is Bradley-Terry on the scores; rank orders by score
    p = judge.compare(PROMPTS[:2], RESPONSES[:2], RESPONSES[1:3])
    import math
    s_b = judge.score(PROMPTS[:2], RESPONSES[1:3])
    assert p[0] == pytest.approx(1 / (1 + math.exp(-(batched[0] - s_b[0]))), abs=1e-5)
    order = judge.rank("the cat", RESPONSES)
    s = judge.score(["the cat"] * 5, RESPONSES)
    assert [s[i] for i in order] == sorted(s, reverse=True)


def test_saved_reward_model_loads_with_auto_class(tiny_model_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification
    torch.manual_seed(1)
    model, tok = load_reward_model(str(tiny_model_dir))
    save_reward_model(RewardModel(model), tok, tmp_path / "rm", {"max_length": 64, "label_mean": 1.0,
                                                                 "label_std": 2.0})
    assert read_info(tmp_path / "rm")["max_length"] == 64
    judge = RewardModelJudge(str(tmp_path / "rm"))
    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm").eval()
    ids = judge.encoder.encode(PROMPTS[0], RESPONSES[0])
    with torch.no_grad():
        raw = hf(input_ids=torch.tensor([ids.prompt_ids + ids.completion_ids])).logits.item()
    # the judge maps z-scores back to label units: raw * std + mean
    assert judge.score(PROMPTS[:1], RESPONSES[:1])[0] == pytest.approx(raw * 2.0 + 1.0, abs=1e-5)


def test_lora_trains_the_head_and_saves_merged(tiny_model_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification
    model, tok = load_reward_model(str(tiny_model_dir))
    peft_model = apply_lora_seq_cls(model, LoraSettings(r=2, target_modules=("q_proj", "v_proj")))
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert any("score" in n for n in trainable) and any("lora_" in n for n in trainable)
    rm = RewardModel(peft_model)
    with torch.no_grad():
        rm.inner().score.modules_to_save["default"].weight.add_(0.5)
        want = rm(torch.tensor([[5, 9, 11]]), torch.ones(1, 3, dtype=torch.long)).item()
    save_reward_model(rm, tok, tmp_path / "lora-rm", {})
    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path / "lora-rm").eval()
    with torch.no_grad():
        assert hf(input_ids=torch.tensor([[5, 9, 11]])).logits.item() == pytest.approx(want, abs=1e-5)


def test_a_classifier_with_two_labels_is_refused(tiny_model_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification
    from alignkit.errors import ModelLoadError
    m = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)
    m.save_pretrained(tmp_path / "cls")
    with pytest.raises(ModelLoadError, match="2 labels"):
        load_reward_model(str(tmp_path / "cls"))


def test_implicit_reward_is_beta_times_log_ratio(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from alignkit.rewards.implicit import ImplicitRewardJudge
    from alignkit.train.forward import collate, sequence_logps
    policy = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        policy.model.norm.weight.mul_(1.5)  # any change of the policy
    policy.save_pretrained(tmp_path / "policy")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tmp_path / "policy")
    (tmp_path / "policy" / "config.yaml").write_text(f"model: {tiny_model_dir}\nloss:\n  beta: 0.25\n")
    judge = ImplicitRewardJudge(str(tmp_path / "policy"))  # reference and beta from config.yaml
    assert judge.ref_dir == str(tiny_model_dir) and judge.beta == 0.25
    scores = judge.score(PROMPTS, RESPONSES)
    ref = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    for p, r, s in zip(PROMPTS, RESPONSES, scores):
        e = judge.encoder.encode(p, r)
        sb = collate([(e.prompt_ids, e.completion_ids)], judge.tok.pad_token_id)
        with torch.no_grad():
            want = 0.25 * (sequence_logps(policy.eval(), sb)[0].sum() - sequence_logps(ref, sb)[0].sum()).item()
        assert s == pytest.approx(want, abs=1e-4)
    tokens = judge.token_rewards(PROMPTS[:2], RESPONSES[:2])
    assert [sum(x) for x in tokens] == pytest.approx(scores[:2], abs=1e-4)
    assert len(tokens[0]) == len(judge.encoder.completion_ids(RESPONSES[0]))
    same = ImplicitRewardJudge(str(tiny_model_dir), str(tiny_model_dir), beta=0.1)
    assert same.score(PROMPTS, RESPONSES) == pytest.approx([0.0] * 5, abs=1e-6)


def test_dataclass_configs_do_not_shadow_run_options():
    from alignkit.rewards.train import ListwiseRMConfig, PointwiseRMConfig, RMConfig
    from alignkit.train.config import TrainConfig
    run = {f.name for f in dataclasses.fields(TrainConfig)}
    for cls in (RMConfig, PointwiseRMConfig, ListwiseRMConfig):
        assert not run & {f.name for f in dataclasses.fields(cls)}


def test_encoder_classifiers_pool_themselves():
    from transformers import BertConfig, BertForSequenceClassification
    torch.manual_seed(0)
    m = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                 num_attention_heads=2, intermediate_size=32, num_labels=1)).eval()
    ids, mask = torch.tensor([[2, 5, 7, 0], [2, 9, 0, 0]]), torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    with torch.no_grad():
        assert RewardModel(m)(ids, mask).tolist() == pytest.approx(m(input_ids=ids, attention_mask=mask).logits[:, 0].tolist())
