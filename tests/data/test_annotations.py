"""Every annotation format parses to the right records and labels; label maps round-trip and are reused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidssm.data.annotations import (
    AnnotationError,
    LabelMap,
    VideoRecord,
    load_annotations,
    load_hmdb51,
    load_ucf101,
    ssv2_label,
)


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_folder_per_class(tmp_path):
    for cls, names in {"walk": ["a.mp4", "b.avi"], "run": ["c.mkv"], "jump": []}.items():
        (tmp_path / cls).mkdir()
        for n in names:
            _touch(tmp_path / cls / n)
    _touch(tmp_path / "run" / "readme.txt")
    records, lm = load_annotations("folder", tmp_path)
    assert lm.names == ["jump", "run", "walk"]
    assert [(r.path.name, lm.names[r.label]) for r in records] == [
        ("c.mkv", "run"),
        ("a.mp4", "walk"),
        ("b.avi", "walk"),
    ]


def test_kinetics_csv_finds_videos_by_youtube_id(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "abseiling,--07WQ2iBlw,1,11,train\n"
        "air drumming,-0Q1aXl2Qu4,12,22,train\n"
        "abseiling,missingvid01,0,10,train\n"
    )
    a = _touch(tmp_path / "videos" / "abseiling" / "--07WQ2iBlw_000001_000011.mp4")
    b = _touch(tmp_path / "videos" / "-0Q1aXl2Qu4.webm")
    records, lm = load_annotations("kinetics", tmp_path / "videos", csv)
    assert lm.names == ["abseiling", "air drumming"]
    assert [r.path for r in records[:2]] == [a, b] and [r.label for r in records] == [0, 1, 0]
    assert not records[2].path.exists()  # kept, and reported later by the dataset


def test_path_label_list_ids_and_names(tmp_path):
    (tmp_path / "ids.txt").write_text("v/a.mp4 3\nv/b.mp4\t0\n\n# comment\n")
    records, lm = load_annotations("list", tmp_path, tmp_path / "ids.txt")
    assert lm is None and [(r.path, r.label) for r in records] == [(tmp_path / "v/a.mp4", 3), (tmp_path / "v/b.mp4", 0)]
    (tmp_path / "names.txt").write_text("a.mp4 cat\nb.mp4 dog\nc.mp4 cat\n")
    records, lm = load_annotations("list", tmp_path, tmp_path / "names.txt")
    assert lm.names == ["cat", "dog"] and [r.label for r in records] == [0, 1, 0]


def test_ssv2_templates_lose_brackets(tmp_path):
    labels = {"Putting something on something": "1", "Pushing something from left to right": "0"}
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    split = [
        {"id": "17", "label": "putting a cup on a table", "template": "Putting [something] on [something]"},
        {"id": "9", "label": "pushing pen", "template": "Pushing [something] from left to right"},
    ]
    (tmp_path / "validation.json").write_text(json.dumps(split))
    (tmp_path / "test.json").write_text(json.dumps([{"id": "5"}]))
    records, lm = load_annotations("ssv2", tmp_path, tmp_path / "validation.json", labels_file=tmp_path / "labels.json")
    assert lm.names == ["Pushing something from left to right", "Putting something on something"]
    assert [(r.path.name, r.label) for r in records] == [("17.webm", 1), ("9.webm", 0)]
    test, _ = load_annotations("ssv2", tmp_path, tmp_path / "test.json", labels_file=tmp_path / "labels.json")
    assert test[0].label == -1
    assert ssv2_label("Moving [part] of [something]") == "Moving part of something"


@pytest.mark.parametrize("fold", [1, 2, 3])
def test_ucf101_folds(tmp_path, fold):
    s = tmp_path / "splits"
    s.mkdir()
    (s / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    (s / f"trainlist0{fold}.txt").write_text(
        f"Archery/v_Archery_g0{fold}_c01.avi 2\nApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n"
    )
    (s / f"testlist0{fold}.txt").write_text("Archery/v_Archery_g20_c01.avi\n")
    train, lm = load_annotations("ucf101", tmp_path / "videos", s, split="train", fold=fold)
    assert lm.names == ["ApplyEyeMakeup", "Archery"]
    assert [(r.path.parent.name, r.label) for r in train] == [("Archery", 1), ("ApplyEyeMakeup", 0)]
    assert train[0].path.name == f"v_Archery_g0{fold}_c01.avi"
    val, _ = load_annotations("ucf101", tmp_path / "videos", s, split="val", fold=fold)
    assert [(r.path.name, r.label) for r in val] == [("v_Archery_g20_c01.avi", 1)]


@pytest.mark.parametrize("fmt", ["ucf101", "hmdb51"])
@pytest.mark.parametrize(("fold", "split"), [(0, "train"), (4, "test"), (1, "val")])
def test_official_splits_reject_unknown_fold_or_split(tmp_path, fmt, fold, split):
    loader = load_ucf101 if fmt == "ucf101" else load_hmdb51
    with pytest.raises(ValueError, match=rf"{fmt.upper()} needs fold in 1\.\.3 and split train\|test"):
        loader(tmp_path, tmp_path, fold=fold, split=split)


def test_hmdb51_split_codes(tmp_path):
    s = tmp_path / "splits"
    s.mkdir()
    (s / "wave_test_split2.txt").write_text("w1.avi 1 \nw2.avi 2 \nw3.avi 0 \n")
    (s / "clap_test_split2.txt").write_text("c1.avi 2 \nc2.avi 1 \n")
    (s / "clap_test_split1.txt").write_text("other.avi 1 \n")
    train, lm = load_annotations("hmdb51", tmp_path, s, split="train", fold=2)
    test, _ = load_annotations("hmdb51", tmp_path, s, split="test", fold=2)
    assert lm.names == ["clap", "wave"]
    assert {(r.path.relative_to(tmp_path).as_posix(), r.label) for r in train} == {
        ("clap/c2.avi", 0),
        ("wave/w1.avi", 1),
    }
    assert {r.path.name for r in test} == {"c1.avi", "w2.avi"}


def test_generic_csv_with_ranges_names_and_no_labels(tmp_path):
    (tmp_path / "a.csv").write_text("path,label,start_frame,end_frame\nx.mp4,2,5,20\n/abs/y.mp4,0,,\n")
    records, lm = load_annotations("csv", tmp_path, tmp_path / "a.csv")
    assert lm is None
    assert records == [VideoRecord(tmp_path / "x.mp4", 2, 5, 20), VideoRecord(Path("/abs/y.mp4"), 0, None, None)]
    (tmp_path / "b.csv").write_text("path,label\nx.mp4,dog\ny.mp4,cat\n")
    records, lm = load_annotations("csv", tmp_path, tmp_path / "b.csv")
    assert lm.names == ["cat", "dog"] and [r.label for r in records] == [1, 0]
    (tmp_path / "c.csv").write_text("path\nx.mp4\n")
    assert load_annotations("csv", tmp_path, tmp_path / "c.csv")[0][0].label == -1
    (tmp_path / "d.csv").write_text("file,label\nx.mp4,1\n")
    with pytest.raises(ValueError, match="'path' column"):
        load_annotations("csv", tmp_path, tmp_path / "d.csv")
    # a blank label in a labelled file would train as label -1 and crash in cross_entropy much later
    for rows in ("x.mp4,dog\ny.mp4,\nz.mp4,cat\n", "x.mp4,dog\ny.mp4\nz.mp4,cat\n", "x.mp4,1\ny.mp4,\n"):
        (tmp_path / "e.csv").write_text("path,label\n" + rows)
        with pytest.raises(AnnotationError, match=r"e\.csv:3: row without a label"):
            load_annotations("csv", tmp_path, tmp_path / "e.csv")


def test_label_map_saved_and_reused(tmp_path):
    lm = LabelMap.from_labels(["b", "a", "c", "a"])
    lm.save(tmp_path / "labels.json")
    again = LabelMap.load(tmp_path / "labels.json")
    assert again == lm and again.names == ["a", "b", "c"]
    # A validation split with a subset of the classes keeps the training ids.
    (tmp_path / "val.csv").write_text("path,label\nx.mp4,c\n")
    records, used = load_annotations("csv", tmp_path, tmp_path / "val.csv", label_map=again)
    assert used is again and records[0].label == 2
    (tmp_path / "bad.csv").write_text("path,label\nx.mp4,zebra\n")
    with pytest.raises(KeyError, match="zebra.*bad.csv"):
        load_annotations("csv", tmp_path, tmp_path / "bad.csv", label_map=again)


def test_unknown_format_and_missing_annotation(tmp_path):
    with pytest.raises(ValueError, match="unknown annotation format"):
        load_annotations("youtube8m", tmp_path, tmp_path / "x")
    with pytest.raises(ValueError, match="needs an annotation file"):
        load_annotations("csv", tmp_path, None)


BOM = "\ufeff"


def _write_split_files(root: Path, bom: str) -> dict:
    """One small split of every format, each file starting with `bom`; returns `load_annotations` kwargs."""
    root.mkdir(parents=True, exist_ok=True)

    def write(name: str, text: str) -> Path:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        # Excel's "CSV UTF-8" also writes CRLF line ends.
        path.write_bytes((bom + text).replace("\n", "\r\n").encode("utf-8"))
        return path

    kin = write("kinetics.csv", "label,youtube_id,time_start,time_end\nabseiling,aaa,1,11\nbowling,bbb,2,12\n")
    lst = write("list.txt", "v/a.mp4 cat\nv/b.mp4 dog\n")
    csv = write("generic.csv", "path,label,start_frame\nx.mp4,dog,3\ny.mp4,cat,\n")
    labels = write("labels.json", json.dumps({"Holding something": "0", "Dropping something": "1"}))
    ssv2 = write("train.json", json.dumps([{"id": "4", "template": "Dropping [something]"}]))
    write("ucf/classInd.txt", "1 Archery\n2 Bowling\n")
    write("ucf/trainlist01.txt", "Bowling/v_Bowling_g01_c01.avi 2\nArchery/v_Archery_g01_c01.avi 1\n")
    write("hmdb/wave_test_split1.txt", "w1.avi 1 \nw2.avi 2 \n")
    write("hmdb/clap_test_split1.txt", "c1.avi 1 \n")
    return {
        "kinetics": {"annotation": kin},
        "list": {"annotation": lst},
        "csv": {"annotation": csv},
        "ssv2": {"annotation": ssv2, "labels_file": labels},
        "ucf101": {"annotation": root / "ucf"},
        "hmdb51": {"annotation": root / "hmdb"},
    }


@pytest.mark.parametrize("fmt", ["kinetics", "list", "csv", "ssv2", "ucf101", "hmdb51"])
def test_every_format_reads_a_bom_file_like_a_plain_one(tmp_path, fmt):
    plain = _write_split_files(tmp_path / "plain", "")[fmt]
    bom = _write_split_files(tmp_path / "bom", BOM)[fmt]
    want, want_map = load_annotations(fmt, tmp_path / "videos", split="train", **plain)
    got, got_map = load_annotations(fmt, tmp_path / "videos", split="train", **bom)
    assert got == want and got_map == want_map
    assert got and all(r.label >= 0 for r in got) and len(got_map) >= 2  # labelled, not silently -1
    assert not any(BOM in str(r.path) for r in got)


def test_label_map_file_with_bom(tmp_path):
    (tmp_path / "labels.json").write_text(BOM + json.dumps(["cat", "dog"]), encoding="utf-8")
    assert LabelMap.load(tmp_path / "labels.json").names == ["cat", "dog"]


def test_kinetics_labelled_split_needs_the_label_column(tmp_path):
    (tmp_path / "val.csv").write_text("class,youtube_id,time_start,time_end\nabseiling,aaa,1,11\n")
    with pytest.raises(AnnotationError, match=r"val\.csv:1: .*lacks column\(s\) \['label'\]"):
        load_annotations("kinetics", tmp_path, tmp_path / "val.csv", split="val")
    # The test split may be unlabelled.
    records, _ = load_annotations("kinetics", tmp_path, tmp_path / "val.csv", split="test")
    assert [r.label for r in records] == [-1]
    (tmp_path / "empty.csv").write_text("label,youtube_id,time_start,time_end\nabseiling,aaa,1,11\n,bbb,1,11\n")
    with pytest.raises(AnnotationError, match=r"empty\.csv:3: empty label"):
        load_annotations("kinetics", tmp_path, tmp_path / "empty.csv", split="train")


@pytest.mark.parametrize(
    ("fmt", "name", "text", "match"),
    [
        ("kinetics", "k.csv", "label,youtube_id,time_start,time_end\na,x,1,11\na,y,one,11\n", r"k\.csv:3: time_start"),
        ("csv", "c.csv", "path,label,start_frame\nx.mp4,1,0\ny.mp4,1,zero\n", r"c\.csv:3: start_frame"),
        ("csv", "e.csv", "", r"e\.csv: empty file"),
        ("csv", "r.csv", "path,label,start_frame,end_frame\nx.mp4,1,0,4\ny.mp4,1,10,5\n", r"r\.csv:3: frame range"),
        ("csv", "n.csv", "path,label,start_frame,end_frame\nx.mp4,1,-3,4\n", r"n\.csv:2: frame range \[-3, 4\)"),
        ("csv", "z.csv", "path,label,end_frame\nx.mp4,1,0\n", r"z\.csv:2: frame range \[None, 0\) is empty"),
        ("list", "l.txt", "a.mp4 1\njustapath\n", r"l\.txt:2: expected 'path label'"),
        ("ucf101", "classInd.txt", "1 Archery\nArchery 2\n", r"classInd\.txt:2: class id"),
        ("hmdb51", "wave_test_split1.txt", "w1.avi 1\nw2.avi train\n", r"wave_test_split1\.txt:2: expected"),
        ("ucf101", "classInd.txt", "1 Archery\n\n2\n", r"classInd\.txt:3: expected 'id ClassName', got '2'"),
        ("hmdb51", "wave_test_split1.txt", "w1.avi 1\nw2.avi 1 2\n", r"wave_test_split1\.txt:2: expected '<video>"),
        ("ssv2", "s.json", '[{"id": "1",}]', r"s\.json:1: invalid JSON"),
    ],
)
def test_unparsable_annotation_names_file_and_line(tmp_path, fmt, name, text, match):
    (tmp_path / name).write_text(text)
    (tmp_path / "trainlist01.txt").write_text("Archery/a.avi\n")
    (tmp_path / "labels.json").write_text("{}")
    annotation = tmp_path if fmt in ("ucf101", "hmdb51") else tmp_path / name
    with pytest.raises(AnnotationError, match=match):
        load_annotations(fmt, tmp_path, annotation, labels_file=tmp_path / "labels.json")
