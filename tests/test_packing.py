"""Packed batches (prefix sharing + padding-free rows) give the plain computation's log-probs,
gradients, logits and hidden states: the plain reference here is each sequence run alone."""
import pytest
import torch

from alignkit.models.loading import load_causal_lm
from alignkit.train.forward import collate, packing_supported, sequence_logps
from alignkit.train.packing import PackedBatch, first_fit, pack, segments

P1, P2 = [1, 5, 6, 7, 8], [1, 9]
SEQS = [
    (P1, [10, 11, 12, 2]),  # a pair: chosen and rejected share P1
    (P1, [13, 2]),
    (P2, [14, 15, 16, 17, 18, 2]),  # a list of three on P2, one a single token
    (P2, [2]),
    (P2, [19, 20, 2]),
    ([1, 21, 22], [23, 24, 2]),  # a prompt of its own
]


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    m = load_causal_lm(str(tiny_model_dir))
    m.eval()
    return m


def alone(model, p, c) -> torch.Tensor:
    """(len(c),) log-probs of c given p, the sequence run by itself with no padding."""
    logits = model(torch.tensor([p + c])).logits.log_softmax(-1)[0]  # (T, V)
    return torch.stack([logits[len(p) - 1 + j, c[j]] for j in range(len(c))])


def test_layout_shares_prompts_and_restarts_positions():
    pb = pack(SEQS, 0, row_tokens=1000)
    assert isinstance(pb, PackedBatch) and pb.input_ids.shape[0] == 1  # everything fits one row
    n_tokens = len(P1) + 4 + 2 + len(P2) + 6 + 1 + 3 + 3 + 3
    assert pb.input_ids.shape[1] == n_tokens  # each prompt once, no padding column
    # the P1 segment: prompt at positions 0..4, both completions restart at 5
    row = pb.input_ids[0].tolist()
    start = next(i for i in range(len(row)) if row[i:i + 5] == P1)
    pos = pb.position_ids[0, start:start + 5 + 4 + 2].tolist()
    assert pos == [0, 1, 2, 3, 4, 5, 6, 7, 8, 5, 6]
    # the rejected completion sees the prompt and itself, never the chosen one
    attn = pb.attn[0, 0]
    rej = start + 5 + 4
    assert attn[rej, start:start + 5].all() and not attn[rej, start + 5:start + 9].any() and attn[rej, rej]
    assert not attn[start + 4, start + 5:].any()  # the prompt does not see its completions


def test_segments_group_by_prompt_and_first_fit_respects_capacity():
    segs = segments(SEQS)
    assert [idx for _, idx in segs] == [[0, 1], [2, 3, 4], [5]]
    rows = first_fit([7, 5, 4, 3, 1], capacity=8)
    assert sorted(i for r in rows for i in r) == [0, 1, 2, 3, 4]
    assert all(sum([7, 5, 4, 3, 1][i] for i in r) <= 8 for r in rows) and len(rows) == 3


@pytest.mark.parametrize("row_tokens", [1, 12, 512])  # one segment per row, several rows, one row
def test_packed_logps_equal_plain(model, row_tokens):
    pb = collate(SEQS, 0, share_prefix=True, row_tokens=row_tokens)
    assert isinstance(pb, PackedBatch) and packing_supported(model)
    lp_packed, _ = sequence_logps(model, pb)
    lp_plain, _ = sequence_logps(model, collate(SEQS, 0))
    assert torch.equal(lp_packed.mask, lp_plain.mask)
    assert torch.allclose(lp_packed.tokens, lp_plain.tokens, atol=1e-5)
    tc = lp_plain.tokens.shape[1]
    for i, (p, c) in enumerate(SEQS):  # and both equal each sequence run alone
        assert torch.allclose(lp_packed.tokens[i, tc - len(c):], alone(model, p, c), atol=1e-5)


