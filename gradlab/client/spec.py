"""Reading a job or sweep spec from a JSON or YAML file, or JSON on stdin.

yaml is imported inside the functions, so that importing this module costs nothing.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any


def _yaml_loader() -> type:
    """PyYAML's safe loader, also reading ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3``)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )
    return Loader


def read_spec(source: str) -> dict[str, Any]:
    """A JSON or YAML mapping from a file (YAML when it ends in .yaml/.yml), or JSON on stdin
    for ``-``. Raises ValueError with a sentence naming the file and what is wrong."""
    import yaml

    where = "stdin" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {where}: {exc.strerror or exc}.") from None
    try:
        if source != "-" and Path(source).suffix.lower() in (".yaml", ".yml"):
            data = yaml.load(text, Loader=_yaml_loader())  # a SafeLoader subclass
        else:
            data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where} is not valid JSON: {exc}.") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{where} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where} must hold a mapping (a JSON object), not {type(data).__name__}.")
    return data
