"""LoRA through peft (--peft lora): its options, what trains, the merged and adapter-only
folders and how they load (with and without peft), checkpoints and resume, two processes, RE's
marker embeddings."""

import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from accel_trainer import TrainConfig, commands
from accel_trainer.cli import main
from accel_trainer.errors import ConfigError
from accel_trainer.tasks.demo import write_demo_re_corpus
from tests.conftest import (
    REPO_ROOT,
    evaluate_saved,
    read_json,
    read_jsonl,
    reset_accelerate,
    without_dropout,
)

peft = pytest.importorskip("peft")


def run_bad(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("accel-trainer: error:") == 1
    line = next(line for line in err.splitlines() if line.startswith("accel-trainer: error:"))
    return line.removeprefix("accel-trainer: error: ")


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--peft", "lora", "--lora_r", "0"],
            "--lora_r must be positive: got 0. Use 1 or more.",
        ),
        (
            ["--peft", "lora", "--lora_alpha", "-2"],
            "--lora_alpha must be positive: got -2. Use 1 or more.",
        ),
        (
            ["--peft", "lora", "--lora_dropout", "1"],
            "--lora_dropout must be in [0, 1): got 1.0. Use e.g. 0.1, or 0 for none.",
        ),
        (
            ["--lora_r", "4"],
            "--lora_r needs --peft lora: got --peft none. Add --peft lora, or leave out --lora_r.",
        ),
        (
            ["--save_adapter_only"],
            "--save_adapter_only needs --peft lora: got --peft none. Add --peft lora, or leave "
            "out --save_adapter_only.",
        ),
        (
            ["--peft", "lora", "--save_adapter_only"],
            "--save_adapter_only needs a pretrained --model_name_or_path: got tiny-bert, whose "
            "random base weights no one can load the adapter onto later. Give a hub model or a "
            "model folder, or leave out --save_adapter_only to save merged weights.",
        ),
        (
            ["--peft", "lora", "--lora_target_modules", "query", " "],
            "--lora_target_modules has an empty name: got ['query', ' ']. Name the modules, e.g. "
            "query value, or leave the option out for peft's default.",
        ),
    ],
)
def test_bad_lora_options_stop_before_any_model(
    tmp_path, capsys, no_model_building, small_data, flags, message
):
    out = tmp_path / "o"
    argv = ["train", "--train_file", small_data[0], "--output_dir", str(out), *flags]
    assert run_bad(argv, capsys) == message
    assert not out.exists()


def test_peft_lora_without_peft_says_how_to_install(
    tmp_path, capsys, no_model_building, small_data, monkeypatch
):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "peft" else real_find_spec(name, *a),
    )
    argv = ["train", "--train_file", small_data[0], "--output_dir", str(tmp_path / "o")]
    assert run_bad([*argv, "--peft", "lora"], capsys) == (
        "--peft lora needs the peft package, which is not installed: "
        'pip install -e ".[peft]" (or pip install peft).'
    )


def test_an_unknown_target_module_is_refused_before_tokenizing(
    tmp_path, capsys, small_data, monkeypatch
):
    from accel_trainer import prepare

    def refuse(*args, **kwargs):
        raise AssertionError("tokenized despite a bad --lora_target_modules")

    monkeypatch.setattr(prepare, "tokenized", refuse)
    argv = ["train", "--train_file", small_data[0], "--output_dir", str(tmp_path / "o")]
    err = run_bad([*argv, "--peft", "lora", "--lora_target_modules", "qurey", "value"], capsys)
    assert err.startswith(
        "--lora_target_modules names no layer of this bert model that takes an adapter: got "
        "'qurey'. Its layers (outside the head) are named: dense, key, "
    )
    assert "query" in err and "classifier" not in err


