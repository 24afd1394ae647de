"""Length-grouped training order: batches of similar-length examples waste less compute on
padding, while every example is still seen once per epoch in a seeded, shuffled order."""

from __future__ import annotations

import torch
from torch.utils.data import Sampler

# Examples are sorted by length within this many global batches at a time (transformers uses 50).
MEGA_BATCHES = 50


class LengthGroupedSampler(Sampler[int]):
    """Example indices in which each run of `group_size` consecutive ones (one optimizer step's
    global batch) holds examples of similar length, longest first. Per epoch: a permutation
    seeded by seed + epoch, cut into mega-batches of MEGA_BATCHES groups, each sorted by length
    and cut into groups; the full groups are shuffled and the one short group (if any) goes last,
    so that batch samplers of any divisor of group_size read whole groups. It depends only on
    the seed, the epoch and the global batch, so it is the same on every process and for every
    split of the global batch into processes, micro-batches and accumulation."""

    def __init__(self, lengths: list[int], group_size: int, seed: int):
        self.lengths = lengths
        self.group_size = group_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def groups(self) -> list[list[int]]:
        """This epoch's global batches, in training order."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        mega_size = MEGA_BATCHES * self.group_size
        full, short = [], []
        for start in range(0, len(order), mega_size):
            mega = sorted(order[start : start + mega_size], key=lambda i: -self.lengths[i])
            for first in range(0, len(mega), self.group_size):
                group = mega[first : first + self.group_size]
                (full if len(group) == self.group_size else short).append(group)
        shuffled = torch.randperm(len(full), generator=generator).tolist()
        return [full[i] for i in shuffled] + short

    def __iter__(self):
        for group in self.groups():
            yield from group


def budget_batch_sizes(lengths_longest_first: list[int], max_tokens: int) -> list[int]:
    """Sizes of consecutive batches over lengths sorted longest first, each as large as the
    budget allows: its first (longest) example x its size <= max_tokens. An example longer than
    the budget gets a batch of its own."""
    sizes, start = [], 0
    while start < len(lengths_longest_first):
        size = max(1, max_tokens // max(lengths_longest_first[start], 1))
        size = min(size, len(lengths_longest_first) - start)
        sizes.append(size)
        start += size
    return sizes


class TokenBudgetBatchSampler(Sampler[list[int]]):
    """Micro-batches packed to a token budget: padded tokens (longest example x examples) never
    exceed max_tokens, so one budget fits every batch on a GPU and short sentences travel in
    large batches. Per epoch, seeded by seed + epoch: a permutation, sorted by length with ties
    left in that random order, cut into budget-sized batches, and the batches shuffled. The cuts
    depend only on the sorted lengths, so every epoch has the same number of batches."""

    def __init__(self, lengths: list[int], max_tokens: int, seed: int):
        self.lengths = lengths
        self.max_tokens = max_tokens
        self.seed = seed
        self.epoch = 0
        self.sizes = budget_batch_sizes(sorted(lengths, reverse=True), max_tokens)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.sizes)

    def batches(self) -> list[list[int]]:
        """This epoch's micro-batches, in training order."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        order.sort(key=lambda i: -self.lengths[i])  # stable: equal lengths stay shuffled
        batches, start = [], 0
        for size in self.sizes:
            batches.append(order[start : start + size])
            start += size
        shuffled = torch.randperm(len(batches), generator=generator).tolist()
        return [batches[i] for i in shuffled]

    def __iter__(self):
        yield from self.batches()
