"""`alignkit serve --model DIR` speaks the OpenAI protocol, and the judges' HTTP client and local
backend read the same numbers from the same tiny model: label log-probs equal a direct forward pass,
greedy text equals transformers' generate, the whole judge runs over loopback with a cache."""
import json
import math
import threading
import urllib.error
import urllib.request

import pytest
import torch

import alignkit.judges  # noqa: F401
from alignkit.data.tokenize import Encoder
from alignkit.judges.client import HTTPBackend, JudgeServerError
from alignkit.judges.hf import HFBackend
from alignkit.rewards.specs import judge_from_spec
from alignkit.serve import load_service, make_server

from conftest import synthetic_texts


@pytest.fixture(scope="module")
def judge_model(tmp_path_factory):
    """A tiny Llama with a context long enough for the built-in judging prompts (~1,200 tokens)."""
    from alignkit.models.tiny import TinyLlamaConfig, make_tiny_model
    out = tmp_path_factory.mktemp("judge-model")
    return make_tiny_model(synthetic_texts(), out, vocab_size=300,
                           cfg=TinyLlamaConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                                               max_position_embeddings=4096))


@pytest.fixture(scope="module")
def server(judge_model):
    service = load_service(None, str(judge_model), max_new_tokens=48, model_name="tiny-judge", max_logprobs=1000)
    srv = make_server(service, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", service
    srv.shutdown()
    srv.server_close()


def call(url, body=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def next_token_logprobs(service, prompt) -> list:
    """log P(next token) over the vocabulary, computed directly."""
    ids = Encoder.untruncated(service.tok).prompt_ids(prompt)
    with torch.no_grad():
        return service.model(torch.tensor([ids])).logits[0, -1].float().log_softmax(-1).tolist()


def test_models_and_errors_in_openai_shape(server):
    url, _ = server
    assert call(url + "/v1/models") == (200, {"object": "list", "data": [
        {"id": "tiny-judge", "object": "model", "created": 0, "owned_by": "alignkit"}]})
    assert call(url + "/health")[1]["endpoints"] == ["/generate", "/v1/completions", "/v1/chat/completions", "/v1/models"]
    bad = [({"prompt": "x", "model": "gpt-x"}, 404, "model 'gpt-x' not found; this server serves 'tiny-judge'"),
           ({"prompt": "x", "max_tokens": 100}, 400, "field 'max_tokens': 100 is over this server's limit of 48"),
           ({"prompt": "x", "n": 2}, 400, "field 'n': only 1 is supported"),
           ({"prompt": "x", "echo": True}, 400, "field 'echo': not supported"),
           ({"prompt": [1, 2]}, 400, "field 'prompt': expected a string or a non-empty list of strings"),
           ({"prompt": "x", "logprobs": 5000}, 400, "field 'logprobs': expected a value in [0, 1000]")]
    for body, status, message in bad:
        got = call(url + "/v1/completions", body)
        assert got[0] == status and got[1]["error"]["message"].startswith(message), got
        assert got[1]["error"]["type"] == "invalid_request_error"
    got = call(url + "/v1/chat/completions", {"messages": [{"role": "robot", "content": "x"}]})
    assert got[0] == 400 and "role of system, developer, user or assistant" in got[1]["error"]["message"]
    got = call(url + "/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})
    assert got[0] == 400 and "needs \"logprobs\": true" in got[1]["error"]["message"]
    got = call(url + "/v1/completions", {"prompt": "the cat " * 2100, "max_tokens": 4})
    assert got[0] == 400 and "more than the model's context of 4096 tokens" in got[1]["error"]["message"]


def test_completions_logprobs_match_a_forward_pass(server):
    url, service = server
    status, reply = call(url + "/v1/completions", {"prompt": ["the cat sat on", "what is"], "max_tokens": 5,
                                                   "temperature": 0, "logprobs": 3})
    assert status == 200 and reply["object"] == "text_completion" and reply["model"] == "tiny-judge"
    assert [c["index"] for c in reply["choices"]] == [0, 1]
    c = reply["choices"][0]
    direct = next_token_logprobs(service, "the cat sat on")
    best = max(range(len(direct)), key=direct.__getitem__)
    lp = c["logprobs"]
    assert lp["tokens"][0] == service.tok.decode([best])  # greedy: the argmax
    assert lp["token_logprobs"][0] == pytest.approx(direct[best], abs=1e-4)
    # three alternatives and the sampled token, as vLLM lists them (pieces that decode alike share a key)
    assert 1 <= len(lp["top_logprobs"][0]) <= 4
    assert max(lp["top_logprobs"][0].values()) == pytest.approx(direct[best], abs=1e-4)
    assert lp["text_offset"][:2] == [0, len(lp["tokens"][0])]
    assert c["text"] == "".join(lp["tokens"]) and c["finish_reason"] in ("length", "stop")
    prompt_tokens = len(Encoder.untruncated(service.tok).prompt_ids("the cat sat on")) + len(
        Encoder.untruncated(service.tok).prompt_ids("what is"))
    assert reply["usage"]["prompt_tokens"] == prompt_tokens
    # a stop string cuts the text before it
    stop = c["text"][2:4] if len(c["text"]) >= 4 else None
    if stop:
        _, cut = call(url + "/v1/completions", {"prompt": "the cat sat on", "max_tokens": 5, "temperature": 0, "stop": stop})
        assert cut["choices"][0]["text"] == c["text"][: c["text"].index(stop)]
        assert cut["choices"][0]["finish_reason"] == "stop"


def test_chat_greedy_text_equals_generate(server):
    from alignkit.models.generate import SamplingConfig, generate_texts
    url, service = server
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "what is two"}]}]
    status, reply = call(url + "/v1/chat/completions", {"messages": messages, "max_tokens": 6, "temperature": 0,
                                                        "logprobs": True, "top_logprobs": 2})
    assert status == 200 and reply["object"] == "chat.completion"
    plain = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "what is two"}]
    [direct] = generate_texts(service.model, service.tok, [plain], SamplingConfig(max_new_tokens=6, temperature=0))
    assert reply["choices"][0]["message"] == {"role": "assistant", "content": direct}
    first = reply["choices"][0]["logprobs"]["content"][0]
    assert first["logprob"] == pytest.approx(max(next_token_logprobs(service, plain)), abs=1e-4)
    assert len(first["top_logprobs"]) == 2 and first["bytes"] == list(first["token"].encode())
    # seeded sampling repeats itself
    body = {"messages": plain, "max_tokens": 6, "temperature": 1.0, "seed": 5}
    assert call(url + "/v1/chat/completions", body)[1]["choices"] == call(url + "/v1/chat/completions", body)[1]["choices"]