def test_a_model_type_without_a_peft_default_names_its_layers():
    from transformers import DistilBertConfig, DistilBertForTokenClassification

    from accel_trainer.lora import apply_lora
    from accel_trainer.lora_options import PeftOptions

    config = DistilBertConfig(vocab_size=50, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    model = DistilBertForTokenClassification(config)
    with pytest.raises(ConfigError) as error:
        apply_lora(model, None, [], PeftOptions(peft="lora"))
    assert str(error.value) == (
        "--lora_target_modules has no default for model type 'distilbert': peft names none for "
        "it. Give the layers to adapt, e.g. --lora_target_modules k_lin lin1; this model's "
        "layers that take adapters are named: k_lin, lin1, lin2, out_lin, "
        "position_embeddings, q_lin, v_lin, word_embeddings."
    )
    wrapped = apply_lora(model, None, [], PeftOptions(peft="lora", lora_target_modules=["q_lin"]))
    assert wrapped.peft_config["default"].target_modules == {"q_lin"}


def lora_options(data, output_dir, **overrides):
    values = dict(
        train_file=data[0],
        validation_file=data[1],
        output_dir=str(output_dir),
        peft="lora",
        learning_rate=1e-2,
        num_train_epochs=4,
        per_device_train_batch_size=8,
        logging_steps=1,
    )
    return {**values, **overrides}


def build(data, output_dir, **overrides):
    return commands.build_trainer(
        TrainConfig.from_options(**lora_options(data, output_dir, **overrides))
    )


def trainable_names(model) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]


@pytest.fixture(scope="module")
def ner_run(small_data, tmp_path_factory):
    """tiny-bert NER with LoRA, trained once: (trainer, output folder, initial weights)."""
    out = tmp_path_factory.mktemp("lora-ner") / "out"
    trainer = build(small_data, out)
    model = trainer.accelerator.unwrap_model(trainer.model)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.results = trainer.fit()
    reset_accelerate()
    return trainer, out, initial


def test_only_the_adapters_and_the_head_train_and_reach_the_optimizer(ner_run):
    trainer, out, initial = ner_run
    model = trainer.accelerator.unwrap_model(trainer.model)
    names = trainable_names(model)
    assert names and all("lora_" in n or ".modules_to_save." in n for n in names)
    assert any(".classifier.modules_to_save." in n for n in names)
    assert {n.split(".")[-4] for n in names if "lora_" in n} == {"query", "value"}
    in_optimizer = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert in_optimizer == {id(p) for p in model.parameters() if p.requires_grad}
    # The frozen weights did not move; the adapters did.
    final = model.state_dict()
    frozen = [k for k in final if "lora_" not in k and ".modules_to_save." not in k]
    assert all(torch.equal(final[k], initial[k]) for k in frozen)
    assert not torch.equal(final[names[1]], initial[names[1]])  # a lora_B, zero at the start
    results = trainer.results
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert results["trainable_parameters"] == trainable < results["total_parameters"] / 10
    assert results["peft"]["target_modules"] == ["query", "value"]
    assert results["peft"]["trained_in_full"] == ["classifier"]
    assert results["peft"]["saved"] == "merged"


def test_lora_learns_the_tiny_task(ner_run):
    trainer, out, _ = ner_run
    losses = [r["loss"] for r in read_jsonl(out / "log_history.jsonl") if "loss" in r]
    assert sum(losses[-5:]) / 5 < 0.6 * losses[0]
    # on held-out sentences too: from about ln(9 labels) = 2.2 at the start
    assert trainer.results["eval_loss"] < 0.6 * losses[0]
    assert trainer.layout.name == "packed"  # the packing probe passes through the peft model


def test_the_merged_folder_is_a_plain_model_with_the_trained_logits(ner_run, small_data, tmp_path):
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

    trainer, out, _ = ner_run
    assert not (out / "adapter_config.json").exists()
    assert "lora" not in " ".join(load_file(out / "model.safetensors"))
    entry = read_json(out / "config.json")["accel_trainer"]
    assert entry["peft"]["method"] == "lora" and entry["peft"]["saved"] == "merged"
    assert entry["peft"]["r"] == 8 and entry["peft"]["alpha"] == 16
    assert "LoRA (peft): rank 8" in (out / "README.md").read_text()
    tokenizer = AutoTokenizer.from_pretrained(out)
    batch = tokenizer(["john smith lives in paris ."], return_tensors="pt")
    trained = trainer.accelerator.unwrap_model(trainer.model).eval()
    loaded = AutoModelForTokenClassification.from_pretrained(out).eval()
    with torch.no_grad():
        difference = (trained(**batch).logits - loaded(**batch).logits).abs().max().item()
    assert difference < 1e-5
    assert pipeline("token-classification", model=str(out))("john smith lives in paris .")
    metrics = evaluate_saved(out, small_data[1], tmp_path / "eval")
    assert metrics["eval_f1"] == trainer.results["eval_f1"]
    assert metrics["eval_accuracy"] == trainer.results["eval_accuracy"]


