"""Batch layouts (--batch_layout): packed rows and sorted micro-batches compute what the padded
batch computes. Packed attention equals each sentence's own attention; N steps with each layout
end with the padded layout's weights; evaluation and predictions do not depend on the layout."""

import json

import pytest
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import load_file

from accel_trainer.config import TrainConfig
from accel_trainer.errors import ConfigError
from accel_trainer.train.batching import PackedLayout, SortedLayout, choose_layout
from accel_trainer.train.packing import (
    PACKED_ATTENTION,
    _padded_sentence_attention,
    _per_sentence_attention,
    pack,
    packed_attention,
    packing_refusal,
)
from tests.conftest import (
    read_json,
    read_jsonl,
    write_jsonl,
)
from tests.test_scaling import max_difference, train_here, train_launched

# Weights after 6 steps with two layouts must agree this closely; they move by ~1e-2.
TOLERANCE = 1e-5
LENGTHS = (5, 1, 9, 3)


def sentences(heads=2, dim=4, seed=0):
    """Query, key and value of LENGTHS sentences, one tensor each: 1 x heads x tokens x dim."""
    generator = torch.Generator().manual_seed(seed)
    total = sum(LENGTHS)
    return [torch.randn(1, heads, total, dim, generator=generator) for _ in range(3)]


def boundaries():
    return F.pad(torch.cumsum(torch.tensor(LENGTHS), 0, dtype=torch.int32), (1, 0))


@pytest.mark.parametrize("attention", [_per_sentence_attention, _padded_sentence_attention])
def test_packed_attention_equals_each_sentence_attending_alone(attention):
    query, key, value = sentences()
    packed = attention(query, key, value, boundaries(), 0.0, 0.5)
    start = 0
    for length in LENGTHS:
        end = start + length
        alone = F.scaled_dot_product_attention(
            query[:, :, start:end], key[:, :, start:end], value[:, :, start:end], scale=0.5
        )
        assert torch.allclose(packed[:, :, start:end], alone, atol=1e-6), length
        start = end
    # and not what attention over the whole row gives: sentences do not see each other
    whole = F.scaled_dot_product_attention(query, key, value, scale=0.5)
    assert not torch.allclose(packed, whole, atol=1e-3)


def test_packed_attention_returns_tokens_first_and_leaves_padded_batches_to_sdpa():
    query, key, value = sentences()
    output, weights = packed_attention(None, query, key, value, None, cu_seq_lens_q=boundaries())
    assert output.shape == (1, sum(LENGTHS), 2, 4) and weights is None
    module = torch.nn.Module()
    module.is_causal = False
    padded, _ = packed_attention(module, query, key, value, None)
    expected = F.scaled_dot_product_attention(query, key, value).transpose(1, 2)
    assert torch.allclose(padded, expected, atol=1e-6)


@pytest.mark.parametrize("pad_left", [False, True])
def test_pack_keeps_real_tokens_restarts_positions_and_marks_boundaries(pad_left):
    longest = max(LENGTHS)
    ids = torch.zeros(len(LENGTHS), longest, dtype=torch.long)
    mask, labels = torch.zeros_like(ids), torch.full_like(ids, -100)
    for row, length in enumerate(LENGTHS):
        columns = slice(longest - length, None) if pad_left else slice(0, length)
        ids[row, columns] = torch.arange(1, length + 1) + 10 * row
        labels[row, columns] = row
        mask[row, columns] = 1
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels, "row_id": torch.arange(4)}
    packed = pack(batch, offset=2)
    expected_ids = torch.cat([torch.arange(1, n + 1) + 10 * r for r, n in enumerate(LENGTHS)])
    assert packed["input_ids"].tolist() == [expected_ids.tolist()]
    assert packed["labels"].tolist() == [[r for r, n in enumerate(LENGTHS) for _ in range(n)]]
    assert packed["position_ids"].tolist() == [[2 + i for n in LENGTHS for i in range(n)]]
    assert packed["cu_seq_lens_q"].tolist() == [0, 5, 6, 15, 18]
    assert packed["max_length_q"] == 9
    assert packed["row_id"].tolist() == [0, 1, 2, 3] and "attention_mask" not in packed