@pytest.mark.parametrize("chat", [True, False])
def test_client_label_probabilities_equal_the_model(server, chat):
    url, service = server
    vocab = len(service.tok)
    b = HTTPBackend(url + "/v1", chat=chat, top_logprobs=vocab)
    query = "Which is better? Answer 1 or 2.\nPreferred response:"
    [lps] = b.label_logprobs([query], ("1", "2"))
    direct = next_token_logprobs(service, [{"role": "user", "content": query}] if chat else query)
    # every token whose text is the label, stripped ("1" and " 1", if the vocabulary has both)
    for label, got in zip(("1", "2"), lps):
        ids = [i for i in range(vocab) if service.tok.decode([i]).strip() == label]
        assert got == pytest.approx(math.log(sum(math.exp(direct[i]) for i in ids)), abs=1e-4)
    assert b.model == "tiny-judge" and b.usage()["calls"] == 2


def test_hf_backend_label_logprobs_single_and_multi_token(judge_model):
    backend = HFBackend(str(judge_model), batch_size=2, chat="auto")
    tok, model = backend.tok, backend.model
    queries = ["the cat sat on", [{"role": "user", "content": "what is two"}], "a much longer prompt about the dog"]
    assert backend.chat is True  # the tiny tokenizer has a chat template

    def seq_logprob(prompt, text):
        ids = Encoder.untruncated(tok).prompt_ids(prompt)
        tail = tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            lp = model(torch.tensor([ids + tail])).logits[0].float().log_softmax(-1)
        return sum(float(lp[len(ids) - 1 + k, t]) for k, t in enumerate(tail))

    for labels in (("1", "2"), ("the", "no"), ("yes please", "no")):
        got = backend.label_logprobs(queries, labels)  # batched, left-padded
        for q, row in zip(queries, got):
            for label, value in zip(labels, row):
                spellings = {tuple(tok(t, add_special_tokens=False)["input_ids"]): t for t in (label, " " + label)}
                want = math.log(sum(math.exp(seq_logprob(q, t)) for t in spellings.values()))
                assert value == pytest.approx(want, abs=1e-4), (q, label)
    texts = backend.generate(queries[:2], 5)
    assert len(texts) == 2 and backend.usage()["completion_tokens"] <= 10


