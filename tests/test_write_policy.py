"""The one write policy of the commands that write beside a user's files (evaluate, plot,
predict, the demo corpus): each writer tried against a user's file of the same name, its own
earlier output (unchanged and edited), a symbolic link, a hard link, a missing folder and a
file that appears while it works."""

import os
import shutil

import pytest

from accel_trainer.cli import main
from accel_trainer.storage import write_policy
from accel_trainer.storage.output_folder import DEMO_MARKER
from tests.conftest import reset_accelerate


@pytest.fixture(scope="module")
def run(small_data, tmp_path_factory) -> str:
    """A short training run with a log, for evaluate, predict and plot to read."""
    output_dir = str(tmp_path_factory.mktemp("policy") / "run")
    data = ["--train_file", small_data[0], "--validation_file", small_data[1]]
    argv = ["train", *data, "--output_dir", output_dir, "--max_train_steps", "4",
            "--logging_steps", "2"]  # fmt: skip
    assert main(argv) == 0
    reset_accelerate()
    return output_dir


def writer_command(writer: str, run: str, dev: str, folder) -> tuple[list[str], str]:
    """The command line of `writer` writing into `folder`, and the file it writes."""
    if writer == "plot":
        target = os.path.join(folder, "curves.png")
        return ["plot", run, "--output_file", target], target
    if writer == "evaluate":
        target = os.path.join(folder, "eval_results.json")
        return ["evaluate", "--model_name_or_path", run, "--validation_file", dev,
                "--output_dir", str(folder)], target  # fmt: skip
    target = os.path.join(folder, "labelled.conll")
    return ["predict", "--model_name_or_path", run, "--input_file", dev,
            "--output_file", target], target  # fmt: skip


def one_error(argv, capsys) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    reset_accelerate()
    err = capsys.readouterr().err
    assert err.count("accel-trainer: error:") == 1 and "Traceback" not in err, err
    return err.strip().removeprefix("accel-trainer: error: ")


def succeeds(argv) -> None:
    assert main(argv) == 0
    reset_accelerate()