def padded_batch(lengths, start_id, pad_id=0):
    longest = max(lengths)
    ids = torch.full((len(lengths), longest), pad_id)
    mask = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, :length] = start_id + row
        mask[row, :length] = 1
    labels = torch.where(mask.bool(), ids, torch.full_like(ids, -100))
    rows = torch.arange(start_id, start_id + len(lengths))
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "row_id": rows}


def test_sorted_layout_puts_each_example_once_in_micro_batches_within_the_budget():
    loaded = [padded_batch([3, 12, 2, 7], 100, 7), padded_batch([5, 1, 9, 4], 200, 7)]
    arranged = SortedLayout(token_budget=20, pad_token_id=7).arrange(loaded)
    rows = [row for batch in arranged for row in batch["row_id"].tolist()]
    assert sorted(rows) == [100, 101, 102, 103, 200, 201, 202, 203]
    real = [batch["attention_mask"].sum(1).tolist() for batch in arranged]
    assert real == [[12], [9, 7], [5, 4, 3, 2], [1]]  # longest first, each within 20 tokens
    for batch in arranged:
        assert batch["input_ids"].numel() <= 20
        assert batch["input_ids"].shape[1] == batch["attention_mask"].sum(1).max()
        # every example keeps its own tokens and labels; padding is the pad id and -100
        for row, row_id in enumerate(batch["row_id"].tolist()):
            length = int(batch["attention_mask"][row].sum())
            assert batch["input_ids"][row, :length].eq(row_id).all()
            assert batch["labels"][row, :length].eq(row_id).all()
            assert batch["input_ids"][row, length:].eq(7).all()
            assert batch["labels"][row, length:].eq(-100).all()


def test_sorted_layout_gives_an_example_longer_than_the_budget_its_own_micro_batch():
    arranged = SortedLayout(4, 0).arrange([padded_batch([6, 2, 2], 0)])
    assert [b["row_id"].tolist() for b in arranged] == [[0], [1, 2]]


def tiny_model(kind):
    common = dict(
        vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, num_labels=3, max_position_embeddings=32,
    )  # fmt: skip
    configs = {
        "bert": lambda: transformers.BertConfig(**common),
        "roberta": lambda: transformers.RobertaConfig(**common, pad_token_id=1),
        "electra": lambda: transformers.ElectraConfig(**common, embedding_size=16),
        "distilbert": lambda: transformers.DistilBertConfig(
            vocab_size=60,
            dim=16,
            n_layers=1,
            n_heads=2,
            hidden_dim=16,
            num_labels=3,
            max_position_embeddings=32,
        ),  # fmt: skip
        "deberta-v2": lambda: transformers.DebertaV2Config(**common),
    }
    torch.manual_seed(0)
    return transformers.AutoModelForTokenClassification.from_config(configs[kind]())


@pytest.mark.parametrize("kind", ["bert", "roberta", "electra", "distilbert"])
def test_models_on_the_attention_interface_are_packed(kind):
    model = tiny_model(kind)
    assert packing_refusal(model) is None
    assert model.config._attn_implementation == "sdpa"  # the probe leaves the model as it was
    options = TrainConfig.from_options(batch_layout="packed").batching
    layout, reason = choose_layout(options, True, model, None, "cpu")
    assert isinstance(layout, PackedLayout) and reason.startswith("packed")
    assert model.config._attn_implementation == "sdpa"  # switched only while training
    with layout.computing(model):
        assert model.config._attn_implementation == PACKED_ATTENTION
    assert model.config._attn_implementation == "sdpa"


def test_a_model_outside_the_attention_interface_falls_back_to_sorted_with_the_reason():
    model = tiny_model("deberta-v2")
    assert "does not route attention through transformers' attention interface" in (
        packing_refusal(model)
    )
    tokenizer = transformers.PreTrainedTokenizerBase()
    auto = TrainConfig.from_options().batching
    layout, reason = choose_layout(auto, True, model, tokenizer, "cpu")
    assert isinstance(layout, SortedLayout)
    assert "not packed: DebertaV2ForTokenClassification does not route attention" in reason
    packed = TrainConfig.from_options(batch_layout="packed").batching
    with pytest.raises(ConfigError, match="--batch_layout packed is not possible here"):
        choose_layout(packed, True, model, tokenizer, "cpu")


