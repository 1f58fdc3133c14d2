"""Annotation formats → `VideoRecord` lists, and the `LabelMap` that turns class names into ids.

Formats (`load_annotations(format=...)`):

- `folder`: `root/<class>/<video>` (folder per class; classes sorted by name).
- `kinetics`: Kinetics CSV `label,youtube_id,time_start,time_end[,split,...]`; videos found under `root` (any depth)
  as `<youtube_id>_<start:06d>_<end:06d>.<ext>` or `<youtube_id>.<ext>`.
- `list`: `path label` lines (space or tab separated; label an integer id or a class name).
- `ssv2`: Something-Something v2: `labels.json` (`{"Putting something on something": "123", ...}`) and a split JSON
  (`[{"id": "1", "template": "Putting [something] on [something]", ...}]`); template brackets are stripped.
  Videos `root/<id>.webm`. The test split has no labels (`label = -1`).
- `ucf101`: `classInd.txt` + `trainlist0{fold}.txt` / `testlist0{fold}.txt`, videos `root/<Class>/<file>.avi`.
- `hmdb51`: `<class>_test_split{fold}.txt` files (`<file> 1|2|0`: train, test, unused), videos `root/<class>/<file>`.
- `csv`: generic CSV with header `path,label[,start_frame,end_frame]`; `label` may be omitted (unlabelled, e.g.
  prediction sets). Frame ranges are `[start_frame, end_frame)`. Relative paths are relative to `root`.

Every annotation file is read as UTF-8 with an optional byte-order mark (what Excel's "CSV UTF-8" and Notepad
write), and a line that cannot be parsed raises `AnnotationError` naming the file and line. A labelled split
(`train`, `val`) of a format whose labels live in a column (`kinetics`) must have that column.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp")
FORMATS = ("folder", "kinetics", "list", "ssv2", "ucf101", "hmdb51", "csv")
FOLDER_FORMATS = ("folder", "ucf101", "hmdb51")  # read from the folder layout (or split lists) alone, no file per split


class EmptyDatasetError(ValueError):
    """No usable sample: no annotation rows, no video files in a folder, or none left after filtering."""


def _no_videos(folder: Path, layout: str) -> EmptyDatasetError:
    return EmptyDatasetError(
        f"no video files found in {folder} ({layout}; looked for {' '.join(VIDEO_EXTENSIONS)}, any case)"
    )


class AnnotationError(ValueError):
    """An annotation file cannot be parsed; the message names the file (and the line, when there is one).

    Args:
        path: The annotation file.
        reason: What is wrong.
        line: 1-based line number, or None for the file as a whole.
    """

    def __init__(self, path: str | os.PathLike, reason: str, line: int | None = None) -> None:
        self.path, self.line, self.reason = str(path), line, reason
        super().__init__(f"{self.path}{'' if line is None else f':{line}'}: {reason}")


def read_annotation_text(path: str | os.PathLike) -> str:
    """Text of an annotation file: UTF-8, a leading byte-order mark dropped, line endings normalised.

    Args:
        path: The file.

    Returns:
        Its text.

    Raises:
        FileNotFoundError: The file does not exist (the message names it).
        AnnotationError: It is not UTF-8 text.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist")
    try:
        # utf-8-sig drops the BOM Excel and Notepad write; without it the first header reads "\ufefflabel".
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise AnnotationError(path, f"not UTF-8 text ({err.reason} at byte {err.start})", line) from None


def _read_json(path: str | os.PathLike):
    try:
        return json.loads(read_annotation_text(path))
    except json.JSONDecodeError as err:
        raise AnnotationError(path, f"invalid JSON ({err.msg}, column {err.colno})", err.lineno) from None


def _int(text: str, path: str | os.PathLike, line: int, what: str, seconds: bool = False) -> int:
    try:
        return int(float(text)) if seconds else int(text)
    except (TypeError, ValueError):
        raise AnnotationError(path, f"{what} must be a number, got {text!r}", line) from None