def read_bytes(path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


WRITERS = ["plot", "evaluate", "predict"]


@pytest.mark.parametrize("writer", WRITERS)
def test_a_users_file_of_the_same_name_is_kept_unless_told(writer, run, small_data, tmp_path,
                                                            capsys):  # fmt: skip
    argv, target = writer_command(writer, run, small_data[1], tmp_path)
    with open(target, "w") as handle:
        handle.write("my notes\n")
    elsewhere = "Choose another --output_dir" if writer == "evaluate" else "Name another file"
    assert one_error(argv, capsys).endswith(
        f"already exists and is not an unchanged output of accel-trainer: got {target!r}. "
        f"{elsewhere}, or pass --overwrite_output_file to replace it."
    )
    assert read_bytes(target) == b"my notes\n"
    succeeds([*argv, "--overwrite_output_file"])
    assert read_bytes(target) != b"my notes\n" and write_policy.is_ours(target)


@pytest.mark.parametrize("writer", WRITERS)
def test_its_own_output_is_replaced_until_the_user_edits_it(writer, run, small_data, tmp_path,
                                                            capsys):  # fmt: skip
    argv, target = writer_command(writer, run, small_data[1], tmp_path)
    succeeds(argv)
    backup = tmp_path / "backup"
    os.link(target, backup)  # a hard link the user made to the first output
    first = read_bytes(target)
    succeeds(argv)  # the unchanged earlier output is ours to replace
    assert write_policy.is_ours(target)
    assert read_bytes(backup) == first  # the other name still holds what it held
    with open(target, "ab") as handle:
        handle.write(b"\n")  # the user's now
    assert "already exists and is not an unchanged output" in one_error(argv, capsys)
    assert read_bytes(target).endswith(b"\n")


@pytest.mark.parametrize("writer", WRITERS)
def test_a_symbolic_link_is_never_written_through(writer, run, small_data, tmp_path, capsys):
    argv, target = writer_command(writer, run, small_data[1], tmp_path)
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    os.symlink(precious, target)
    what, elsewhere = (
        ("eval_results.json in --output_dir", "choose another --output_dir")
        if writer == "evaluate"
        else ("--output_file", "name another file")
    )
    assert one_error(argv, capsys) == (
        f"{what} is a symbolic link: got {target!r} (to {str(precious)!r}). accel-trainer never "
        f"writes through a link: {elsewhere}, or pass --overwrite_output_file to replace the link "
        "itself (what it points to is left alone)."
    )
    succeeds([*argv, "--overwrite_output_file"])
    assert not os.path.islink(target) and write_policy.is_ours(target)
    assert precious.read_text() == "keep me\n"


@pytest.mark.parametrize("writer", ["plot", "predict"])
def test_a_missing_folder_is_refused_before_any_work(writer, run, small_data, tmp_path, capsys):
    argv, target = writer_command(writer, run, small_data[1], tmp_path / "missing")
    assert one_error(argv, capsys) == (
        f"--output_file is in a folder that does not exist: got {target!r}. Create the folder "
        "first."
    )
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("writer", WRITERS)
def test_a_file_that_appears_while_it_works_is_kept(writer, run, small_data, tmp_path, capsys,
                                                     monkeypatch):  # fmt: skip
    argv, target = writer_command(writer, run, small_data[1], tmp_path)
    place_whole = write_policy.place_whole

    def someone_writes_first(path, data, place):
        with open(path, "w") as handle:
            handle.write("written meanwhile\n")
        return place_whole(path, data, place)

    monkeypatch.setattr(write_policy, "place_whole", someone_writes_first)
    assert "appeared or changed while accel-trainer was working" in one_error(argv, capsys)
    assert read_bytes(target) == b"written meanwhile\n"
    assert [name for name in os.listdir(tmp_path) if name.endswith(".partial")] == []


def test_plot_refuses_a_suffix_it_cannot_draw_and_keeps_a_foreign_default_file(run, tmp_path,
                                                                               capsys):  # fmt: skip
    target = str(tmp_path / "curves.docx")
    message = one_error(["plot", run, "--output_file", target], capsys)
    assert message.startswith(
        f"--output_file has a suffix matplotlib cannot write: got {target!r}. End it in one of "
    )
    assert ".png" in message and ".svg" in message and not os.path.exists(target)
    assert ".pgf" not in message  # it needs a LaTeX installation
    default = os.path.join(run, "training_curves.png")
    with open(default, "w") as handle:
        handle.write("a picture of mine\n")
    try:
        assert "already exists and is not an unchanged output" in one_error(["plot", run], capsys)
        assert read_bytes(default) == b"a picture of mine\n"
    finally:
        os.unlink(default)


def test_evaluate_keeps_a_transformers_eval_results_in_the_model_folder(run, small_data, capsys):
    default = os.path.join(run, "eval_results.json")
    with open(default, "w") as handle:
        handle.write('{"eval_f1": 0.9}\n')  # as transformers' Trainer leaves it
    try:
        argv = ["evaluate", "--model_name_or_path", run, "--validation_file", small_data[1]]
        assert one_error(argv, capsys) == (
            f"eval_results.json in --output_dir already exists and is not an unchanged output of "
            f"accel-trainer: got {default!r}. Choose another --output_dir, or pass "
            "--overwrite_output_file to replace it."
        )
        assert read_bytes(default) == b'{"eval_f1": 0.9}\n'
    finally:
        os.unlink(default)


def test_a_demo_rerun_never_rewrites_data_the_user_changed(tmp_path, capsys):
    output_dir = tmp_path / "demo"
    (output_dir / "data").mkdir(parents=True)
    (output_dir / DEMO_MARKER).touch()
    from accel_trainer.tasks.demo import ner_demo_texts

    train_text, dev_text = ner_demo_texts()
    edited = train_text + "Zanzibar\tB-LOC\n\n"
    (output_dir / "data" / "train.conll").write_text(edited)
    (output_dir / "data" / "dev.conll").write_text(dev_text)
    train_file = str(output_dir / "data" / "train.conll")
    assert one_error(["train", "--output_dir", str(output_dir)], capsys) == (
        f"the demo's data file differs from the demo corpus (edited, or not written by the "
        f"demo): got {train_file!r}. The demo never replaces it: train on it with --train_file "
        f"{train_file} (and --validation_file), or pass --overwrite_output_dir to write the demo "
        "corpus again."
    )
    assert (output_dir / "data" / "train.conll").read_text() == edited
    os.unlink(train_file)
    os.mkdir(train_file)
    assert one_error(["train", "--output_dir", str(output_dir)], capsys) == (
        f"--output_dir has a folder where the demo's data file goes: got {train_file!r}. Move it "
        "away, or choose another --output_dir."
    )
    shutil.rmtree(output_dir / "data")
    (output_dir / "data").write_text("mine\n")
    argv = ["train", "--output_dir", str(output_dir), "--overwrite_output_dir"]
    assert one_error(argv, capsys).startswith(
        "--output_dir has a file where the demo's data folder goes"
    )
    assert (output_dir / "data").read_text() == "mine\n"


def test_a_demo_data_file_that_appears_while_the_demo_writes_is_kept(tmp_path, capsys,
                                                                     monkeypatch):  # fmt: skip
    from accel_trainer import prepare

    output_dir = tmp_path / "demo"
    write_demo_file = prepare.write_demo_file

    def someone_writes_first(path, text, overwrite):
        if path.endswith("dev.conll"):
            with open(path, "w") as handle:
                handle.write("USER APPEARED O\n")
        return write_demo_file(path, text, overwrite)

    monkeypatch.setattr(prepare, "write_demo_file", someone_writes_first)
    message = one_error(["train", "--output_dir", str(output_dir)], capsys)
    assert message.startswith("the demo's data file appeared or changed while accel-trainer was")
    assert (output_dir / "data" / "dev.conll").read_text() == "USER APPEARED O\n"


def test_a_users_file_under_the_marks_name_is_kept(run, small_data, tmp_path, capsys):
    argv, target = writer_command("predict", run, small_data[1], tmp_path)
    mark = write_policy.mark_path(target)
    with open(mark, "w") as handle:
        handle.write("my notes\n")
    assert one_error([*argv, "--overwrite_output_file"], capsys) == (
        f"--output_file has a file beside it that is no mark of accel-trainer's: got {mark!r} "
        "(accel-trainer keeps its output's SHA-256 under that name). Move it away, or name "
        "another file."
    )
    assert read_bytes(mark) == b"my notes\n" and not os.path.exists(target)
    long_name = os.path.join(tmp_path, "a" * 240 + ".conll")
    argv, _ = writer_command("predict", run, small_data[1], tmp_path)
    message = one_error([*argv[:-1], long_name], capsys)
    assert "has a name too long for the mark accel-trainer keeps beside it" in message
    assert "(the mark's name while it is written would be 284 bytes, 255 at most)" in message
    # 218 bytes: the output's own temporary name fits, the mark's would not
    message = one_error([*argv[:-1], os.path.join(tmp_path, "b" * 212 + ".conll")], capsys)
    assert "would be 256 bytes, 255 at most" in message
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(mark)]


