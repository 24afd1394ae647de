"""Hub names with no network: a short probe fails in seconds with what to do, or the local cache
is used; nothing here reaches a real network (the hub is a refused port on 127.0.0.1)."""

import logging
import os
import socket
import time

import pytest
from huggingface_hub import constants

from accel_trainer.cli import main
from accel_trainer.hub import check_dataset_access, model_access
from accel_trainer.models import build_tiny_bert, build_wordpiece_tokenizer, load_pretrained

ADVICE = (
    "Point --model_name_or_path at a folder written by save_pretrained (e.g. a training run's "
    "--output_dir), or download the model where the hub is reachable; HF_HUB_OFFLINE=1 then "
    "loads it from the cache without asking the hub."
)


@pytest.fixture
def unreachable_hub(monkeypatch, tmp_path):
    """HF_ENDPOINT on a port that refuses connections, and an empty hub cache."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound but never listening: every connect is refused
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
        monkeypatch.setattr(constants, "ENDPOINT", endpoint)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
        yield endpoint


def cache_model(name: str) -> None:
    """A tiny model as huggingface_hub's cache holds a downloaded one."""
    repo = os.path.join(constants.HF_HUB_CACHE, "models--" + name.replace("/", "--"))
    snapshot = os.path.join(repo, "snapshots", "0" * 40)
    os.makedirs(os.path.join(repo, "refs"))
    with open(os.path.join(repo, "refs", "main"), "w") as handle:
        handle.write("0" * 40)
    tokenizer = build_wordpiece_tokenizer([["John", "lives", "in", "Oslo"]])
    tokenizer.save_pretrained(snapshot)
    model = build_tiny_bert("AutoModelForTokenClassification", len(tokenizer), ["O", "B-X"], 64)
    model.save_pretrained(snapshot)


def test_a_hub_name_with_no_network_fails_in_seconds(
    unreachable_hub, tmp_path, capsys, no_model_building
):
    out = tmp_path / "out"
    started = time.monotonic()
    code = main(["train", "--model_name_or_path", "bert-base-cased", "--output_dir", str(out)])
    assert time.monotonic() - started < 5
    assert code == 2
    assert capsys.readouterr().err == (
        "accel-trainer: error: --model_name_or_path is no local folder and the hub is "
        f"unreachable: got 'bert-base-cased' ({unreachable_hub}: [Errno 111] Connection "
        f"refused). {ADVICE}\n"
    )
    assert not out.exists()  # before the demo corpus, the output folder and the model


def test_offline_mode_needs_the_model_in_the_cache(
    unreachable_hub, monkeypatch, tmp_path, capsys, no_model_building
):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    argv = ["train", "--model_name_or_path", "org/absent", "--output_dir", str(tmp_path / "o")]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "accel-trainer: error: --model_name_or_path is no local folder, and with HF_HUB_OFFLINE "
        f"set the model must be in the local cache ({constants.HF_HUB_CACHE}): got 'org/absent'. "
        "Give a folder written by save_pretrained, or unset HF_HUB_OFFLINE where the hub is "
        "reachable to download it once.\n"
    )


def test_a_cached_model_is_loaded_from_the_cache_when_the_hub_is_unreachable(
    unreachable_hub, caplog
):
    cache_model("org/tiny")
    with caplog.at_level(logging.WARNING):
        assert model_access("org/tiny") is True
        started = time.monotonic()
        model, tokenizer = load_pretrained(
            "AutoModelForTokenClassification", "org/tiny", ["O", "B-X", "I-X"], None, True
        )
    assert time.monotonic() - started < 10  # no retries against the refused port
    assert model.config.num_labels == 3 and len(tokenizer) > 5
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == (
        f"The hub is unreachable ({unreachable_hub}: [Errno 111] Connection refused): loading "
        f"org/tiny from the local cache ({constants.HF_HUB_CACHE})"
    )
    assert not any("thrown while requesting" in message for message in messages)


def test_a_local_folder_needs_no_hub(unreachable_hub, tmp_path):
    assert model_access(str(tmp_path)) is False


def test_a_hub_dataset_with_no_network_fails_in_seconds(
    unreachable_hub, monkeypatch, tmp_path, capsys, no_model_building
):
    from datasets import config

    monkeypatch.setattr(config, "HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))
    out = tmp_path / "out"
    started = time.monotonic()
    code = main(["train", "--dataset_name", "conll2003", "--output_dir", str(out)])
    assert time.monotonic() - started < 5
    assert code == 2
    assert capsys.readouterr().err == (
        "accel-trainer: error: --dataset_name is no local folder and the hub is unreachable: "
        f"got 'conll2003' ({unreachable_hub}: [Errno 111] Connection refused). Give a local "
        "dataset folder or data files instead, or, where the dataset was loaded before, set "
        "HF_HUB_OFFLINE=1 to use the local cache.\n"
    )
    assert not out.exists()
    # With a prepared copy in the datasets cache, datasets falls back to it: no error here.
    os.makedirs(tmp_path / "datasets-cache" / "conll2003" / "default" / "0.0.0" / "abc")
    check_dataset_access("conll2003")