def _dict_rows(path: str | os.PathLike) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and `(line, row)` pairs of a CSV file (BOM-tolerant); header names are stripped."""
    reader = csv.reader(io.StringIO(read_annotation_text(path), newline=""))
    try:
        header = [h.strip() for h in next(reader)]
        rows = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(header):
                raise AnnotationError(path, f"{len(values)} fields, the header has {len(header)}", reader.line_num)
            rows.append((reader.line_num, dict(zip(header, values, strict=False))))
    except StopIteration:
        raise AnnotationError(path, "empty file (no header row)") from None
    except csv.Error as err:
        raise AnnotationError(path, f"bad CSV ({err})", reader.line_num) from None
    return header, rows


@dataclass(frozen=True)
class VideoRecord:
    """One annotated video (or a frame range of one).

    Attributes:
        path: Video file.
        label: Class id, or -1 when unlabelled.
        start_frame: First frame of the range (None: 0).
        end_frame: One past the last frame of the range (None: the end of the video).
    """

    path: Path
    label: int = -1
    start_frame: int | None = None
    end_frame: int | None = None


class LabelMap:
    """Ordered class names; a class id is its position. Saved as a JSON list and reused across splits and runs.

    Args:
        names: Class names in id order; must be unique.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.names = [str(n) for n in names]
        self._ids = {n: i for i, n in enumerate(self.names)}
        if len(self._ids) != len(self.names):
            raise ValueError("duplicate class names in label map")

    def __len__(self) -> int:
        return len(self.names)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelMap) and self.names == other.names

    def __repr__(self) -> str:
        return f"LabelMap({len(self)} classes)"

    def id(self, name: str, where: str = "") -> int:
        """Id of a class name; a KeyError names the class and where it came from."""
        try:
            return self._ids[name]
        except KeyError:
            raise KeyError(
                f"unknown class {name!r}{' in ' + where if where else ''} (label map has {len(self)})"
            ) from None

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> LabelMap:
        """Label map of the distinct labels, sorted by name."""
        return cls(sorted(set(labels)))

    def save(self, path: str | os.PathLike) -> None:
        """Writes the names as a JSON list."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.names, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> LabelMap:
        """Reads a JSON list of names (or a `{name: id}` object, as SSv2's labels file)."""
        data = _read_json(path)
        if isinstance(data, dict):
            return cls(name for name, _ in sorted(data.items(), key=lambda kv: int(kv[1])))
        return cls(data)


def _resolve(root: Path, rel: str) -> Path:
    p = Path(rel)
    return p if p.is_absolute() else root / p


def _labels_to_records(
    rows: list[tuple[Path, str | None, int | None, int | None]], label_map: LabelMap | None, where: str
) -> tuple[list[VideoRecord], LabelMap]:
    if label_map is None:
        label_map = LabelMap.from_labels(r[1] for r in rows if r[1] is not None)
    records = [VideoRecord(p, -1 if lab is None else label_map.id(lab, where), s, e) for p, lab, s, e in rows]
    return records, label_map


def load_folder(
    root: str | os.PathLike, label_map: LabelMap | None = None, extensions: tuple[str, ...] = VIDEO_EXTENSIONS
) -> tuple[list[VideoRecord], LabelMap]:
    """Folder per class: `root/<class>/<video>`.

    Args:
        root: Dataset folder.
        label_map: Existing label map to reuse (None: the sorted folder names).
        extensions: Video file suffixes to keep.

    Returns:
        Records sorted by path, and the label map.

    Raises:
        FileNotFoundError: `root` does not exist.
        EmptyDatasetError: No video file in any class folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    rows = []
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    for class_dir in class_dirs:
        for f in sorted(class_dir.rglob("*")):
            if f.suffix.lower() in extensions and f.is_file():
                rows.append((f, class_dir.name, None, None))
    if not rows:
        raise _no_videos(root, "labelled folder format: one sub-folder per class")
    # Every class folder is a class, even an empty one, so ids do not shift when a folder is emptied.
    return _labels_to_records(rows, label_map or LabelMap(d.name for d in class_dirs), str(root))


def _index_videos(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTENSIONS:
                found.setdefault(stem, Path(dirpath) / name)
    return found


def load_kinetics_csv(
    csv_path: str | os.PathLike,
    root: str | os.PathLike,
    label_map: LabelMap | None = None,
    labelled: bool = False,
) -> tuple[list[VideoRecord], LabelMap]:
    """Kinetics CSV (`label,youtube_id,time_start,time_end,...`); rows whose video is absent keep a missing path.

    Args:
        csv_path: Annotation CSV.
        root: Folder holding the videos (searched recursively).
        label_map: Label map to reuse (None: sorted labels of this CSV).
        labelled: The split must carry labels (train / val): a missing `label` column is an error instead of
            an unlabelled split.

    Returns:
        Records, and the label map.

    Raises:
        AnnotationError: A required column is missing or a time is not a number (file and line named).
    """
    root = Path(root)
    header, table = _dict_rows(csv_path)
    need = ["youtube_id", "time_start", "time_end"] + (["label"] if labelled else [])
    missing = [c for c in need if c not in header]
    if missing:
        raise AnnotationError(csv_path, f"header {header} lacks column(s) {missing}", 1)
    videos = _index_videos(root)
    rows = []
    for line, row in table:
        yid = (row.get("youtube_id") or "").strip()
        if not yid:
            raise AnnotationError(csv_path, "empty youtube_id", line)
        start = _int(row.get("time_start"), csv_path, line, "time_start", seconds=True)
        end = _int(row.get("time_end"), csv_path, line, "time_end", seconds=True)
        stem = f"{yid}_{start:06d}_{end:06d}"
        path = videos.get(stem) or videos.get(yid) or root / (stem + ".mp4")
        label = (row.get("label") or "").strip() or None
        if labelled and label is None:
            raise AnnotationError(csv_path, "empty label in a labelled split", line)
        rows.append((path, label, None, None))
    return _labels_to_records(rows, label_map, str(csv_path))


def load_path_label_list(
    list_path: str | os.PathLike, root: str | os.PathLike, label_map: LabelMap | None = None
) -> tuple[list[VideoRecord], LabelMap | None]:
    """`path label` lines; integer labels are ids, other labels class names.

    Args:
        list_path: The list file.
        root: Folder relative paths are resolved against.
        label_map: Label map to reuse for named labels.

    Returns:
        Records, and the label map (None when all labels are integer ids and none was given).
    """
    root = Path(root)
    rows = []
    for n, line in enumerate(read_annotation_text(list_path).splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2:
            raise AnnotationError(list_path, f"expected 'path label', got {line!r}", n)
        rows.append((_resolve(root, parts[0]), parts[1], None, None))
    if all(re.fullmatch(r"-?\d+", r[1]) for r in rows):
        return [VideoRecord(p, int(lab)) for p, lab, _, _ in rows], label_map
    return _labels_to_records(rows, label_map, str(list_path))


def ssv2_label(template: str) -> str:
    """Class name of an SSv2 template: `"Putting [something] on [something]"` → `"Putting something on something"`."""
    return template.replace("[", "").replace("]", "")


def load_ssv2(
    labels_json: str | os.PathLike, split_json: str | os.PathLike, root: str | os.PathLike, extension: str = ".webm"
) -> tuple[list[VideoRecord], LabelMap]:
    """Something-Something v2 split.

    Args:
        labels_json: `labels.json` mapping class names to ids.
        split_json: `train.json`, `validation.json` or `test.json`.
        root: Folder with `<id>.webm`.
        extension: Video suffix.

    Returns:
        Records, and the label map of `labels_json`.
    """
    label_map = LabelMap.load(labels_json)
    root = Path(root)
    records = []
    items = _read_json(split_json)
    if not isinstance(items, list):
        raise AnnotationError(split_json, f"expected a JSON list of videos, got {type(items).__name__}")
    for n, item in enumerate(items):
        if not isinstance(item, dict) or "id" not in item:
            raise AnnotationError(split_json, f"entry {n} has no 'id': {str(item)[:80]}")
        template = item.get("template")
        label = label_map.id(ssv2_label(template), str(split_json)) if template else -1
        records.append(VideoRecord(root / f"{item['id']}{extension}", label))
    return records, label_map


def _check_fold(dataset: str, fold: int, split: str) -> None:
    """UCF101 and HMDB51 ship three official folds, each a train and a test list."""
    if fold not in (1, 2, 3) or split not in ("train", "test"):
        raise ValueError(f"{dataset} needs fold in 1..3 and split train|test, got fold={fold} split={split!r}")


def _split_file_rows(
    path: Path, form: str, valid: Callable[[list[str]], bool] | None = None
) -> Iterator[tuple[int, list[str]]]:
    """`(line number, fields)` of each non-blank line of a whitespace-separated split file (UCF101, HMDB51).

    Args:
        path: The split file.
        form: The expected line, for the error message (e.g. `"id ClassName"`).
        valid: Whether a line's fields are well formed (None: any non-blank line is).

    Raises:
        AnnotationError: A line is not `valid` (file and line named).
    """
    for n, line in enumerate(read_annotation_text(path).splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if valid is not None and not valid(fields):
            raise AnnotationError(path, f"expected {form!r}, got {line!r}", n)
        yield n, fields


def load_ucf101(
    split_dir: str | os.PathLike, root: str | os.PathLike, fold: int = 1, split: str = "train"
) -> tuple[list[VideoRecord], LabelMap]:
    """UCF101 official split (`classInd.txt`, `trainlist0N.txt`, `testlist0N.txt`).

    Args:
        split_dir: Folder of the split files.
        root: Folder with `<Class>/<video>.avi`.
        fold: 1, 2 or 3.
        split: `"train"` or `"test"`.

    Returns:
        Records, and the label map in `classInd.txt` order.
    """
    _check_fold("UCF101", fold, split)
    split_dir, root = Path(split_dir), Path(root)
    class_ind = split_dir / "classInd.txt"
    names = [
        (_int(class_id, class_ind, n, "class id"), name)
        for n, (class_id, name) in _split_file_rows(class_ind, "id ClassName", lambda f: len(f) == 2)
    ]
    label_map = LabelMap(n for _, n in sorted(names))
    list_file = split_dir / f"{split}list0{fold}.txt"
    records = [
        VideoRecord(root / rel, label_map.id(rel.split("/")[0], f"{list_file}:{n}"))
        for n, (rel, *_) in _split_file_rows(list_file, "<Class>/<video> [label]")
    ]
    return records, label_map


def load_hmdb51(
    split_dir: str | os.PathLike, root: str | os.PathLike, fold: int = 1, split: str = "train"
) -> tuple[list[VideoRecord], LabelMap]:
    """HMDB51 official split (`<class>_test_split<fold>.txt`: 1 train, 2 test, 0 unused).

    Args:
        split_dir: Folder of the split files.
        root: Folder with `<class>/<video>.avi`.
        fold: 1, 2 or 3.
        split: `"train"` or `"test"`.

    Returns:
        Records, and the label map (sorted class names).
    """
    _check_fold("HMDB51", fold, split)
    split_dir, root = Path(split_dir), Path(root)
    files = sorted(split_dir.glob(f"*_test_split{fold}.txt"))
    if not files:
        raise FileNotFoundError(f"no *_test_split{fold}.txt files in {split_dir}")
    label_map = LabelMap(f.name[: -len(f"_test_split{fold}.txt")] for f in files)
    want = "1" if split == "train" else "2"
    records = []
    for f, name in zip(files, label_map.names, strict=True):
        for _, (video, use) in _split_file_rows(f, "<video> 0|1|2", lambda x: len(x) == 2 and x[1] in ("0", "1", "2")):
            if use == want:
                records.append(VideoRecord(root / name / video, label_map.id(name)))
    return records, label_map


def load_csv(
    csv_path: str | os.PathLike, root: str | os.PathLike | None = None, label_map: LabelMap | None = None
) -> tuple[list[VideoRecord], LabelMap | None]:
    """Generic CSV `path,label[,start_frame,end_frame]` with a header row.

    Args:
        csv_path: The CSV.
        root: Folder relative paths are resolved against (None: the CSV's folder).
        label_map: Label map to reuse for named labels.

    Returns:
        Records, and the label map (None for integer or absent labels when none was given).
    """
    root = Path(csv_path).parent if root is None else Path(root)
    rows, lines = [], []
    header, table = _dict_rows(csv_path)
    if "path" not in header:
        raise AnnotationError(csv_path, f"needs a header with a 'path' column, got {header}", 1)
    for line, row in table:
        if not (row.get("path") or "").strip():
            raise AnnotationError(csv_path, "empty path", line)
        s, e = (row.get("start_frame") or "").strip(), (row.get("end_frame") or "").strip()
        s = _int(s, csv_path, line, "start_frame") if s else None
        e = _int(e, csv_path, line, "end_frame") if e else None
        if (s is not None and s < 0) or (e is not None and e <= (s or 0)):
            raise AnnotationError(
                csv_path, f"frame range [{s}, {e}) is empty or negative (need 0 <= start_frame < end_frame)", line
            )
        rows.append((_resolve(root, row["path"]), (row.get("label") or "").strip() or None, s, e))
        lines.append(line)
    labels = [r[1] for r in rows if r[1] is not None]
    if labels and len(labels) < len(rows):  # a partly labelled file: the blanks would train as label -1
        first = next(line for line, r in zip(lines, rows, strict=True) if r[1] is None)
        raise AnnotationError(
            csv_path, f"row without a label in a labelled file ({len(rows) - len(labels)} such rows)", first
        )
    if all(re.fullmatch(r"-?\d+", lab) for lab in labels):
        return [VideoRecord(p, -1 if lab is None else int(lab), s, e) for p, lab, s, e in rows], label_map
    return _labels_to_records(rows, label_map, str(csv_path))


def load_annotations(
    format: str,
    root: str | os.PathLike,
    annotation: str | os.PathLike | None = None,
    split: str = "train",
    labels_file: str | os.PathLike | None = None,
    fold: int = 1,
    label_map: LabelMap | None = None,
) -> tuple[list[VideoRecord], LabelMap | None]:
    """Loads one split in any supported format (see the module docstring).

    Args:
        format: One of `FORMATS`.
        root: Video folder.
        annotation: Annotation file (`kinetics`, `list`, `ssv2`, `csv`) or split-file folder (`ucf101`, `hmdb51`;
            default `root`). Unused for `folder`, where `root/<split>` is read if it exists (`test` falls back to
            `val`), else `root` when it has no split folders at all.
        split: `train`, `val`/`validation` or `test` (UCF101/HMDB51 map `val` to `test`).
        labels_file: SSv2 `labels.json`.
        fold: UCF101/HMDB51 fold.
        label_map: Label map to reuse.

    Returns:
        Records, and the label map.
    """
    root = Path(root)
    if format == "folder":
        aliases = {"val": ("val", "validation"), "validation": ("validation", "val"), "test": ("test", "val")}
        for name in aliases.get(split, (split,)):
            if (root / name).is_dir():
                return load_folder(root / name, label_map)
        if any((root / name).is_dir() for name in ("train", "val", "validation", "test")):
            raise FileNotFoundError(f"{root} has split folders but none for split {split!r}")
        return load_folder(root, label_map)
    if format in ("ucf101", "hmdb51"):
        loader = load_ucf101 if format == "ucf101" else load_hmdb51
        records, found = loader(annotation or root, root, fold, "train" if split == "train" else "test")
        return records, found
    if annotation is None:  # every format not in FOLDER_FORMATS
        raise ValueError(f"format {format!r} needs an annotation file for split {split!r}")
    if format == "kinetics":
        return load_kinetics_csv(annotation, root, label_map, labelled=split != "test")
    if format == "list":
        return load_path_label_list(annotation, root, label_map)
    if format == "ssv2":
        if labels_file is None:
            raise ValueError("format 'ssv2' needs labels_file (labels.json)")
        return load_ssv2(labels_file, annotation, root)
    if format == "csv":
        return load_csv(annotation, root, label_map)
    raise ValueError(f"unknown annotation format {format!r}; choose one of {FORMATS}")


def load_unlabelled(
    format: str,
    root: str | os.PathLike,
    annotation: str | os.PathLike | None = None,
    split: str = "train",
    labels_file: str | os.PathLike | None = None,
    fold: int = 1,
) -> list[VideoRecord]:
    """Loads one split without labels (every record's label is -1), for self-supervised pretraining.

    For `folder`: every video under `root/<split>` if it exists (`val`/`test` as in `load_annotations`), else under
    `root` when it has no split folders at all, at any depth (class folders optional, no annotation file). Any other
    format reads its annotation file as `load_annotations` does and drops the labels.

    Raises:
        FileNotFoundError: `root` does not exist, or has split folders but none for `split`.
        EmptyDatasetError: `format="folder"` and the folder holds no video file.
    """
    if format != "folder":
        records, _ = load_annotations(format, root, annotation, split, labels_file, fold)
        return [VideoRecord(r.path, -1, r.start_frame, r.end_frame) for r in records]
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"video folder {root} does not exist")
    aliases = {"val": ("val", "validation"), "validation": ("validation", "val"), "test": ("test", "val")}
    folder = next((root / n for n in aliases.get(split, (split,)) if (root / n).is_dir()), None)
    if folder is None:
        if any((root / name).is_dir() for name in ("train", "val", "validation", "test")):
            raise FileNotFoundError(f"{root} has split folders but none for split {split!r}")
        folder = root
    files = sorted(f for f in folder.rglob("*") if f.suffix.lower() in VIDEO_EXTENSIONS and f.is_file())
    if not files:
        raise _no_videos(folder, "unlabelled folder format: searched at any depth")
    return [VideoRecord(f) for f in files]
