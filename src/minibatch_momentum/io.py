"""Atomic file output: an interrupted run never leaves a half file behind.

Snakemake takes any existing output for done, so every writer here goes through
:func:`atomic_path`: write to a temporary file in the target's folder, then rename.
A writer killed between the two (SIGKILL runs no cleanup) leaves its temporary file;
the next write of the same target removes it.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp creates 0600 files; give the result the permissions open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary siblings ``.NAME.<random>.tmp`` that an earlier, killed write
    of ``path`` left behind; returns what was removed.

    Only names :func:`atomic_path` makes are touched. A target has one writer at a time
    (one Snakemake job per output), so a sibling seen here is never another's live file.
    """
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[A-Za-z0-9_]+\.tmp")
    removed = []
    for p in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if pattern.fullmatch(p.name):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _to_builtin(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialize {type(obj).__name__} to JSON")


def dumps(obj: Any) -> str:
    """JSON text with numpy scalars and arrays converted; infinities written as strings."""
    return json.dumps(_finite_or_str(obj), indent=2, sort_keys=False, default=_to_builtin) + "\n"


def _finite_or_str(obj: Any) -> Any:
    # Strict JSON has no Infinity/NaN; keep them readable and round-trippable.
    if isinstance(obj, float | np.floating):
        if np.isnan(obj):
            return "nan"
        if np.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return float(obj)
    if isinstance(obj, dict):
        return {str(k): _finite_or_str(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite_or_str(v) for v in obj]
    return obj


def write_json(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(dumps(obj))


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_parquet(df, path: str | os.PathLike, meta: dict) -> None:
    """Atomic Parquet write with ``meta`` (JSON) and the package version in the schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from minibatch_momentum.version import __version__

    table = pa.Table.from_pandas(df, preserve_index=False)
    info = {"mbm": dumps({**meta, "package_version": __version__})}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **info})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_metadata(path: str | os.PathLike) -> dict:
    """The ``meta`` a :func:`write_parquet` stored (with ``package_version``)."""
    import pyarrow.parquet as pq

    return json.loads(pq.read_schema(path).metadata[b"mbm"])


def log(msg: str) -> None:
    """A progress line on stderr, time-stamped (jobs tee it to their log and the console)."""
    import sys
    import time

    print(f"[mbm {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_spec(text: str) -> dict:
    """A command's ``--spec``: a JSON object, or a one-line error naming ``--spec``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--spec is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("--spec must be a JSON object")
    return value
