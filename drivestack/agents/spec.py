"""Agents outside the registry, named `package.module:Class` or `path/to/file.py:Class`.

This is how tests and experiments plug in a driver without touching `AGENTS`: the spec is a
plain string, so it travels to worker processes and Ray tasks, which import the class there.
The class is built with no arguments and must implement the `Agent` protocol.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

from drivestack.errors import UserError


def is_spec(name: str) -> bool:
    return ":" in name


def absolute_spec(spec: str) -> str:
    """The same spec with a file path made absolute (workers may run in another directory)."""
    where, _, cls = spec.rpartition(":")
    return f"{Path(where).resolve()}:{cls}" if where.endswith(".py") else spec


def agent_class(spec: str) -> type:
    where, _, cls_name = spec.rpartition(":")
    if not where or not cls_name:
        raise UserError(f"--agent: {spec!r} is not `module:Class` or `file.py:Class`")
    if where.endswith(".py"):
        path = Path(where).resolve()
        if not path.exists():
            raise UserError(f"--agent: {spec!r}: no such file {where}")
        mod_name = f"_drivestack_agent_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
        module = sys.modules.get(mod_name)
        if module is None:
            loader = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(loader)
            sys.modules[mod_name] = module
            try:
                loader.loader.exec_module(module)
            except Exception as e:
                sys.modules.pop(mod_name, None)
                raise UserError(f"--agent: {spec!r}: importing {where} failed: {type(e).__name__}: {e}") from None
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as e:
            raise UserError(f"--agent: {spec!r}: cannot import {where} ({e})") from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise UserError(f"--agent: {spec!r}: {where} has no {cls_name}")
    missing = [a for a in ("sensors", "reset", "act") if not callable(getattr(cls, a, None))]
    if missing:
        raise UserError(f"--agent: {spec!r}: {cls_name} is not an Agent (no {', '.join(missing)})")
    return cls
