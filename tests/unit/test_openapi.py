"""The API contract as a committed file: any change to routes, schemas or docs strings shows up as a diff.

Regenerate after a deliberate change (and review the diff): `.venv/bin/clip-docgen openapi > docs/openapi.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

from gateway.docgen import openapi_json

SNAPSHOT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
REGENERATE = "`.venv/bin/clip-docgen openapi > docs/openapi.json`"


def test_openapi_matches_the_committed_snapshot() -> None:
    current = json.loads(openapi_json())
    committed = json.loads(SNAPSHOT.read_text())
    assert current["paths"].keys() == committed["paths"].keys(), f"routes changed: regenerate with {REGENERATE}"
    assert current == committed, f"the OpenAPI contract changed: review, then regenerate with {REGENERATE}"


def test_snapshot_has_the_roboflow_routes_and_bodies() -> None:
    spec = json.loads(SNAPSHOT.read_text())
    for route in ("/clip/embed_image", "/clip/embed_text", "/clip/compare"):
        body = spec["paths"][route]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert body.rsplit("/", 1)[1] in spec["components"]["schemas"]
    assert "/metrics" not in spec["paths"]  # include_in_schema=False
