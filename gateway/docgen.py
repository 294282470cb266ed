"""Documents generated from the code, committed, and compared by tests (so drift shows as a diff).

    clip-docgen settings-table      # the README's settings table (paste between its markers)
    clip-docgen openapi > docs/openapi.json

tests/unit/test_settings.py and tests/unit/test_openapi.py fail when the committed copies are stale.
"""

from __future__ import annotations

import argparse
import json

from pydantic.fields import FieldInfo

from gateway.settings import Settings


def env_names(name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    names = list(alias.choices) if alias is not None else [f"GATEWAY_{name.upper()}"]
    return " / ".join(f"`{n}`" for n in names)


def settings_table() -> str:
    rows = ["| Variable | Default | What it does |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default
        shown = ",".join(default) if isinstance(default, list) else default
        rows.append(
            f"| {env_names(name, field)} | `{shown if shown not in (None, '') else '(none)'}` | "
            f"{field.description or ''} |"
        )
    return "\n".join(rows)


def openapi_json() -> str:
    """The gateway's OpenAPI document, as served at /openapi.json (settings do not change it)."""
    from gateway.main import create_app  # the app pulls in every layer: only when asked

    return json.dumps(create_app(Settings(_env_file=None, log_json=False)).openapi(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="clip-docgen", description=__doc__.splitlines()[0])
    parser.add_argument("document", choices=["settings-table", "openapi"])
    args = parser.parse_args(argv)
    if args.document == "settings-table":
        print(settings_table())
    else:
        print(openapi_json(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