def test_packed_gradients_equal_plain(model):
    def grads(batch):
        model.zero_grad()
        lp, _ = sequence_logps(model, batch)
        (lp.sum() * torch.arange(1.0, len(SEQS) + 1)).sum().backward()  # weights: rows not interchangeable
        return {n: p.grad.clone() for n, p in model.named_parameters()}
    g_plain = grads(collate(SEQS, 0))
    g_packed = grads(collate(SEQS, 0, share_prefix=True, row_tokens=12))
    model.zero_grad()
    for n in g_plain:
        assert torch.allclose(g_packed[n], g_plain[n], atol=1e-5, rtol=1e-4), n


def test_packed_logits_and_hidden_equal_plain(model):
    lp_plain, h_plain = sequence_logps(model, collate(SEQS, 0), want_logits=True, want_hidden=True)
    lp_packed, h_packed = sequence_logps(model, collate(SEQS, 0, share_prefix=True, row_tokens=12),
                                         want_logits=True, want_hidden=True)
    on = lp_plain.mask.bool()  # completion positions (the plain layout has garbage under its pads)
    assert torch.allclose(lp_packed.logits[on], lp_plain.logits[on], atol=1e-5)
    assert torch.equal(lp_packed.ids, lp_plain.ids)
    assert torch.allclose(h_packed, h_plain, atol=1e-5)


def test_eager_attention_packs_too(tiny_model_dir):
    m = load_causal_lm(str(tiny_model_dir))
    m.set_attn_implementation("eager")
    m.eval()
    assert packing_supported(m)
    lp_packed, _ = sequence_logps(m, collate(SEQS, 0, share_prefix=True, row_tokens=12))
    lp_plain, _ = sequence_logps(m, collate(SEQS, 0))
    assert torch.allclose(lp_packed.tokens, lp_plain.tokens, atol=1e-5)


def test_unsupported_attention_falls_back_to_plain(tiny_model_dir, monkeypatch):
    m = load_causal_lm(str(tiny_model_dir))
    m.eval()
    monkeypatch.setattr(m.config, "_attn_implementation", "flash_attention_2", raising=False)
    assert not packing_supported(m)  # a mask it would ignore: never packed
    monkeypatch.undo()
    lp, _ = sequence_logps(m, collate(SEQS, 0, share_prefix=True))
    assert torch.allclose(lp.tokens[0, -4:], alone(m, *SEQS[0]), atol=1e-5)


def test_empty_prompt_uses_plain_layout():
    assert not isinstance(collate([([], [3, 4]), ([1], [5])], 0, share_prefix=True), PackedBatch)


def _records(feedback: str):
    from alignkit.data.records import Binary, Listwise
    from conftest import make_demos, make_pairs
    pairs = make_pairs(6, seed=3)
    if feedback == "pairwise":
        return pairs
    if feedback in ("demonstration", "negative"):
        return make_demos(6, seed=3)
    if feedback == "binary":
        return [Binary(p.prompt, p.chosen if i % 2 else p.rejected, bool(i % 2)) for i, p in enumerate(pairs)]
    if feedback == "listwise":
        return [Listwise(p.prompt, (p.chosen, p.rejected, p.chosen + " ."), (2.0, 0.0, 1.0)) for p in pairs]
    raise AssertionError(feedback)


