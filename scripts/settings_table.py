#!/usr/bin/env python3
"""Print the gateway's settings as the README's markdown table (kept in sync by tests/unit/test_settings.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.settings import Settings  # noqa: E402


def env_names(name: str, field) -> str:  # noqa: ANN001
    alias = field.validation_alias
    names = list(alias.choices) if alias is not None else [f"GATEWAY_{name.upper()}"]
    return " / ".join(f"`{n}`" for n in names)


def table() -> str:
    rows = ["| Variable | Default | What it does |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default
        shown = ",".join(default) if isinstance(default, list) else default
        rows.append(f"| {env_names(name, field)} | `{shown if shown not in (None, '') else '(none)'}` | "
                    f"{field.description or ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
