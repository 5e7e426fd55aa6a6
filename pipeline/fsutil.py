"""Small helpers over Beam FileSystems, so local paths and gs:// s3:// memory:// behave the same."""
from __future__ import annotations

import json
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


def list_files(pattern: str) -> list[str]:
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


def exists(path: str) -> bool:
    return FileSystems.exists(path)