WITHOUT_PEFT = """
import sys
sys.modules["peft"] = None  # `import peft` raises ImportError
from transformers import AutoModelForTokenClassification, pipeline
from accel_trainer.cli import main

folder, dev, output = sys.argv[1:]
AutoModelForTokenClassification.from_pretrained(folder)
pipeline("token-classification", model=folder)("john smith lives in paris .")
status = main(["predict", "--model_name_or_path", folder, "--input_file", dev,
               "--output_file", output])
assert "peft" not in [name for name, module in sys.modules.items() if module is not None]
sys.exit(status)
"""


def test_the_merged_folder_loads_and_predicts_without_peft(ner_run, small_data, tmp_path):
    _, out, _ = ner_run
    output = tmp_path / "dev.predicted.conll"
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PEFT, str(out), small_data[1], str(output)],
        capture_output=True, text=True, timeout=120, env=env, cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert output.read_text().count("\n\n") >= 36  # 37 dev sentences


@pytest.fixture(scope="module")
def base_folder(small_data, tmp_path_factory):
    """A small "pretrained" BERT folder (random weights, saved): a base an adapter names."""
    from accel_trainer.models import build_tiny_bert, build_wordpiece_tokenizer
    from accel_trainer.tasks import NerTask

    task = NerTask()
    words = list(task.words(task.read(small_data[0], "train", "auto")))
    tokenizer = build_wordpiece_tokenizer(words)
    torch.manual_seed(0)
    model = build_tiny_bert("AutoModel", len(tokenizer), ["A", "B"], 128)
    folder = tmp_path_factory.mktemp("base") / "tiny-base"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_an_adapter_only_folder_holds_the_adapter_and_loads_back(
    small_data, base_folder, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "adapter"
    trainer = build(small_data, out, model_name_or_path=base_folder, save_adapter_only=True)
    results = trainer.fit()
    reset_accelerate()
    files = set(os.listdir(out))
    assert {"adapter_config.json", "adapter_model.safetensors", "config.json"} <= files
    assert {"tokenizer.json", "README.md", "model_manifest.json"} <= files
    assert "model.safetensors" not in files
    adapter = read_json(out / "adapter_config.json")
    assert adapter["base_model_name_or_path"] == os.path.abspath(base_folder)
    assert adapter["r"] == 8 and adapter["task_type"] == "TOKEN_CLS"
    weights = load_file(out / "adapter_model.safetensors")
    assert any("classifier" in key for key in weights)  # the head, trained in full
    assert sum(t.numel() for t in weights.values()) == results["trainable_parameters"]
    assert read_json(out / "config.json")["accel_trainer"]["peft"]["saved"] == "adapter"
    # evaluate loads base + adapter through peft, strictly, and scores as training did
    metrics = evaluate_saved(out, small_data[1], tmp_path / "eval")
    assert metrics["eval_f1"] == results["eval_f1"]
    assert metrics["eval_loss"] == pytest.approx(results["eval_loss"], rel=1e-5)
    # peft's own loader, as the model card shows it
    from transformers import AutoModelForTokenClassification

    base = AutoModelForTokenClassification.from_pretrained(base_folder, num_labels=9)
    model = peft.PeftModel.from_pretrained(base, str(out)).merge_and_unload()
    trained = trainer.accelerator.unwrap_model(trainer.model).eval()
    batch = {"input_ids": torch.tensor([[2, 40, 41, 42, 3]])}
    with torch.no_grad():
        assert torch.allclose(trained(**batch).logits, model.eval()(**batch).logits, atol=1e-5)
    # without peft: one clear error
    monkeypatch.setitem(sys.modules, "peft", None)
    argv = ["evaluate", "--model_name_or_path", str(out), "--validation_file", small_data[1]]
    assert run_bad(argv, capsys) == (
        f"--model_name_or_path {str(out)!r} holds a LoRA adapter only, and loading it needs the "
        'peft package, which is not installed: pip install -e ".[peft]" (or pip install peft).'
    )


def test_resume_with_lora_reproduces_the_uninterrupted_run_bit_for_bit(small_data, tmp_path):
    from tests.test_checkpoint import final_state, train

    lora = {"peft": "lora", "learning_rate": 1e-2}
    full = train(small_data, tmp_path / "full", **lora)
    out = tmp_path / "out"
    stopped = train(small_data, out, stop_at=5, **lora)
    # The checkpoint holds the weights that train, not the frozen base.
    saved_keys = set(load_file(out / "checkpoint-5" / "model.safetensors"))
    model = stopped.accelerator.unwrap_model(stopped.model)
    assert saved_keys == {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in k for k in saved_keys) and not any("query.base" in k for k in saved_keys)
    with pytest.raises(ConfigError, match=r"--lora_r 8 then, 4 now"):
        train(small_data, out, resume_from_checkpoint="latest", **lora, lora_r=4)
    with pytest.raises(ConfigError, match=r"modules \(peft's default for the model\) then, \["):
        train(
            small_data, out, resume_from_checkpoint="latest", **lora, lora_target_modules=["query"]
        )
    reset_accelerate()
    resumed = train(small_data, out, resume_from_checkpoint="latest", **lora)
    assert stopped.consumed + resumed.consumed == full.consumed
    weights, optimizer, lr = final_state(resumed)
    full_weights, full_optimizer, full_lr = final_state(full)
    assert any("lora_A" in k for k in weights)
    assert all(torch.equal(weights[k], full_weights[k]) for k in full_weights)
    assert all(torch.equal(a, b) for a, b in zip(optimizer, full_optimizer, strict=True))
    assert lr == full_lr
    saved, full_saved = (
        load_file(out / "model.safetensors"),
        load_file(tmp_path / "full" / "model.safetensors"),
    )
    assert all(torch.equal(saved[k], full_saved[k]) for k in full_saved)


def test_gradient_checkpointing_trains_the_same_adapters(small_data, tmp_path):
    def trained(name, **flags):
        trainer = build(small_data, tmp_path / name, max_train_steps=3, **flags)
        without_dropout(trainer)
        trainer.fit()
        reset_accelerate()
        return load_file(tmp_path / name / "model.safetensors")

    plain, recomputed = trained("plain"), trained("checkpointed", gradient_checkpointing=True)
    assert max((plain[k] - recomputed[k]).abs().max().item() for k in plain) < 1e-6


@pytest.mark.multiprocess
def test_two_processes_and_accumulation_train_the_same_adapters(scaling_data, tmp_path):
    from tests.test_scaling import TOLERANCE, history, max_difference, train_here, train_launched

    lora = {"peft": "lora", "learning_rate": 1e-2}
    reference = train_here(scaling_data, tmp_path / "1x32", per_device_train_batch_size=32, **lora)
    accumulated = train_here(
        scaling_data, tmp_path / "1x8x4", per_device_train_batch_size=8,
        gradient_accumulation_steps=4, **lora,
    )  # fmt: skip
    launched = train_launched(
        scaling_data, tmp_path / "2x16", per_device_train_batch_size=16, **lora
    )
    results = read_json(reference / "all_results.json")
    assert results["global_step"] == 6 and results["peft"]["method"] == "lora"
    for name, folder in {"1 x 8 x 4": accumulated, "2 x 16": launched}.items():
        difference = max_difference(reference, folder)
        print(f"LoRA, {name}: max |weight difference| to 1 process x 32 = {difference:.2e}")
        assert difference < TOLERANCE, name
        assert history(folder, "loss") == pytest.approx(history(reference, "loss"), rel=1e-5)
        other = read_json(folder / "all_results.json")
        assert other["eval_f1"] == results["eval_f1"], name
        assert other["trainable_parameters"] == results["trainable_parameters"], name


@pytest.mark.multiprocess
def test_two_processes_resume_a_lora_run_from_its_small_checkpoint(small_data, tmp_path):
    """Checkpoints hold the trainable weights only; two processes resume one to the same bits."""
    from tests.test_multiprocess import accelerate_launch

    def launch(out, *flags):
        args = ["--train_file", small_data[0], "--validation_file", small_data[1], "--peft",
                "lora", "--max_train_steps", "10", "--checkpointing_steps", "5",
                "--save_total_limit", "5", "--output_dir", str(out), *flags]  # fmt: skip
        done = accelerate_launch(args)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]

    launch(tmp_path / "a")
    checkpoint = tmp_path / "a" / "checkpoint-5"
    assert not any("query.base_layer" in key for key in load_file(checkpoint / "model.safetensors"))
    launch(tmp_path / "b", "--resume_from_checkpoint", str(checkpoint))
    weights = [(tmp_path / name / "model.safetensors").read_bytes() for name in ("a", "b")]
    assert weights[0] == weights[1]