def test_a_model_whose_packed_outputs_differ_is_refused(monkeypatch):
    model = tiny_model("bert")
    # positions counted on across sentences: what a model computing its own would do
    monkeypatch.setattr("accel_trainer.train.packing.position_offset", lambda model: 7)
    assert "packed outputs differ from padded ones" in packing_refusal(model)


# --- training: every layout learns what the padded one learns ---------------------------------


def layout_runs(data, tmp_path, layouts, **overrides):
    """Train once per layout (dropout off, 6 steps); returns layout -> output folder. The
    sorted layout gets a budget of 64 tokens: by default a tiny model's is one micro-batch."""
    runs = {}
    for layout in layouts:
        budget = {"micro_batch_tokens": 64} if layout == "sorted" else {}
        runs[layout] = train_here(
            data, tmp_path / layout, batch_layout=layout, **budget, **overrides
        )
    return runs


def assert_same_training(runs, reference="padded"):
    base = read_json(runs[reference] / "all_results.json")
    for layout, folder in runs.items():
        difference = max_difference(runs[reference], folder)
        print(f"{layout}: max |weight difference| to {reference} = {difference:.2e}")
        assert difference < TOLERANCE, layout
        results = read_json(folder / "all_results.json")
        assert results["global_step"] == base["global_step"]
        assert results["train_loss"] == pytest.approx(base["train_loss"], rel=1e-5)
        assert results["eval_loss"] == pytest.approx(base["eval_loss"], rel=1e-5)
        for key in ("eval_f1", "eval_precision", "eval_recall", "eval_samples"):
            assert results[key] == base[key], (layout, key)
    return base


def test_ner_packed_and_sorted_train_the_padded_weights(scaling_data, tmp_path):
    runs = layout_runs(
        scaling_data, tmp_path, ["padded", "sorted", "packed"], per_device_train_batch_size=32
    )  # fmt: skip
    assert_same_training(runs)
    efficiency = {
        layout: read_json(folder / "all_results.json")["train_padding_efficiency"]
        for layout, folder in runs.items()
    }
    print("padding efficiency:", efficiency)
    assert efficiency["packed"] == 1.0
    assert efficiency["padded"] < efficiency["sorted"] < 1.0


def test_ner_layouts_agree_with_accumulation_and_batch_normalization(scaling_data, tmp_path):
    runs = layout_runs(
        scaling_data, tmp_path, ["padded", "sorted", "packed"], per_device_train_batch_size=8,
        gradient_accumulation_steps=4,
    )  # fmt: skip
    assert_same_training(runs)
    # batch normalization: the mean of each micro-batch, which packing keeps
    batch = layout_runs(
        scaling_data, tmp_path / "batch", ["padded", "packed"], per_device_train_batch_size=8,
        gradient_accumulation_steps=4, loss_normalization="batch",
    )  # fmt: skip
    assert_same_training(batch)


def re_data(folder):
    """Sentences of 4 to 24 words with two marked entities; 3 relations."""
    import random

    relations = ["works_for", "born_in", "no_relation"]
    generator = random.Random(5)

    def example(i):
        words = [f"w{generator.randrange(30)}" for _ in range(generator.randrange(4, 24))]
        relation = relations[i % 3]
        words[0:0] = ["<e1>", f"h{i % 3}", "</e1>"]
        words += ["<e2>", f"t{i % 3}", "</e2>"]
        return {"text": " ".join(words), "label": relation}

    train = write_jsonl(folder / "train.jsonl", [example(i) for i in range(64)])
    dev = write_jsonl(folder / "dev.jsonl", [example(i) for i in range(64, 75)])
    return train, dev