def test_evaluate_advises_another_output_dir(run, small_data, tmp_path, capsys):
    argv, target = writer_command("evaluate", run, small_data[1], tmp_path)
    os.mkdir(target)
    assert one_error(argv, capsys) == (
        f"eval_results.json in --output_dir is a folder: got {target!r}. Choose another "
        "--output_dir."
    )


def test_a_pipe_or_a_link_under_the_marks_name_is_refused(run, small_data, tmp_path, capsys):
    """Never opened: a named pipe would block the command forever."""
    argv, target = writer_command("predict", run, small_data[1], tmp_path)
    mark = write_policy.mark_path(target)
    os.mkfifo(mark)  # opening it would wait for a writer forever
    assert one_error(argv, capsys).startswith(
        f"--output_file has a file beside it that is no mark of accel-trainer's: got {mark!r}"
    )
    os.unlink(mark)
    (tmp_path / "notes.txt").write_text("mine\n")
    os.symlink("notes.txt", mark)
    assert "is no mark of accel-trainer's" in one_error(argv, capsys)
    assert os.path.islink(mark) and (tmp_path / "notes.txt").read_text() == "mine\n"
    assert not os.path.exists(target)


def test_the_mark_is_written_before_the_output_changes(tmp_path, monkeypatch):
    """A mark that cannot be written (a full disk, say) stops before the output is replaced,
    and a file of the user's that appears under the mark's name meanwhile is kept."""
    from accel_trainer.errors import OutputError

    target = str(tmp_path / "out.jsonl")
    write_policy.write_owned(target, "first\n", overwrite=False, what="--output_file")
    mark_path = write_policy.mark_path
    monkeypatch.setattr(write_policy, "mark_path", lambda path: str(tmp_path / "no" / "mark"))
    with pytest.raises(OutputError):
        write_policy.write_owned(target, "second\n", overwrite=False, what="--output_file")
    monkeypatch.setattr(write_policy, "mark_path", mark_path)
    assert read_bytes(target) == b"first\n" and write_policy.is_ours(target)

    other = str(tmp_path / "other.jsonl")
    link_new = write_policy.link_new

    def user_writes_the_mark_first(partial, path):
        if path == mark_path(other):
            with open(path, "w") as handle:
                handle.write("mine\n")
        return link_new(partial, path)

    monkeypatch.setattr(write_policy, "link_new", user_writes_the_mark_first)
    with pytest.raises(OutputError, match="was written, but its mark could not be"):
        write_policy.write_owned(other, "data\n", overwrite=False, what="--output_file")
    assert read_bytes(mark_path(other)) == b"mine\n" and read_bytes(other) == b"data\n"
    assert [name for name in os.listdir(tmp_path) if name.endswith(".partial")] == []