def test_re_with_lora_trains_the_marker_embeddings(tmp_path):
    train, dev = write_demo_re_corpus(str(tmp_path / "data"), num_train=96, num_dev=24)
    out = tmp_path / "re"
    trainer = build((train, dev), out, task="re", num_train_epochs=2)
    model = trainer.accelerator.unwrap_model(trainer.model)
    embeddings = model.get_base_model().get_input_embeddings().weight.detach().clone()
    marker_ids = trainer.tokenizer.convert_tokens_to_ids(["<e1>", "</e1>", "<e2>", "</e2>"])
    results = trainer.fit()
    reset_accelerate()
    assert results["peft"]["trained_token_ids"] == sorted(marker_ids)
    merged = load_file(out / "model.safetensors")["bert.embeddings.word_embeddings.weight"]
    others = [i for i in range(len(merged)) if i not in marker_ids]
    assert torch.equal(merged[others], embeddings[others])  # frozen
    assert (merged[marker_ids] - embeddings[marker_ids]).abs().amax(dim=1).min() > 1e-4
    metrics = evaluate_saved(out, dev, tmp_path / "eval")
    assert metrics["eval_f1"] == results["eval_f1"]


# Found by the adversarial pass: other heads, damaged or changed folders, ranks, targets.


def saved_base(folder, auto_class: str, labels: list[str], words_file: str, seed: int = 0) -> str:
    """A small random BERT saved as a "pretrained" base (with a head for `labels`)."""
    from accel_trainer.models import build_tiny_bert, build_wordpiece_tokenizer
    from accel_trainer.tasks import NerTask

    task = NerTask()
    tokenizer = build_wordpiece_tokenizer(list(task.words(task.read(words_file, "train", "auto"))))
    torch.manual_seed(seed)
    build_tiny_bert(auto_class, len(tokenizer), labels, 128).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def adapter_run(small_data, tmp_path_factory):
    """An adapter-only NER run on a base whose own head has 4 labels (the task has 9):
    (base folder, adapter folder, the run's results)."""
    root = tmp_path_factory.mktemp("other-head")
    base = saved_base(root / "base", "AutoModelForSequenceClassification", list("abcd"),
                      small_data[0])  # fmt: skip
    out = root / "adapter"
    results = build(small_data, out, model_name_or_path=base, save_adapter_only=True).fit()
    reset_accelerate()
    return base, out, results