def test_re_sorted_trains_the_padded_weights_and_packing_is_refused(tmp_path):
    data = re_data(tmp_path)
    runs = layout_runs(data, tmp_path, ["padded"], task="re", per_device_train_batch_size=32)
    runs["sorted"] = train_here(data, tmp_path / "sorted", task="re", batch_layout="sorted",
                                per_device_train_batch_size=32, micro_batch_tokens=64)  # fmt: skip
    assert_same_training(runs)
    # auto: sorted, under a budget that keeps a tiny model's batch of 32 whole: the padded run
    auto = train_here(data, tmp_path / "auto", task="re", per_device_train_batch_size=32)
    assert max_difference(runs["padded"], auto) == 0
    with pytest.raises(ConfigError, match="does not predict a label per token"):
        train_here(data, tmp_path / "packed", task="re", batch_layout="packed")


def test_predictions_of_models_trained_with_either_layout_are_identical(scaling_data, tmp_path):
    from accel_trainer.cli import main

    runs = layout_runs(scaling_data, tmp_path, ["padded", "packed"])
    outputs = {}
    for layout, folder in runs.items():
        out = tmp_path / f"predictions-{layout}.conll"
        argv = ["predict", "--model_name_or_path", str(folder), "--input_file", scaling_data[1]]
        assert main([*argv, "--output_file", str(out)]) == 0
        outputs[layout] = out.read_text()
    assert outputs["packed"] == outputs["padded"]
    config = json.loads((runs["packed"] / "config.json").read_text())
    assert PACKED_ATTENTION not in json.dumps(config)  # the saved model loads without us


def test_the_log_names_the_layout_and_why(scaling_data, tmp_path, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="accel_trainer"):
        train_here(scaling_data, tmp_path / "auto", max_train_steps=1)
    assert "batch layout packed: one row per micro-batch" in caplog.text
    records = read_jsonl(tmp_path / "auto" / "log_history.jsonl")
    assert records[0]["padding_efficiency"] == 1.0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--batch_layout", "sorted", "--loss_normalization", "batch"],
         "--batch_layout sorted needs --loss_normalization global: got batch"),
        (["--batch_layout", "padded", "--micro_batch_tokens", "64"],
         "--micro_batch_tokens is the sorted layout's budget: got 64 with --batch_layout padded"),
        (["--micro_batch_tokens", "-1"], "--micro_batch_tokens must be in [0, 16777216]: got -1"),
        (["--batch_layout", "tight"], "--batch_layout"),
        (["--task", "re", "--batch_layout", "packed"],
         "--batch_layout packed is not possible here: the task does not predict a label per "
         "token"),
    ],
)  # fmt: skip
def test_layout_options_are_checked_before_any_model_is_built(
    flags, message, tmp_path, capsys, no_model_building
):
    from accel_trainer.cli import main

    status = main(["train", "--output_dir", str(tmp_path / "out"), *flags])
    assert status != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_a_run_resumed_with_another_layout_ends_with_the_same_weights(small_data, tmp_path):
    from tests.test_checkpoint import train

    full = train(small_data, tmp_path / "full", dropout=False, batch_layout="padded")
    stopped = train(small_data, tmp_path / "out", stop_at=5, dropout=False, batch_layout="padded")
    resumed = train(small_data, tmp_path / "out", dropout=False, resume_from_checkpoint="latest",
                    batch_layout="sorted", micro_batch_tokens=16)  # fmt: skip
    assert stopped.consumed + resumed.consumed == full.consumed  # the same steps, in order
    assert resumed.state.step == 8
    assert max_difference(tmp_path / "full", tmp_path / "out") < TOLERANCE


def test_gradient_checkpointing_trains_the_same_weights(scaling_data, tmp_path):
    plain = train_here(scaling_data, tmp_path / "plain")
    recomputed = train_here(scaling_data, tmp_path / "recomputed", gradient_checkpointing=True)
    assert max_difference(plain, recomputed) < TOLERANCE
    sorted_layout = train_here(
        scaling_data, tmp_path / "sorted", gradient_checkpointing=True, batch_layout="sorted",
        micro_batch_tokens=64,
    )  # fmt: skip
    # Other micro-batches sum the step's gradient in another order: float32 rounding, which
    # reached 1.5e-5 on an AMD EPYC (against ~1e-2 of movement).
    assert max_difference(plain, sorted_layout) < 3 * TOLERANCE


