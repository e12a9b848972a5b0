"""Loading is safe by default: weights come from safetensors only (a pickle next to them is never
opened) and model code from the folder runs only when --trust-remote-code asks for it."""
import pytest
import torch
from safetensors.torch import load_file

from alignkit.cli import main
from alignkit.models.loading import load_causal_lm, load_tokenizer

from hostile.files import GOOD, pickled_model_folder, write_lines


def test_safetensors_win_over_a_pickle_in_the_same_folder(tiny_model_dir, tmp_path):
    marker = tmp_path / "pickle-ran"
    folder = pickled_model_folder(tiny_model_dir, tmp_path / "both", marker, keep_safetensors=True)
    model = load_causal_lm(str(folder))
    expected = load_file(str(tiny_model_dir / "model.safetensors"))
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in expected.items())
    assert not marker.exists()


class _Stop(OSError):
    pass


@pytest.mark.parametrize("flag,expected", [([], False), (["--trust-remote-code"], True),
                                           (["--trust-remote-code", "false"], False)])
def test_trust_remote_code_is_off_unless_asked(tiny_model_dir, tmp_path, monkeypatch, capsys, flag, expected):
    import transformers
    seen = []

    def spy(cls_name):
        def from_pretrained(path, *a, **kw):
            seen.append((cls_name, kw.get("trust_remote_code")))
            raise _Stop("stopped by the test")
        return from_pretrained

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy("model"))
    data = write_lines(tmp_path / "pairs.jsonl", [GOOD, GOOD])
    rc = main(["train", "dpo", "--model", str(tiny_model_dir), "--data", str(data), "--output",
               str(tmp_path / "out"), "--progress", "false", "--eval-fraction", "0", *flag])
    assert rc == 2 and "stopped by the test" in capsys.readouterr().err
    assert seen == [("model", expected)]

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", spy("tokenizer"))
    with pytest.raises(Exception, match="stopped by the test"):
        load_tokenizer(str(tiny_model_dir))
    assert seen[-1] == ("tokenizer", False)


def test_model_code_in_the_folder_does_not_run_by_default(tiny_model_dir, tmp_path):
    import json
    import shutil
    folder = tmp_path / "remote"
    shutil.copytree(tiny_model_dir, folder)
    marker = tmp_path / "remote-code-ran"
    (folder / "evil_model.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                          "from transformers import LlamaForCausalLM as EvilModel\n")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "evil_model.EvilModel"}
    (folder / "config.json").write_text(json.dumps(cfg))
    model = load_causal_lm(str(folder))  # llama is known locally: the folder's code is ignored
    assert type(model).__name__ == "LlamaForCausalLM"
    assert not marker.exists()