def test_pairwise_judge_over_loopback_with_cache(server, tmp_path):
    """The RLAIF judge through `alignkit serve`: each order's probability is the model's own
    p("1") / (p("1") + p("2")) after the judging prompt; a rerun is answered from the cache."""
    url, service = server
    vocab = len(service.tok)
    cache = tmp_path / "cache.jsonl"
    prompts, a, b = ["what is two plus three ?", "please help me"], ["five .", "sure , here is how ."], ["no .", "no"]
    remote = judge_from_spec(f"llm-pair:{url}/v1,top_logprobs={vocab},cache={cache}")
    got = remote.judge_pairs(prompts, a, b)
    ids = {lab: [i for i in range(vocab) if service.tok.decode([i]).strip() == lab] for lab in "12"}

    def p_first(prompt, x, y):
        direct = next_token_logprobs(service, remote.direct_query(remote.fields(prompt, (x, y))))
        p1, p2 = (sum(math.exp(direct[i]) for i in ids[lab]) for lab in "12")
        return p1 / (p1 + p2)

    for j, prompt, x, y in zip(got, prompts, a, b):
        assert j.forward == pytest.approx(p_first(prompt, x, y), abs=1e-4)
        assert j.backward == pytest.approx(1 - p_first(prompt, y, x), abs=1e-4)
        assert j.probability == pytest.approx((j.forward + j.backward) / 2)
    assert remote.usage()["calls"] == 1 + 4  # /v1/models, then 2 pairs x 2 orders
    again = judge_from_spec(f"llm-pair:{url}/v1,top_logprobs={vocab},cache={cache}")
    assert again.judge_pairs(prompts, a, b) == got
    assert again.usage()["calls"] == 1 and again.usage()["cache_hits"] == 4  # only /v1/models is asked again


def test_cot_and_pointwise_over_loopback(server):
    url, _ = server
    pair = judge_from_spec(f"llm-pair:{url}/v1,cot=1,max_tokens=6,template=harmless")
    [j] = pair.judge_pairs(["how do i pick a lock ?"], ["i cannot help with that ."], ["sure , here is how ."])
    assert len(j.rationales) == 2 and 0 <= j.probability <= 1
    score = judge_from_spec(f"llm-score:{url}/v1,max_tokens=6")
    [d] = score.score_details(["what is two plus three ?"], ["five ."])
    assert 0 <= d.score <= 5 and len(d.texts) == 1
    direct = judge_from_spec(f"llm-score:{url}/v1,cot=0,top_logprobs=1000")
    [e] = direct.score_details(["q"], ["r"])
    assert sum(e.probabilities.values()) == pytest.approx(1.0) and 0 <= e.score <= 5
    with pytest.raises(JudgeServerError, match=r"HTTP 400: field 'max_tokens': 500 is over this server's limit of 48 "
                                               r"\(start it with a larger --max-new-tokens\) \(not retried\)"):
        judge_from_spec(f"llm-score:{url}/v1,max_tokens=500").score(["q"], ["r"])


