"""Fitting long texts into max_seq_length: sliding windows over sub-tokens (NER) and one
window around both entities (RE). Positions count content sub-tokens, without specials."""

from __future__ import annotations

from typing import Any


def special_affixes(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special token ids the tokenizer puts before and after a single sequence."""
    encoded = tokenizer("x", return_special_tokens_mask=True)
    ids, special = encoded["input_ids"], encoded["special_tokens_mask"]
    first = special.index(0)
    last = len(special) - 1 - special[::-1].index(0)
    return ids[:first], ids[last + 1 :]


def sliding_windows(length: int, size: int) -> list[tuple[int, int]]:
    """Windows of `size` positions overlapping by half, covering [0, length)."""
    if length <= size:
        return [(0, length)]
    step = max(1, size // 2)
    starts = list(range(0, length - size, step)) + [length - size]
    return [(start, start + size) for start in starts]


def window_owners(windows: list[tuple[int, int]]) -> list[int]:
    """For each position, the window in which it is farthest from an edge (it sees the most
    context there; the first such window on a tie). One pass over the windows, so a document
    of a million sub-tokens costs a million steps, not a million times its windows."""
    length = windows[-1][1] if windows else 0
    owners, margins = [0] * length, [-1] * length
    for index, (start, end) in enumerate(windows):
        for position in range(start, end):
            margin = min(position - start, end - 1 - position)
            if margin > margins[position]:
                owners[position], margins[position] = index, margin
    return owners


def window_around(span_start: int, span_end: int, length: int, size: int) -> tuple[int, int] | None:
    """A window of at most `size` positions that contains [span_start, span_end), centred on it;
    None when the span itself is longer than `size`."""
    if span_end - span_start > size:
        return None
    if length <= size:
        return 0, length
    slack = size - (span_end - span_start)
    start = min(max(0, span_start - slack // 2), length - size)
    return start, start + size
