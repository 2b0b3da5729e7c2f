"""Layer-dropped students: the kept layers are the source's own, the folder is a complete chat model,
keeping every layer reproduces the source exactly, and the saved student generates with its KV cache."""
import json

import pytest
import torch

from training.student import MANIFEST, StudentError, make_student, parse_layers, spread


def test_layers_are_evenly_spaced_with_the_first_and_last_and_bad_choices_are_refused():
    assert spread(30, 10) == [0, 3, 6, 10, 13, 16, 19, 23, 26, 29]
    assert spread(30, 30) == list(range(30)) and spread(30, 1) == [0] and spread(2, 2) == [0, 1]
    assert parse_layers("0,5,29", 30) == [0, 5, 29] and parse_layers("4", 30) == [0, 10, 19, 29]
    for bad in ("0", "31", "5,3", "0,0,4", "0,30", "ten", "", ","):
        with pytest.raises(StudentError):
            parse_layers(bad, 30)


def _logits(folder, ids):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(ids).logits


def test_keeping_every_layer_reproduces_the_source(tiny_model, tmp_path):
    ids = torch.tensor([[1, 400, 2500, 17, 9000, 33]])
    student = make_student(tiny_model, 2, tmp_path / "copy")
    assert student.kept_layers == [0, 1] and student.parameters == student.source_parameters
    assert torch.equal(_logits(tiny_model, ids), _logits(student.folder, ids))


def test_a_student_of_the_embedded_model_keeps_its_layers_tokenizer_and_cache(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pipelines.llm.models import ModelSpec, check_folder, resolve

    student = make_student("embedded:smollm2-135m-instruct", "4", tmp_path / "s4")
    assert student.kept_layers == [0, 10, 19, 29] and student.source_layers == 30
    assert 0.3 < student.parameters / student.source_parameters < 0.6  # embeddings stay; 26 of 30 layers go
    check_folder(tmp_path / "s4")  # weights, tokenizer and chat template: a model every job can load
    manifest = json.loads((tmp_path / "s4" / MANIFEST).read_text())
    assert manifest["source_revision"] == resolve(ModelSpec()).revision

    source = AutoModelForCausalLM.from_pretrained(resolve(ModelSpec()).path, dtype=torch.float32)
    small = AutoModelForCausalLM.from_pretrained(student.folder, dtype=torch.float32).eval()
    assert small.config.num_hidden_layers == 4
    assert torch.equal(small.model.layers[2].mlp.down_proj.weight, source.model.layers[19].mlp.down_proj.weight)
    assert torch.equal(small.model.embed_tokens.weight, source.model.embed_tokens.weight)

    tok = AutoTokenizer.from_pretrained(student.folder)
    ids = tok("The gNB schedules uplink grants", return_tensors="pt").input_ids
    with torch.no_grad():
        cached = small.generate(ids, max_new_tokens=6, do_sample=False, use_cache=True)[0, ids.shape[1]:]
        seq = ids
        for _ in range(6):  # the same greedy tokens without any cache
            seq = torch.cat([seq, small(seq, use_cache=False).logits[:, -1:].argmax(-1)], dim=1)
    assert cached.tolist() == seq[0, ids.shape[1]:].tolist()

    with pytest.raises(StudentError, match="exists"):
        make_student("embedded:smollm2-135m-instruct", "4", tmp_path / "s4")


def test_the_cli_writes_a_student_and_refuses_an_existing_folder(tiny_model, tmp_path, capsys):
    from jobs import cli

    out = tmp_path / "s1"
    assert cli.main(["train", "student", "--model", tiny_model, "--layers", "1", "--out", str(out)]) == 0
    assert json.loads((out / MANIFEST).read_text())["kept_layers"] == [0]
    assert cli.main(["train", "student", "--model", tiny_model, "--layers", "1", "--out", str(out)]) == 1
    assert "refused" in capsys.readouterr().err
    assert cli.main(["train", "student", "--model", tiny_model, "--out", str(tmp_path / "s2")]) == 1  # no --layers
