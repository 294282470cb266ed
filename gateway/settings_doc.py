"""The README's settings table, generated from the settings class (tests/unit/test_settings.py keeps it current).

Regenerate: `clip-settings-table` (or `python -m gateway.settings_doc`) and paste between the README's markers.
"""

from __future__ import annotations

from pydantic.fields import FieldInfo

from gateway.settings import Settings


def env_names(name: str, field: FieldInfo) -> str:
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


def main() -> int:
    print(table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
