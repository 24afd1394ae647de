"""Deterministic demo corpora (NER and RE), so that `accel-trainer train` works offline with no
data; which task has which demo (files, texts, and the options it settles)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from accel_trainer.errors import ConfigError
from accel_trainer.tasks.wording import built_in_name

if TYPE_CHECKING:
    from accel_trainer.tasks.base import Task

NER_DEMO_FILES = ("train.conll", "dev.conll")
RE_DEMO_FILES = ("train.jsonl", "dev.jsonl")

PEOPLE = [
    "Maria Lopez",
    "John Smith",
    "Aiko Tanaka",
    "Peter Novak",
    "Fatima Khan",
    "Lars Berg",
    "Chen Wei",
    "Anna Schmidt",
    "David Cohen",
    "Olga Petrova",
    "Samuel Okafor",
    "Laura Rossi",
    "Carlos Mendes",
    "Emma Dubois",
    "Ravi Patel",
    "Sofia Ivanova",
    "Tom Baker",
    "Nina Holm",
]
ORGANISATIONS = [
    "Acme Corp",
    "Globex",
    "Initech",
    "Northwind Traders",
    "Blue Harbor Bank",
    "Umbrella Labs",
    "Stark Industries",
    "Vandelay Imports",
    "Helios Energy",
    "Orbit Airlines",
    "Riverbend Press",
    "the United Nations",
    "the Red Cross",
    "Pinewood Studios",
]
PLACES = [
    "Paris",
    "Berlin",
    "Lagos",
    "Tokyo",
    "New York",
    "Buenos Aires",
    "Oslo",
    "Nairobi",
    "Madrid",
    "Cape Town",
    "Toronto",
    "Mumbai",
    "Lisbon",
    "Seoul",
    "San Diego",
    "Vienna",
]
DATES = [
    "Monday",
    "Friday",
    "January",
    "March 2021",
    "last year",
    "1998",
    "May 4",
    "the spring of 2019",
    "December",
    "2023",
    "last week",
    "July 14",
]
TEMPLATES = [
    "{PER} joined {ORG} in {LOC} on {DATE} .",
    "{ORG} opened a new office in {LOC} .",
    "On {DATE} , {PER} flew from {LOC} to {LOC} .",
    "{PER} said that {ORG} will hire more staff .",
    "The mayor of {LOC} met {PER} on {DATE} .",
    "{PER} , a spokesperson for {ORG} , declined to comment .",
    "Shares of {ORG} rose sharply in {DATE} .",
    "{PER} was born in {LOC} in {DATE} .",
    "{ORG} and {ORG} signed an agreement in {LOC} .",
    "Heavy rain hit {LOC} on {DATE} , officials said .",
    "{PER} thanked {PER} for the help .",
    "According to {ORG} , prices in {LOC} fell again .",
    "{PER} moved to {LOC} to work for {ORG} .",
    "The report was published by {ORG} on {DATE} .",
    "Nobody expected the weather to change so quickly .",
    "{PER} will visit {LOC} next month .",
]
FILLERS = {"PER": PEOPLE, "ORG": ORGANISATIONS, "LOC": PLACES, "DATE": DATES}


def demo_sentence(rng: random.Random) -> tuple[list[str], list[str]]:
    """One sentence from a random template with random fillers, tagged in BIO."""
    tokens, tags = [], []
    for piece in rng.choice(TEMPLATES).split():
        if piece.startswith("{") and piece.endswith("}"):
            entity_type = piece[1:-1]
            words = rng.choice(FILLERS[entity_type]).split()
            tokens.extend(words)
            tags.extend([f"B-{entity_type}"] + [f"I-{entity_type}"] * (len(words) - 1))
        else:
            tokens.append(piece)
            tags.append("O")
    return tokens, tags


def demo_corpus(num_sentences: int, seed: int) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(seed)
    return [demo_sentence(rng) for _ in range(num_sentences)]


def conll_text(sentences: list[tuple[list[str], list[str]]]) -> str:
    """Sentences as CoNLL: a token and its tag per line, a blank line after each sentence."""
    lines = []
    for tokens, tags in sentences:
        lines.extend(f"{token}\t{tag}\n" for token, tag in zip(tokens, tags, strict=True))
        lines.append("\n")
    return "".join(lines)


def write_conll(path: str, sentences: list[tuple[list[str], list[str]]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(conll_text(sentences))


def ner_demo_texts(num_train: int = 600, num_dev: int = 150) -> tuple[str, str]:
    """The texts of the NER demo's train.conll and dev.conll, the same on every call."""
    return conll_text(demo_corpus(num_train, seed=1)), conll_text(demo_corpus(num_dev, seed=2))


def write_demo_corpus(folder: str, num_train: int = 600, num_dev: int = 150) -> tuple[str, str]:
    """Write the NER demo's train.conll and dev.conll into `folder`; return their paths."""
    return write_texts(folder, NER_DEMO_FILES, ner_demo_texts(num_train, num_dev))


def write_texts(folder: str, names: tuple[str, str], texts: tuple[str, str]) -> tuple[str, str]:
    os.makedirs(folder, exist_ok=True)
    paths = (os.path.join(folder, names[0]), os.path.join(folder, names[1]))
    for path, text in zip(paths, texts, strict=True):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    return paths


