"""A frozen dataclass record as plain JSON and its stable id.

Ground layer: the store names a run's folder by this id without knowing what a spec is
(``specs.to_dict``/``specs.run_id`` are these functions).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


def to_dict(record: Any) -> Any:
    """Plain JSON-able form of a record, nested records included, with their kind (class name).

    A class's ``late_fields`` (name -> default) are fields added after records were stored:
    left out while at their default, so every earlier record keeps its id.
    """
    if dataclasses.is_dataclass(record):
        late = getattr(record, "late_fields", {})
        out = {"kind": type(record).__name__}
        out.update({f.name: to_dict(getattr(record, f.name)) for f in dataclasses.fields(record)
                    if not (f.name in late and getattr(record, f.name) == late[f.name])})
        return out
    if isinstance(record, (list, tuple)):
        return [to_dict(v) for v in record]
    return record


def record_id(record: Any) -> str:
    """Stable 16-hex id: the same record gives the same folder on every machine."""
    text = json.dumps(to_dict(record), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
