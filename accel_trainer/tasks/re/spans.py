"""Relation examples' entities: plain text and the head and tail character spans, from text with
inline markers or from tokens with head and tail token spans."""

from __future__ import annotations

from accel_trainer.errors import DataError

SEMEVAL_MARKERS = ["<e1>", "</e1>", "<e2>", "</e2>"]


def occurrences(text: str, marker: str, after: int = 0) -> list[int]:
    found, position = [], text.find(marker, after)
    while position >= 0:
        found.append(position)
        position = text.find(marker, position + 1)
    return found


def space_after(text: str, position: int, marker: str) -> bool:
    """Whether whitespace follows the marker at `position`, as after an opening `[[ `."""
    end = position + len(marker)
    return end == len(text) or text[end].isspace()


def space_before(text: str, position: int) -> bool:
    """Whether whitespace precedes `position`, as before a closing ` ]]`."""
    return position == 0 or text[position - 1].isspace()


def parse_marked_text(text: str, markers: list[str], where: str) -> dict:
    """Plain text and the head/tail character spans of a text with inline markers. Marker
    strings may also occur as text (ChemProt has `>>` and `[[` in chemical names): an opening
    marker that appears more than once counts where a space follows it, as in `[[ X ]]` (or,
    in a run like `[[[`, at its first place), and the closing marker is the first one after
    it; after a spaced opening marker, the first closing one with a space before it."""
    spans = []
    for opening, closing, name in (
        (markers[0], markers[1], "head"),
        (markers[2], markers[3], "tail"),
    ):
        starts = occurrences(text, opening)
        if not starts:
            raise DataError(
                f"{where} has no {name} marker {opening!r}: got {text[:80]!r}. Mark both "
                f"entities with {' '.join(markers)} (the markers a model is trained with; "
                "train with --entity_markers to use the ones your files have)."
            )
        alone = [p for p in starts if space_after(text, p, opening)]
        one_run = starts[-1] - starts[0] < len(opening)  # overlapping, as in "[[["
        if len(alone) == 1:
            start = alone[0]
        elif len(starts) == 1 or (one_run and not alone):
            start = starts[0]
        else:
            raise DataError(
                f"{where} has the {name} marker {opening!r} twice: got {text[:80]!r}. Mark "
                "exactly one head and one tail."
            )
        ends = occurrences(text, closing, start + len(opening))
        if space_after(text, start, opening):
            ends = [p for p in ends if space_before(text, p)] or ends
        end = (ends or [-1])[0]
        if end < 0:
            raise DataError(
                f"{where} has an unbalanced {name} marker: {opening!r} without a {closing!r} "
                f"after it: got {text[:80]!r}. Close the entity."
            )
        spans.append((start, start + len(opening), end, end + len(closing)))
    # Remove the four markers, right to left, and map entity spans into the plain text.
    cuts = sorted([(s[0], s[1]) for s in spans] + [(s[2], s[3]) for s in spans], reverse=True)
    if any(a[0] < b[1] for a, b in zip(cuts, cuts[1:], strict=False)):
        raise DataError(f"{where} has markers inside other markers: got {text[:80]!r}.")
    plain = text
    for cut_start, cut_end in cuts:
        plain = plain[:cut_start] + plain[cut_end:]

    def shifted(position: int) -> int:
        return position - sum(e - s for s, e in cuts if e <= position)

    entities = []
    for _, open_end, close_start, _ in spans:
        start, end = shifted(open_end), shifted(close_start)
        inner = plain[start:end]
        start += len(inner) - len(inner.lstrip())
        end -= len(inner) - len(inner.rstrip())
        if start >= end:
            raise DataError(f"{where} has an empty entity between markers: got {text[:80]!r}.")
        entities.append([start, end])
    check_no_overlap(entities[0], entities[1], where)
    return {"text": plain, "head": entities[0], "tail": entities[1]}


def check_no_overlap(head: list[int], tail: list[int], where: str) -> None:
    if head[0] < tail[1] and tail[0] < head[1]:
        raise DataError(
            f"{where} has overlapping head and tail entities: got spans {head} and {tail}. "
            "Relation examples need two separate entities."
        )


def parse_token_spans(record: dict, where: str) -> dict:
    """Plain text and character spans from `tokens` with `head`/`tail` token spans."""
    tokens = record["tokens"]
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise DataError(f"{where}: 'tokens' must be a list of strings: got {tokens!r:.80}.")
    starts, position = [], 0
    for token in tokens:
        starts.append(position)
        position += len(token) + 1
    text = " ".join(tokens)
    result: dict = {"text": text}
    for name in ("head", "tail"):
        span = record.get(name)
        if not isinstance(span, dict) or "start" not in span or "end" not in span:
            raise DataError(
                f'{where} lacks {name} {{"start": i, "end": j}}: got {span!r}. Give token '
                "indices, end exclusive."
            )
        start, end = span["start"], span["end"]
        if not (
            isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(tokens)
        ):
            raise DataError(
                f"{where} has a {name} span out of range: got start {start!r}, end {end!r} for "
                f"{len(tokens)} tokens. Use 0 <= start < end <= number of tokens (end exclusive)."
            )
        result[name] = [starts[start], starts[end - 1] + len(tokens[end - 1])]
        result[f"{name}_type"] = str(span.get("type") or "")
    check_no_overlap(result["head"], result["tail"], where)
    return result
