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