def test_torch_compile_trains_on_a_cpu_and_saves_a_loadable_model(scaling_data, tmp_path):
    plain = train_here(scaling_data, tmp_path / "plain", max_train_steps=2, batch_layout="padded")
    compiled = train_here(
        scaling_data, tmp_path / "compiled", max_train_steps=2, batch_layout="padded",
        torch_compile=True,
    )  # fmt: skip
    weights = load_file(compiled / "model.safetensors")
    assert not any("_orig_mod" in key for key in weights)  # saved unwrapped
    assert max_difference(plain, compiled) < 1e-4  # inductor reorders float sums
    packed = train_here(
        scaling_data, tmp_path / "packed", max_train_steps=2, batch_layout="packed",
        torch_compile=True,
    )  # fmt: skip
    assert max_difference(plain, packed) < 1e-4
    model = transformers.AutoModelForTokenClassification.from_pretrained(compiled)
    assert model.config.id2label == transformers.AutoConfig.from_pretrained(plain).id2label


@pytest.mark.multiprocess
def test_two_processes_with_each_layout_train_the_one_process_padded_weights(
    scaling_data, tmp_path
):
    reference = train_here(scaling_data, tmp_path / "1x32", per_device_train_batch_size=32,
                           batch_layout="padded")  # fmt: skip
    for layout in ("packed", "sorted"):
        budget = {"micro_batch_tokens": 64} if layout == "sorted" else {}
        folder = train_launched(
            scaling_data, tmp_path / f"2x16-{layout}", per_device_train_batch_size=16,
            batch_layout=layout, **budget,
        )  # fmt: skip
        difference = max_difference(reference, folder)
        print(
            f"2 processes, {layout}: max |weight difference| to 1 process padded = {difference:.2e}"
        )
        assert difference < TOLERANCE, layout
    data = re_data(tmp_path)
    re_reference = train_here(data, tmp_path / "re-1x32", task="re", per_device_train_batch_size=32,
                              batch_layout="padded")  # fmt: skip
    re_sorted = train_launched(
        data, tmp_path / "re-2x16", task="re", per_device_train_batch_size=16,
        batch_layout="sorted", micro_batch_tokens=64,
    )  # fmt: skip
    assert max_difference(re_reference, re_sorted) < TOLERANCE


def test_a_sliding_window_model_is_not_packed():
    model = transformers.AutoModelForTokenClassification.from_config(
        transformers.ModernBertConfig(
            vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=16, num_labels=3, pad_token_id=0, bos_token_id=1, eos_token_id=2,
            cls_token_id=1, sep_token_id=2, max_position_embeddings=64, local_attention=8,
        )
    )  # fmt: skip
    assert "uses sliding-window attention" in packing_refusal(model)


def test_sorted_micro_batches_never_exceed_the_loaders_padded_tokens():
    loaded = [padded_batch([3, 4], 0), padded_batch([2, 2], 10), padded_batch([4, 1], 20)]
    arranged = SortedLayout(token_budget=10_000, pad_token_id=0).arrange(loaded)
    assert max(batch["input_ids"].numel() for batch in arranged) <= 8  # 2 examples x 4 tokens
    assert sorted(r for b in arranged for r in b["row_id"].tolist()) == [0, 1, 10, 11, 20, 21]


def test_a_left_padding_tokenizer_is_not_sorted_or_packed():
    model = tiny_model("bert")
    tokenizer = transformers.PreTrainedTokenizerBase(padding_side="left")
    auto = TrainConfig.from_options().batching
    layout, reason = choose_layout(auto, True, model, tokenizer, "cpu")
    assert layout.name == "padded" and "the tokenizer pads on the left" in reason
    for requested in ("packed", "sorted"):
        options = TrainConfig.from_options(batch_layout=requested).batching
        with pytest.raises(ConfigError, match="needs a tokenizer that pads on the right"):
            choose_layout(options, True, model, tokenizer, "cpu")