def test_every_offline_loss_is_unchanged_by_packing(tiny_model_dir, model, monkeypatch):
    """The offline loop packs its micro-batches: every registered loss (references cached or live,
    full logits, a value head, mismatched pairs, running state) gives the plain layout's loss."""
    import copy
    from alignkit.data.tokenize import Encoder
    from alignkit.losses.registry import LOSSES
    from alignkit.models.loading import load_tokenizer
    from alignkit.train import offline, refcache
    from alignkit.train.shapes import shape_for

    tok = load_tokenizer(str(tiny_model_dir))
    plain_collate = offline.collate
    torch.manual_seed(0)
    head = torch.nn.Linear(model.config.hidden_size, 1)
    ref = copy.deepcopy(model)  # a reference away from the policy: no exact ties at step 0
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.05 * torch.randn_like(p))
    for name, spec in LOSSES.items():
        records = _records(spec.feedback)
        cfg = spec.config()
        shape = shape_for(spec, records, cfg)
        records = shape.prepare(records, model, tok, 0)
        examples = offline.encode_examples(records, shape, Encoder(tok, 64))
        cache = refcache.compute_ref_logps(ref, examples, tok.pad_token_id) if spec.reference else None
        live = ref if spec.needs_logits else None
        objective = offline.OfflineObjective(spec, cfg, shape, model, tok.pad_token_id,
                                             None if live else cache, live, head if spec.needs_value else None)
        outs = []
        for share in (True, False):
            monkeypatch.setattr(offline, "collate", lambda s, pad, share_prefix=False, _sh=share:
                                plain_collate(s, pad, share_prefix=_sh))
            state = copy.deepcopy(objective.state)
            with torch.no_grad():
                outs.append(objective.compute(examples, state=state))
        monkeypatch.setattr(offline, "collate", plain_collate)
        packed, plain = outs
        assert torch.allclose(packed.loss, plain.loss, atol=1e-5), name
        for k, v in plain.metrics.items():
            assert torch.allclose(torch.as_tensor(packed.metrics[k]).float(), torch.as_tensor(v).float(),
                                  atol=1e-4), (name, k)


def test_reward_model_packed_scores_equal_plain(tiny_model_dir):
    """A reward model reads r(x, y) at each sequence's last token: packed rows give the same rewards
    and the same gradients as left-padded rows."""
    from alignkit.rewards.model import RewardModel, load_reward_model
    from alignkit.train.packing import attention_mask
    torch.manual_seed(0)
    rm = RewardModel(load_reward_model(str(tiny_model_dir))[0])
    assert rm.packs()

    def rewards(packed: bool):
        rm.zero_grad()
        if packed:
            pb = collate(SEQS, 0, share_prefix=True, row_tokens=12)
            r = rm(pb.input_ids, attention_mask(rm.inner(), pb), pb.position_ids, pb.last)
        else:
            sb = collate(SEQS, 0)
            r = rm(sb.input_ids, sb.attention_mask)
        (r * torch.arange(1.0, len(SEQS) + 1)).sum().backward()
        return r.detach(), {n: p.grad.clone() for n, p in rm.named_parameters()}
    r_plain, g_plain = rewards(False)
    r_packed, g_packed = rewards(True)
    assert torch.allclose(r_packed, r_plain, atol=1e-5)
    for n in g_plain:
        assert torch.allclose(g_packed[n], g_plain[n], atol=1e-5, rtol=1e-4), n


def test_rl_token_forward_packed_equals_plain(model):
    """The RL update and the rollout's no-grad pass run G samples of a prompt packed: the same
    per-token log-probs (with gradients) and entropies as the plain rows."""
    from alignkit.rl.forward import token_forward
    plain = collate(SEQS, 0)
    packed = collate(SEQS, 0, share_prefix=True)
    assert isinstance(packed, PackedBatch)
    a = token_forward(model, plain, want_hidden=True, want_entropy=True)
    b = token_forward(model, packed, want_hidden=True, want_entropy=True)
    assert torch.equal(plain.comp_mask, packed.comp_mask)
    assert (a.logps - b.logps).abs().max().item() < 1e-5
    assert (a.entropy - b.entropy).abs().max().item() < 1e-5 and a.entropy.abs().sum() > 0
    m = plain.comp_mask.unsqueeze(-1)  # hidden states at the columns predicting each completion token
    assert ((a.hidden - b.hidden) * m).abs().max().item() < 1e-4 and (b.hidden * (1 - m)).abs().max() == 0
    ga = torch.autograd.grad(a.logps.sum() + (a.hidden * m).sum(), list(model.parameters()))
    gb = torch.autograd.grad(b.logps.sum() + (b.hidden * m).sum(), list(model.parameters()))
    assert max((x - y).abs().max().item() for x, y in zip(ga, gb)) < 1e-3
