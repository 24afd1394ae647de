"""The length-grouped sampler: each example once per epoch, seeded, the same on every process and
for every split of the global batch, and less padding than random batches. The token-budget
batch sampler: batches within the budget, seeded, resumable."""

import random

import torch
from torch.utils.data import BatchSampler

from accel_trainer import commands
from accel_trainer.config import TrainConfig
from accel_trainer.train.sampling import LengthGroupedSampler, TokenBudgetBatchSampler
from tests.test_checkpoint import final_state, train
from tests.test_scaling import TOLERANCE, max_difference, train_here

RNG = random.Random(3)
LENGTHS = [RNG.randint(3, 120) for _ in range(1000)]


def order(epoch, seed=7, group_size=32):
    sampler = LengthGroupedSampler(LENGTHS, group_size, seed)
    sampler.set_epoch(epoch)
    return list(sampler)


def test_every_example_once_per_epoch_in_a_seeded_order_that_changes_each_epoch():
    first = order(0)
    assert sorted(first) == list(range(len(LENGTHS)))
    assert order(0) == first  # another process, the same seed: the same order
    assert order(1) != first and sorted(order(1)) == sorted(first)
    assert order(0, seed=8) != first


def test_each_global_batch_is_sorted_by_length_and_the_short_one_comes_last():
    sampler = LengthGroupedSampler(LENGTHS, 32, seed=7)
    groups = sampler.groups()
    assert [len(g) for g in groups] == [32] * 31 + [8]  # 1000 = 31 x 32 + 8
    for group in groups:
        lengths = [LENGTHS[i] for i in group]
        assert lengths == sorted(lengths, reverse=True)


def padded_tokens(indices, batch_size):
    batches = BatchSampler(indices, batch_size, drop_last=False)
    return sum(len(b) * max(LENGTHS[i] for i in b) for b in batches)


def test_grouping_cuts_padding_whatever_the_split_of_the_global_batch():
    grouped = order(0, group_size=32)
    shuffled = torch.randperm(len(LENGTHS), generator=torch.Generator().manual_seed(7)).tolist()
    real = sum(LENGTHS)
    for micro_batch in (32, 16, 8):  # 1 process x 32, 2 x 16, 1 x 8 x accumulation 4, ...
        grouped_efficiency = real / padded_tokens(grouped, micro_batch)
        random_efficiency = real / padded_tokens(shuffled, micro_batch)
        assert grouped_efficiency > 0.9 > 0.7 > random_efficiency, micro_batch


def test_group_by_length_trains_the_same_on_any_split_and_resumes_bit_exactly(tmp_path, small_data):
    full = train(small_data, tmp_path / "full", group_by_length=True)
    out = tmp_path / "out"
    stopped = train(small_data, out, stop_at=3, group_by_length=True)
    resumed = train(small_data, out, resume_from_checkpoint="latest", group_by_length=True)
    assert stopped.consumed + resumed.consumed == full.consumed
    weights, expected = final_state(resumed)[0], final_state(full)[0]
    assert all(torch.equal(weights[k], expected[k]) for k in expected)


def test_group_by_length_is_topology_invariant(tmp_path, scaling_data):
    one = train_here(scaling_data, tmp_path / "a", per_device_train_batch_size=32,
                     group_by_length=True)  # fmt: skip
    split = train_here(scaling_data, tmp_path / "b", per_device_train_batch_size=8,
                       gradient_accumulation_steps=4, group_by_length=True)  # fmt: skip
    assert max_difference(one, split) < TOLERANCE


BUDGET = 256
WITH_LONG = LENGTHS + [300, 500]  # two examples longer than the budget


def test_token_budget_batches_stay_within_budget_and_an_over_long_example_goes_alone():
    batches = TokenBudgetBatchSampler(WITH_LONG, BUDGET, seed=7).batches()
    assert sorted(i for batch in batches for i in batch) == list(range(len(WITH_LONG)))
    for batch in batches:
        longest = max(WITH_LONG[i] for i in batch)
        assert longest * len(batch) <= BUDGET or len(batch) == 1, batch
    assert [len(b) for b in batches if max(WITH_LONG[i] for i in b) > BUDGET] == [1, 1]
    padded = sum(len(b) * max(WITH_LONG[i] for i in b) for b in batches)
    assert sum(WITH_LONG) / padded > 0.95  # sorted by length: almost no padding


def test_token_budget_batches_are_seeded_change_each_epoch_and_keep_their_count():
    sampler = TokenBudgetBatchSampler(WITH_LONG, BUDGET, seed=7)
    first = sampler.batches()
    assert TokenBudgetBatchSampler(WITH_LONG, BUDGET, seed=7).batches() == first
    sampler.set_epoch(1)
    second = sampler.batches()
    assert second != first and len(second) == len(first) == len(sampler)
    assert sorted(map(sorted, second)) != sorted(map(sorted, first))  # new batch members too


def test_token_budget_training_keeps_the_budget_and_resumes_bit_exactly(tmp_path, small_data):
    full = train(small_data, tmp_path / "full", max_tokens_per_batch=120)
    out = tmp_path / "out"
    stopped = train(small_data, out, stop_at=3, max_tokens_per_batch=120)
    resumed = train(small_data, out, resume_from_checkpoint="latest", max_tokens_per_batch=120)
    assert stopped.consumed + resumed.consumed == full.consumed
    weights, expected = final_state(resumed)[0], final_state(full)[0]
    assert all(torch.equal(weights[k], expected[k]) for k in expected)
    sizes = {len(rows) for _, _, rows in full.consumed}
    assert len(sizes) > 1  # batches hold as many sentences as fit, not a fixed number


def test_token_budget_batches_reach_the_model_within_the_budget(tmp_path, small_data):
    config = TrainConfig.from_options(
        train_file=small_data[0], output_dir=str(tmp_path), max_tokens_per_batch=100
    )
    trainer = commands.build_trainer(config)
    trainer.output_lock.release()
    shapes = [tuple(batch["input_ids"].shape) for batch in trainer.train_dataloader]
    assert all(rows * length <= 100 or rows == 1 for rows, length in shapes)
    assert sum(rows for rows, _ in shapes) == len(trainer.train_dataloader.dataset)
