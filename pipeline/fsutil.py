"""Small helpers over Beam FileSystems, so local paths and gs:// s3:// memory:// behave the same."""
from __future__ import annotations

import glob
import json
import os
import shutil
from typing import Any

from apache_beam.io.filesystems import FileSystems

from pipeline.errors import UserError
from trainer_bridge.userpaths import folder_unwritable, not_regular


def join(*parts: str) -> str:
    return FileSystems.join(*parts)


def write_bytes(path: str, data: bytes) -> None:
    with FileSystems.create(path) as fh:
        fh.write(data)


def write_json(path: str, obj: Any) -> None:
    write_bytes(path, (json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def read_json(path: str) -> Any:
    with FileSystems.open(path) as fh:
        return json.loads(fh.read().decode("utf-8"))


def match_files(pattern: str) -> dict[str, int]:
    """path -> size in bytes of every file a path or glob names, with Beam's matching quirks fixed: an existing
    file is taken literally (Beam reads `[1]` in `cur [1]/a.jsonl` as a character class), a bare relative glob
    (`*.jsonl`, which Beam matches against nothing) is matched in the current folder, and symlinks that cannot
    be read are kept (Beam left them out silently)."""
    if FileSystems.exists(pattern) and not os.path.isdir(pattern):
        return {pattern: FileSystems.get_filesystem(pattern).metadata(pattern).size_in_bytes}
    local = "://" not in pattern
    bare = local and not os.path.dirname(pattern)
    metas = FileSystems.match([os.path.join(".", pattern) if bare else pattern])[0].metadata_list
    found = {os.path.normpath(m.path) if bare else m.path: m.size_in_bytes for m in metas}
    if local:  # Beam drops what it cannot stat: a dangling symlink or a loop goes on, so its reader reports it
        found.update({path: 0 for path in glob.glob(pattern) if os.path.islink(path) and path not in found})
    return found


def list_files(pattern: str) -> list[str]:
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def remove_tree(folder: str | None) -> None:
    """A folder and everything under it, if there. An object store has no folders: `exists` is False for a
    prefix and deleting one deletes nothing (GCS and S3 delete only the object named, or one level under a
    trailing `/`), so there every object under the prefix is listed and deleted."""
    if not folder:
        return
    if "://" not in folder:  # by its path: Beam's delete reads `*`, `?` or `[` in it as a pattern (`_temporary-**`
        if os.path.isdir(folder) and not os.path.islink(folder):  # took a live run's files beside it)
            shutil.rmtree(folder)
        elif os.path.lexists(folder):
            os.remove(folder)
    elif files := list_files(folder.rstrip("/") + "/**"):
        FileSystems.delete(files)


STAGING_PREFIX = "_temporary-"  # a curate run's staging folders in OUT and index_out (pipeline/staging.py)


def staging_folders(folder: str) -> list[str]:
    """The `_temporary-*` folders directly in a local `folder` (links not followed), sorted; none if unreadable."""
    try:
        with os.scandir(folder) as entries:
            return sorted(e.path for e in entries if e.name.startswith(STAGING_PREFIX) and e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def regular_file(path: str) -> str:
    """`path`, refused in one line when it is local and not a regular file (opening a FIFO blocks forever)."""
    if what := not_regular(path):
        raise UserError(f"{path}: not a regular file ({what})")
    return path


GLOB_CHARACTERS = "*?["


def check_curate_finished(folder: str, option: str = "--input") -> None:
    """Refuse a curate output (or its `curated/`) without `_SUCCESS`: a run stopped or failed while committing
    leaves part of its documents there, and pack and the tokenizer took them as the corpus. The layout is
    known by its three destination folders; an object store, which has no folders, is not checked. A file or
    glob is checked by its folder."""
    if "://" in folder:
        return
    base = os.path.abspath(folder)  # normalized: `.` inside curated/, `curated/.`
    if any(c in base for c in GLOB_CHARACTERS) or base.endswith((".parquet", ".jsonl")):
        base = os.path.dirname(base)
        if any(c in base for c in GLOB_CHARACTERS):
            return
    roots = [base, os.path.dirname(base)] if os.path.basename(base) == "curated" else [base]
    for root in roots:
        if exists(join(root, "_SUCCESS")):
            continue
        if all(os.path.isdir(join(root, d)) for d in ("curated", "rejected", "quarantine")):
            raise UserError(f"{option} {folder}: {root} is a curate output without _SUCCESS (its run did not "
                            "finish, so it may hold part of the documents); run curate again")
        if staging := staging_folders(root):  # "no files found" did not say why
            raise UserError(f"{option} {folder}: {root} holds only {os.path.basename(staging[0])}, a curate run "
                            "that has not finished (or was killed); wait for it, or run curate again")


def check_output_folder(path: str, option: str = "--out") -> None:
    """Refuse, before any work, an output folder whose name Beam's file systems would read as a pattern (listing
    `run?/curated/*` to replace an old output matched `runA/curated/*` too, and deleted it), or a local one that
    cannot be made or written (`userpaths.folder_unwritable`)."""
    if found := sorted({c for c in path if c in GLOB_CHARACTERS}):
        raise UserError(f"{option} {path}: an output path cannot contain {' '.join(found)} (Beam's file systems "
                        "read them as a pattern)")
    if why := folder_unwritable(path):
        raise UserError(f"{option} {path}: {why}")