def test_an_adapter_on_a_base_with_another_head_loads_back(adapter_run, small_data, tmp_path):
    _, out, results = adapter_run
    metrics = evaluate_saved(out, small_data[1], tmp_path / "eval")
    assert metrics["eval_loss"] == pytest.approx(results["eval_loss"], rel=1e-5)


def test_the_adapter_cards_code_builds_the_model_with_the_runs_labels(adapter_run):
    """The base's own head has labels a-d; the card's code loads the run's 9 tags."""
    import re

    _, out, _ = adapter_run
    card = (out / "README.md").read_text()
    code = re.search(r"## Usage\n\n```python\n(.*?)```", card, re.S).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)  # as written: it names this folder
    saved = read_json(out / "config.json")["id2label"]
    assert namespace["model"].config.id2label == {int(i): label for i, label in saved.items()}
    assert "B-PER" in namespace["model"].config.label2id


@pytest.mark.parametrize(
    "damage, file, reason",
    [
        ("delete", "adapter_model.safetensors", "No such file or directory"),
        ("truncate", "adapter_model.safetensors", "header"),
        ("not json", "adapter_config.json", "line 1 column 2"),
        ("other rank", "adapter_model.safetensors", "size mismatch"),
    ],
)
def test_a_damaged_adapter_folder_gets_one_line(
    adapter_run, small_data, tmp_path, capsys, damage, file, reason
):
    import json
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(adapter_run[1], folder)
    os.unlink(folder / "model_manifest.json")  # a folder copied by hand: no manifest to check
    weights, config = folder / "adapter_model.safetensors", folder / "adapter_config.json"
    if damage == "delete":
        os.unlink(weights)
    elif damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:7])
    elif damage == "not json":
        config.write_text("{r: 8")
    else:
        config.write_text(json.dumps({**read_json(config), "r": 4}))
    argv = ["evaluate", "--model_name_or_path", str(folder), "--validation_file", small_data[1]]
    message = run_bad([*argv, "--output_dir", str(tmp_path / "eval")], capsys)
    assert message.startswith(
        f"--model_name_or_path holds an adapter that cannot be read: got {str(folder)!r}, "
        f"whose {file} fails ("
    )
    assert reason in message
    assert message.endswith(
        "Give the folder that `accel-trainer train` saved, unchanged, or train it again."
    )


