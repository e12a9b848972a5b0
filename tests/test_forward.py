"""The shared forward: log-probs of batched, left-padded sequences equal the plain one-by-one
computation, and only completion tokens are counted."""
import torch

from alignkit.models.loading import load_causal_lm
from alignkit.train.forward import collate, sequence_logps


def test_batched_logps_equal_plain(tiny_model_dir):
    model = load_causal_lm(str(tiny_model_dir))
    seqs = [([1, 5, 6, 7], [8, 9, 2]), ([1, 5], [10, 11, 12, 13, 2]), ([1, 4, 4, 4, 4, 4, 4], [2])]
    lp, _ = sequence_logps(model, collate(seqs, 0))
    assert lp.mask.sum().item() == 3 + 5 + 1
    for i, (p, c) in enumerate(seqs):
        logits = model(torch.tensor([p + c])).logits.log_softmax(-1)[0]
        plain = sum(logits[len(p) - 1 + j, c[j]].item() for j in range(len(c)))
        assert abs(plain - lp.sum()[i].item()) < 1e-5
        assert lp.lengths()[i].item() == len(c)


def test_hidden_state_at_prompt_end(tiny_model_dir):
    model = load_causal_lm(str(tiny_model_dir))
    seqs = [([1, 5, 6], [8, 2]), ([1, 7], [9, 10, 2])]
    _, hidden = sequence_logps(model, collate(seqs, 0), want_hidden=True)
    for i, (p, c) in enumerate(seqs):
        out = model(torch.tensor([p + c]), output_hidden_states=True)
        assert torch.allclose(out.hidden_states[-1][0, len(p) - 1], hidden[i], atol=1e-5)
