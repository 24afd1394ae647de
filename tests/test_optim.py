"""Weight decay groups and learning-rate schedules."""

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertForTokenClassification

from accel_trainer.train.optim import (
    build_optimizer,
    build_scheduler,
    parameter_groups,
    warmup_steps,
)


def group_names(model, groups):
    names = {id(p): n for n, p in model.named_parameters()}
    return [{names[id(p)] for p in group["params"]} for group in groups]


def test_bert_biases_and_layernorm_weights_have_no_decay():
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
    )
    model = BertForTokenClassification(config)
    groups = parameter_groups(model, weight_decay=0.1)
    decay, no_decay = group_names(model, groups)
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    for name, _ in model.named_parameters():
        expected_no_decay = name.endswith(".bias") or "LayerNorm" in name
        assert (name in no_decay) == expected_no_decay, name
    assert decay | no_decay == {n for n, _ in model.named_parameters()}
    assert "bert.embeddings.word_embeddings.weight" in decay
    assert "classifier.weight" in decay


def updated_weights(make_optimizer, steps=5):
    """The weights of a tiny model after `steps` AdamW steps on fixed pseudo-random gradients."""
    torch.manual_seed(0)
    model = OtherArchitecture()
    optimizer = make_optimizer(model)
    gradients = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for parameter in model.parameters():
            parameter.grad = torch.randn(parameter.shape, generator=gradients)
        optimizer.step()
    return optimizer, [p.detach().clone() for p in model.parameters()]


def test_optimizer_is_fused_and_steps_like_the_reference_adamw():
    def reference(model):
        groups = parameter_groups(model, 0.1)
        return torch.optim.AdamW(groups, lr=0.01, foreach=False)

    fused, got = updated_weights(lambda m: build_optimizer(m, learning_rate=0.01, weight_decay=0.1))
    _, expected = updated_weights(reference)
    assert all(group["fused"] for group in fused.param_groups)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_optimizer_falls_back_where_torch_has_no_fused_kernel(monkeypatch):
    real_adamw = torch.optim.AdamW

    def adamw_without_fused_kernel(params, fused=None, **kwargs):
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be floating point")
        return real_adamw(params, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", adamw_without_fused_kernel)
    optimizer, _ = updated_weights(lambda m: build_optimizer(m, 0.01, weight_decay=0.1))
    assert not any(group["fused"] for group in optimizer.param_groups)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.1, 0.0]


class ScaleNorm(nn.Module):
    """A norm of another architecture: its parameter is called `scale`, not weight."""

    def __init__(self, size):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(size))

    def forward(self, x):
        return x * self.scale


class OtherArchitecture(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.rms = nn.RMSNorm(4)
        self.custom = ScaleNorm(4)
        self.group = nn.GroupNorm(2, 4)
        self.head = nn.Linear(4, 2, bias=False)


def test_norm_layers_are_found_by_type_not_name():
    model = OtherArchitecture()
    decay, no_decay = group_names(model, parameter_groups(model, 0.01))
    assert decay == {"proj.weight", "head.weight"}
    assert no_decay == {"proj.bias", "rms.weight", "custom.scale", "group.weight", "group.bias"}


def test_tied_weights_appear_once():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10, bias=False))
    model[1].weight = model[0].weight
    groups = parameter_groups(model, 0.01)
    assert sum(len(g["params"]) for g in groups) == 1


def test_warmup_steps_from_ratio_or_count():
    assert warmup_steps(100, 0.1, 0) == 10
    assert warmup_steps(10, 0.25, 0) == 3  # rounded up
    assert warmup_steps(100, 0.0, 7) == 7


@pytest.mark.parametrize("name", ["linear", "cosine", "constant_with_warmup", "constant"])
def test_each_schedule_warms_up_and_ends_as_documented(name):
    model = nn.Linear(2, 2)
    optimizer = build_optimizer(model, learning_rate=1.0, weight_decay=0.0)
    scheduler = build_scheduler(
        optimizer, name, total_steps=10, num_warmup=0 if name == "constant" else 4
    )
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    if name != "constant":
        assert rates[:5] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    final = optimizer.param_groups[0]["lr"]
    expected_final = {"linear": 0.0, "cosine": 0.0, "constant_with_warmup": 1.0, "constant": 1.0}
    assert final == pytest.approx(expected_final[name], abs=1e-12)