def test_an_adapter_is_never_merged_into_a_changed_base(small_data, tmp_path, capsys):
    base = saved_base(tmp_path / "base", "AutoModel", ["A", "B"], small_data[0])
    out = tmp_path / "adapter"
    build(
        small_data, out, model_name_or_path=base, save_adapter_only=True, num_train_epochs=1
    ).fit()
    reset_accelerate()
    recorded = read_json(out / "config.json")["accel_trainer"]["peft"]["base_weights"]
    assert list(recorded) == ["config.json", "model.safetensors"]
    saved_base(tmp_path / "base", "AutoModel", ["A", "B"], small_data[0], seed=7)  # retrained
    argv = ["evaluate", "--model_name_or_path", str(out), "--validation_file", small_data[1]]
    assert run_bad([*argv, "--output_dir", str(tmp_path / "eval")], capsys) == (
        f"--model_name_or_path holds an adapter whose base model has changed since training: "
        f"got {str(out)!r}, trained on {base!r}, whose model.safetensors differ now. The adapter "
        "fits only the weights it was trained on: restore that base model, or train the "
        "adapter again."
    )


def test_lora_rank_and_targets_are_checked_against_the_layers(small_data, tmp_path, capsys):
    from transformers import BertConfig, BertForTokenClassification

    from accel_trainer.lora import apply_lora
    from accel_trainer.lora_options import PeftOptions

    model = BertForTokenClassification(BertConfig(
        vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16,
    ))  # fmt: skip
    with pytest.raises(ConfigError) as error:
        apply_lora(model, None, [], PeftOptions(peft="lora", lora_r=33))
    assert str(error.value) == (
        "--lora_r is larger than the layers it adapts: got 33, and the narrowest of query "
        "value is 32 wide. A rank above a layer's smaller dimension adds parameters, not "
        "capacity: use at most 32 (8 to 64 is usual)."
    )
    # A target by the end of its name: one of BERT's two kinds of dense layer.
    options = PeftOptions(peft="lora", lora_r=4, lora_target_modules=["attention.output.dense"])
    wrapped = apply_lora(model, None, [], options)
    adapted = {n.rsplit(".lora_A", 1)[0] for n, _ in wrapped.named_parameters() if "lora_A" in n}
    assert adapted == {"base_model.model.bert.encoder.layer.0.attention.output.dense"}
    # An adapter-only folder holds no weights to train from.
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    argv = ["train", "--model_name_or_path", str(folder), "--output_dir", str(tmp_path / "o")]
    assert run_bad(argv, capsys).startswith(
        f"--model_name_or_path holds a LoRA adapter only (adapter_config.json, no weights of "
        f"its own): got {str(folder)!r}. Train from its base model"
    )


