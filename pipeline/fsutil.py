"""Small helpers over Beam FileSystems, so local paths and gs:// s3:// memory:// behave the same."""
from __future__ import annotations

import glob
import json
import os
from typing import Any

from apache_beam.io.filesystems import FileSystems


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