# Relation demo: each template names its slots; RELATIONS gives the label of a slot pair.
RE_TEMPLATES = [
    ("{PER} works for {ORG} , which is based in {LOC} .", ("PER", "ORG", "LOC")),
    ("{PER} , who was born in {LOC} , joined {ORG} last year .", ("PER", "LOC", "ORG")),
    ("{ORG} , headquartered in {LOC} , hired {PER} .", ("ORG", "LOC", "PER")),
    ("Before moving to {LOC} , {PER} worked for {ORG} .", ("LOC", "PER", "ORG")),
    ("{PER} met a reporter from {ORG} in {LOC} .", ("PER", "ORG", "LOC")),
    ("{PER} was born in {LOC} and later founded {ORG} .", ("PER", "LOC", "ORG")),
]
RELATIONS = {
    0: {(0, 1): "works_for", (1, 2): "based_in", (0, 2): "no_relation"},
    1: {(0, 1): "born_in", (0, 2): "works_for", (1, 2): "no_relation"},
    2: {(0, 1): "based_in", (0, 2): "works_for", (1, 2): "no_relation"},
    3: {(0, 1): "no_relation", (1, 2): "works_for", (0, 2): "no_relation"},
    4: {(0, 1): "no_relation", (1, 2): "no_relation", (0, 2): "no_relation"},
    5: {(0, 1): "born_in", (1, 2): "no_relation", (0, 2): "works_for"},
}


def demo_relation(rng: random.Random) -> dict:
    """One sentence, one marked pair (e1 first in the text) and the pair's relation."""
    number = rng.randrange(len(RE_TEMPLATES))
    template, slots = RE_TEMPLATES[number]
    pair, label = rng.choice(sorted(RELATIONS[number].items()))
    fillers = [rng.choice(FILLERS[slot]) for slot in slots]
    marked = list(fillers)
    marked[pair[0]] = f"<e1> {fillers[pair[0]]} </e1>"
    marked[pair[1]] = f"<e2> {fillers[pair[1]]} </e2>"
    text = template
    for slot, value in zip(slots, marked, strict=True):
        text = text.replace("{" + slot + "}", value, 1)
    return {"text": text, "label": label}


def re_demo_texts(num_train: int = 1600, num_dev: int = 200) -> tuple[str, str]:
    """The texts of the RE demo's train.jsonl and dev.jsonl (inline <e1>/<e2> markers)."""
    import json

    texts = []
    for count, seed in ((num_train, 3), (num_dev, 4)):
        rng = random.Random(seed)
        texts.append("".join(json.dumps(demo_relation(rng)) + "\n" for _ in range(count)))
    return texts[0], texts[1]


def write_demo_re_corpus(folder: str, num_train: int = 1600, num_dev: int = 200) -> tuple[str, str]:
    """Write the RE demo's train.jsonl and dev.jsonl into `folder`; return their paths."""
    return write_texts(folder, RE_DEMO_FILES, re_demo_texts(num_train, num_dev))


@dataclass(frozen=True)
class Demo:
    """A built-in task's demo: its train and eval file names, their texts, and the task options
    it sets where the options left them unset (None)."""

    files: tuple[str, str]
    texts: Callable[[], tuple[str, str]]
    defaults: dict[str, Any] = field(default_factory=dict)


# The RE demo's pairs without a relation are labelled no_relation.
DEMOS = {
    "ner": Demo(NER_DEMO_FILES, ner_demo_texts),
    "re": Demo(RE_DEMO_FILES, re_demo_texts, {"negative_label": "no_relation"}),
}


def demo_of(task: Task) -> Demo:
    """The task's demo; ConfigError for a task without one."""
    demo = DEMOS.get(built_in_name(task))
    if demo is None:
        raise ConfigError(
            f"--train_file is required for --task {task.name}: it has no demo corpus. Give "
            "--train_file (and --validation_file)."
        )
    return demo


def demo_files(task: Task, folder: str) -> tuple[str, str]:
    """Where the demo's train and eval files go in `folder`."""
    train, dev = demo_of(task).files
    return os.path.join(folder, train), os.path.join(folder, dev)


def demo_texts(task: Task) -> tuple[str, str]:
    """The texts of the demo's train and eval files, the same on every call."""
    return demo_of(task).texts()


def demo_defaults(task: Task) -> None:
    """Set what training on the demo corpus needs that the options left unset; nothing for a
    task without a demo."""
    for name, value in demo_settings(task).items():
        if getattr(task, name) is None:
            setattr(task, name, value)


def settled_options(task: Task) -> dict[str, Any]:
    """The task's options whose value the demo may settle, as the task holds them, by flat
    name, for the model card (RE: the negative label)."""
    return {name: getattr(task, name) for name in demo_settings(task)}


def demo_settings(task: Task) -> dict[str, Any]:
    """The options the task's demo sets where they are unset; none for a task without one."""
    demo = DEMOS.get(built_in_name(task))
    return demo.defaults if demo is not None else {}