def test_re_markers_and_an_embedding_target_get_one_line(tmp_path, capsys):
    argv = ["train", "--task", "re", "--peft", "lora", "--lora_target_modules",
            "word_embeddings", "query", "--max_train_steps", "1", "--output_dir",
            str(tmp_path / "re")]  # fmt: skip
    assert run_bad(argv, capsys).startswith(
        "--lora_target_modules cannot be adapted: got word_embeddings query ("
    )


def test_a_lora_run_does_not_resume_on_a_changed_base(small_data, tmp_path):
    from tests.test_checkpoint import train

    base = saved_base(tmp_path / "base", "AutoModel", ["A", "B"], small_data[0])
    lora = {"peft": "lora", "model_name_or_path": base}
    train(small_data, tmp_path / "out", stop_at=2, **lora)
    saved_base(tmp_path / "base", "AutoModel", ["A", "B"], small_data[0], seed=7)
    with pytest.raises(ConfigError, match=r"other data: base model weights \{'config.json"):
        train(small_data, tmp_path / "out", resume_from_checkpoint="latest", **lora)


def test_the_base_fingerprint_is_what_the_base_computes_with(tmp_path):
    """config.json and the weights (sharded or not); not a training_args.bin, a folder named
    like weights, a dangling link or a pipe (which would hang a reader)."""
    from accel_trainer.lora import base_weights

    (tmp_path / "config.json").write_text("{}")
    for name in ("model-00001-of-00002.safetensors", "pytorch_model.bin", "training_args.bin"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.bin").mkdir()
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling.safetensors")
    os.mkfifo(tmp_path / "model.safetensors")
    assert sorted(base_weights(str(tmp_path))) == [
        "config.json",
        "model-00001-of-00002.safetensors",
        "pytorch_model.bin",
    ]
    assert base_weights("no/such-model-in-the-cache") is None


def test_a_hub_named_base_is_fingerprinted_by_its_cached_snapshot(tmp_path):
    """A new revision in the cache (refs/main moved) is another base: other digests."""
    repo = tmp_path / "cache" / "models--someone--tiny"
    for revision, weights in (("1" * 40, b"first"), ("2" * 40, b"second")):
        snapshot = repo / "snapshots" / revision
        snapshot.mkdir(parents=True)
        (snapshot / "config.json").write_text("{}")
        (snapshot / "model.safetensors").write_bytes(weights)
    (repo / "refs").mkdir()
    code = "from accel_trainer.lora import base_weights; print(base_weights('someone/tiny'))"
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    digests = []
    for revision in ("1" * 40, "2" * 40):
        (repo / "refs" / "main").write_text(revision)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, cwd=REPO_ROOT, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        digests.append(done.stdout.strip())
    assert "model.safetensors" in digests[0] and digests[0] != digests[1]


def test_the_same_base_spelled_another_way_resumes(small_data, tmp_path):
    from tests.test_checkpoint import train

    base = saved_base(tmp_path / "base", "AutoModel", ["A", "B"], small_data[0])
    os.symlink(base, tmp_path / "link")
    train(small_data, tmp_path / "out", stop_at=2, peft="lora", model_name_or_path=base)
    resumed = train(small_data, tmp_path / "out", resume_from_checkpoint="latest", peft="lora",
                    model_name_or_path=str(tmp_path / "link") + "/")  # fmt: skip
    assert resumed.results["global_step"] > 2
