"""Flags that several ``mbm`` subcommands share."""

from __future__ import annotations


def add_device_arguments(s) -> None:
    """``--device`` and ``--threads`` of a command that runs the engine."""
    s.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, ...")
    s.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