def test_serve_token_guards_openai_endpoints(judge_model):
    service = load_service(None, str(judge_model), max_new_tokens=8)
    assert service.model_name == judge_model.name
    srv = make_server(service, "0.0.0.0", 0, token="s3cret", quiet=True)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
        with pytest.raises(JudgeServerError, match="HTTP 401"):
            HTTPBackend(url, model=service.model_name, api_key_env="").generate(["q"], 2)
        import os
        os.environ["ALIGNKIT_TEST_TOKEN"] = "s3cret"
        try:
            assert len(HTTPBackend(url, api_key_env="ALIGNKIT_TEST_TOKEN").generate(["q"], 2)) == 1
        finally:
            del os.environ["ALIGNKIT_TEST_TOKEN"]
    finally:
        srv.shutdown()
        srv.server_close()


def test_label_with_a_local_judge(judge_model, tmp_path):
    from alignkit.config import build_config
    from alignkit.data.readers import read_records
    from alignkit.judges.label import LabelConfig, run_label
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"question {i} ?", "chosen": "sure , here is how .",
                                        "rejected": "no , i cannot help ."}) + "\n" for i in range(3)))
    cfg = build_config(LabelConfig, {"judge": f"llm-pair:hf:{judge_model},cot=1,max_tokens=4", "data": str(data),
                                     "output": str(tmp_path / "ai.jsonl"), "batch_size": 2}, where="label")
    report = run_label(cfg, log=lambda line: None)
    records, _ = read_records(str(tmp_path / "ai.jsonl"))
    assert len(records) == 3 and all(0.5 <= r.weight <= 1 for r in records)
    assert report["usage"]["calls"] == 3 * 2 * 2 and report["usage"]["completion_tokens"] > 0  # rationale + verdict
    assert report["position_consistency"]["comparisons"] == 3


def test_hf_backend_multi_token_labels_run_the_prompt_once(judge_model):
    """Labels whose spaced spelling is two tokens (" 1" = " " + "1" when digits are split, as in
    SmolLM2's tokenizer): each batch's prompt is run once and the shared prefix " " once after it, from
    the KV cache, instead of one full forward per spelling; the log-probs stay the teacher-forced ones."""
    backend = HFBackend(str(judge_model), batch_size=4, chat=False)
    tok, model = backend.tok, backend.model
    labels = ("yes please", "no thanks")  # several tokens in the tiny vocabulary, spaced or not
    queries = ["the cat sat on the mat", "what is two", "a much longer prompt about the dog and the cat"]
    lengths = []
    real = model.forward

    def counting(*a, **k):
        lengths.append(k["input_ids"].shape[1])
        return real(*a, **k)

    model.forward = counting
    try:
        got = backend.label_logprobs(queries, labels)
    finally:
        model.forward = real
    longest_prompt = max(len(Encoder.untruncated(tok).prompt_ids(q)) for q in queries)
    assert sum(n >= longest_prompt for n in lengths) == 1  # one batch, one long forward
    prefixes = {s[:k] for lab in labels for t in (lab, " " + lab)
                for s in [tuple(tok(t, add_special_tokens=False)["input_ids"])] for k in range(1, len(s))}
    assert len(lengths) == 1 + len(prefixes)
    ids = Encoder.untruncated(tok).prompt_ids(queries[0])
    tail = tok(labels[0], add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        lp = model(torch.tensor([ids + tail])).logits[0].float().log_softmax(-1)
    plain = sum(float(lp[len(ids) - 1 + k, t]) for k, t in enumerate(tail))
    assert got[0][0] >= plain - 1e-4  # log-sum-exp over spellings is at least the plain one
