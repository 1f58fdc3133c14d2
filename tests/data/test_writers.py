"""`vidssm.data.writers.check_out_folder`: a builder never replaces another builder's data or other files."""

import json

import pytest

from vidssm.data.long_memory import LongMemoryConfig, build_long_memory
from vidssm.data.moving_mnist import MovingMNISTConfig, build_moving_mnist
from vidssm.data.writers import build_kind, check_out_folder, read_build_meta

MM = MovingMNISTConfig(num_train=2, num_val=0, num_test=1, num_frames=4, image_size=32)
LM = LongMemoryConfig(num_frames=6, image_size=16, digit_size=8, num_train=2, num_val=0, num_test=1)


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("force", [False, True])
def test_another_builders_folder_is_refused_and_kept(tmp_path, force):
    mm, lm = tmp_path / "mm", tmp_path / "lm"
    build_moving_mnist(mm, MM, progress=False)
    build_long_memory(lm, LM, progress=False)
    before = {mm: _snapshot(mm), lm: _snapshot(lm)}
    with pytest.raises(FileExistsError, match=f"{mm} holds a moving-mnist build, not a long-memory build"):
        build_long_memory(mm, LM, force=force, progress=False)
    with pytest.raises(FileExistsError, match=f"{lm} holds a long-memory build, not a moving-mnist build"):
        build_moving_mnist(lm, MM, force=force, progress=False)
    with pytest.raises(FileExistsError, match="holds a long-memory build, not a real-motion build"):
        check_out_folder(lm, "real-motion", force=True)  # the real-motion builder's check (it passes force=True)
    assert before == {mm: _snapshot(mm), lm: _snapshot(lm)}  # nothing lost


def test_same_builder_other_parameters_needs_force(tmp_path):
    out = build_long_memory(tmp_path / "lm", LM, progress=False)
    other = LongMemoryConfig(**{**LM.__dict__, "seed": 1})
    with pytest.raises(FileExistsError, match="long-memory build with other parameters; pass force=True"):
        build_long_memory(out, other, progress=False)
    build_long_memory(out, other, force=True, progress=False)
    assert read_build_meta(out)["config"]["seed"] == 1 and read_build_meta(out)["builder"] == "long-memory"