def test_the_mark_lies_beside_the_file_through_a_linked_folder(tmp_path):
    (tmp_path / "real" / "sub").mkdir(parents=True)
    os.symlink(tmp_path / "real" / "sub", tmp_path / "link")
    target = str(tmp_path / "link" / ".." / "out.jsonl")  # the kernel: real/out.jsonl
    write_policy.write_owned(target, "data\n", overwrite=False, what="--output_file")
    assert sorted(os.listdir(tmp_path / "real")) == [".out.jsonl.accel-trainer.json", "out.jsonl",
                                                     "sub"]  # fmt: skip
    assert write_policy.is_ours(str(tmp_path / "real" / "out.jsonl"))


def test_an_output_inside_a_file_is_named_as_such(run, small_data, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine\n")
    target = str(tmp_path / "notes.txt" / "out.conll")
    argv, _ = writer_command("predict", run, small_data[1], tmp_path)
    assert one_error([*argv[:-1], target], capsys) == (
        f"--output_file is inside a file, not a folder: got {target!r}. Name another file."
    )


def test_a_pipe_where_a_demo_data_file_goes_is_refused_without_opening_it(tmp_path, capsys):
    output_dir = tmp_path / "demo"
    (output_dir / "data").mkdir(parents=True)
    (output_dir / DEMO_MARKER).touch()
    pipe = output_dir / "data" / "train.conll"
    os.mkfifo(pipe)
    assert one_error(["train", "--output_dir", str(output_dir)], capsys) == (
        f"--output_dir has something that is no regular file where the demo's data file goes: "
        f"got {str(pipe)!r} (a named pipe, a device or a link to nothing). Move it away, or "
        "choose another --output_dir."
    )


@pytest.mark.parametrize(
    "log, problem",
    [
        (b'{"step": 1, "loss": 1.0}\n\xff\xfe bad\n', "line 2 is not JSON"),
        (
            b'{"loss": 1.0}\n',
            "line 1 is no log record of accel-trainer (an object with its 'step')",
        ),
        (b'[1, 2]\n{"step": 1, "loss": 1.0}\n', "line 1 is no log record of accel-trainer"),
    ],
)
def test_plot_names_the_line_of_a_damaged_log(tmp_path, capsys, log, problem):
    (tmp_path / "log_history.jsonl").write_bytes(log)
    message = one_error(["plot", str(tmp_path)], capsys)
    assert message.startswith(f"{tmp_path / 'log_history.jsonl'} {problem}")