def test_other_files_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not a long-memory build; choose an empty folder"):
        build_long_memory(tmp_path, LM, force=True, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    check_out_folder(tmp_path / "new", "long-memory", force=False)  # missing: fine
    (tmp_path / "empty").mkdir()
    check_out_folder(tmp_path / "empty", "long-memory", force=False)


@pytest.mark.parametrize(
    "meta, kind",
    [
        ({"builder": "real-motion"}, "real-motion"),
        ({"config": {"cue_frames": 4, "num_frames": 64}}, "long-memory"),  # builds before the `builder` field
        ({"config": {"test_sources": [], "frames": 16}}, "real-motion"),
        ({"config": {"kind": "temporal", "num_digits": 1}}, "moving-mnist"),
        ({"config": {"fps": 10}}, None),
        (None, None),
        ([1, 2], None),
    ],
)
def test_build_kind(meta, kind, tmp_path):
    assert build_kind(meta) == kind
    if isinstance(meta, dict):  # the same through a folder
        (tmp_path / "meta.json").write_text(json.dumps(meta))
        assert build_kind(read_build_meta(tmp_path)) == kind


def test_force_never_deletes_files_the_build_does_not_write(tmp_path):
    """`--force` used to delete everything in the folder (the user's notes, a tool's cache of the old build)."""
    out = build_long_memory(tmp_path / "lm", LM, progress=False)
    (out / "my_notes.txt").write_text("mine")
    (out / "my_preds").mkdir()
    before = _snapshot(out)
    other = LongMemoryConfig(**{**LM.__dict__, "seed": 1})
    with pytest.raises(FileExistsError, match=r"also holds files the build does not write \(my_notes.txt, my_preds\)"):
        build_long_memory(out, other, force=True, progress=False)
    assert _snapshot(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["lm"]  # no tmp left
    (out / "my_notes.txt").unlink()
    (out / "my_preds").rmdir()
    build_long_memory(out, other, force=True, progress=False)  # only the build's own files: replaced
    assert read_build_meta(out)["config"]["seed"] == 1


def test_real_motion_needs_force_for_other_parameters(tmp_path):
    """The real-motion builder replaced a real-motion build of other parameters without being asked."""
    out = tmp_path / "rm"
    out.mkdir()
    (out / "meta.json").write_text(json.dumps({"builder": "real-motion", "config": {"seed": 3}}))
    with pytest.raises(FileExistsError, match="real-motion build with other parameters; pass force=True"):
        check_out_folder(out, "real-motion", force=False)
    check_out_folder(out, "real-motion", force=True)


@pytest.mark.parametrize("force", [False, True])
def test_a_file_or_broken_link_as_out_is_refused_and_kept(tmp_path, force):
    file, link = tmp_path / "notes.txt", tmp_path / "link"
    file.write_text("mine")
    link.symlink_to(tmp_path / "missing")
    for out in (file, link):
        with pytest.raises(FileExistsError, match=f"{out} is a file or a broken link, not a folder"):
            build_long_memory(out, LM, force=force, progress=False)
    assert file.read_text() == "mine" and link.is_symlink() and not (tmp_path / "missing").exists()


def test_the_command_line_names_a_file_out(tmp_path, capsys):
    from vidssm.data.cli import main

    out = tmp_path / "clip.mp4"
    out.write_bytes(b"not a folder")
    with pytest.raises(SystemExit) as err:
        main(["long-memory", "--frames", "6", "--out", str(out)])
    assert err.value.code == 2 and f"{out} is a file or a broken link" in capsys.readouterr().err
    assert out.read_bytes() == b"not a folder"


@pytest.mark.parametrize("force", [False, True])
def test_a_link_to_a_folder_as_out_is_refused_before_building(tmp_path, force):
    """A link to an empty folder used to pass the check, build every clip, then fail in `shutil.rmtree(link)` with
    an OSError traceback, leaving `<link>.tmp-<pid>` behind."""
    empty, link = tmp_path / "empty", tmp_path / "link"
    empty.mkdir()
    link.symlink_to(empty)
    with pytest.raises(FileExistsError, match=f"{link} is a link to the folder {empty}; pass that folder itself"):
        build_long_memory(link, LM, force=force, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "link"] and not any(empty.iterdir())
    build_long_memory(empty, LM, progress=False)  # the folder itself: built
    assert build_long_memory(link, LM, progress=False) == link  # a link to the same build: reused, not rebuilt
    other = LongMemoryConfig(**{**LM.__dict__, "seed": 1})
    with pytest.raises(FileExistsError, match="is a link to the folder"):
        build_long_memory(link, other, force=True, progress=False)
    assert read_build_meta(empty)["config"]["seed"] == LM.seed


@pytest.mark.parametrize("name", [".", ".."])
def test_a_path_without_a_folder_name_is_refused(tmp_path, monkeypatch, name):
    """`--out .` in an empty folder used to end in `ValueError: PosixPath('.') has an empty name`."""
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    with pytest.raises(FileExistsError, match="names no folder of its own"):
        build_long_memory(name, LM, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd"]


def test_a_path_under_a_file_is_refused(tmp_path):
    """`--out notes.txt/set` ended in `NotADirectoryError: ... notes.txt/set.tmp-<pid>` (a traceback)."""
    (tmp_path / "notes.txt").write_text("mine")
    for out in (tmp_path / "notes.txt" / "set", tmp_path / "notes.txt" / "a" / "b"):
        with pytest.raises(FileExistsError, match=f"{out} lies under {tmp_path / 'notes.txt'}, a file"):
            build_long_memory(out, LM, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine" and len(list(tmp_path.iterdir())) == 1
    build_long_memory(tmp_path / "new" / "deeper" / "set", LM, progress=False)  # missing folders: made
    assert read_build_meta(tmp_path / "new" / "deeper" / "set")["config"]["num_frames"] == LM.num_frames


@pytest.mark.parametrize("fault", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_build_leaves_nothing_and_keeps_the_old_build(tmp_path, monkeypatch, fault):
    """Ctrl-C (or an error) in the middle of a build used to leave `<out>.tmp-<pid>` with every clip written so far."""
    import vidssm.data.long_memory as long_memory

    out = tmp_path / "lm"
    build_long_memory(out, LM, progress=False)
    before = _snapshot(out)
    calls = []

    def render_then_stop(*args):
        calls.append(1)
        if len(calls) == 2:
            raise fault("stopped")
        return render(*args)

    render = long_memory.render_long_memory_clip
    monkeypatch.setattr(long_memory, "render_long_memory_clip", render_then_stop)
    with pytest.raises(fault, match="stopped"):
        build_long_memory(out, LongMemoryConfig(**{**LM.__dict__, "seed": 1}), force=True, progress=False)
    assert len(calls) == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["lm"]
    assert _snapshot(out) == before  # the earlier build is untouched


def test_leftovers_of_killed_builds_are_removed_and_live_ones_kept(tmp_path):
    """A build killed outright (no Python cleanup) leaves `<out>.tmp-<pid>`; the next build of `out` removes the
    leftovers of processes that no longer run, and never a folder of a build still running or of another name."""
    import os
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid no longer runs (not reused this instant)
    (tmp_path / f"lm.tmp-{dead.pid}" / "train").mkdir(parents=True)
    live = tmp_path / f"lm.tmp-{os.getppid()}"
    live.mkdir()
    (tmp_path / "lm.tmp-notes").mkdir()
    (tmp_path / "other.tmp-1").mkdir()
    build_long_memory(tmp_path / "lm", LM, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lm", f"lm.tmp-{os.getppid()}", "lm.tmp-notes", "other.tmp-1"]
