"""The settings object is the one source of configuration, and the README documents all of it."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.settings import Settings
from gateway.docgen import settings_table

ROOT = Path(__file__).resolve().parents[2]


def test_readme_settings_table_is_current() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- settings:start -->\n(.*?)\n<!-- settings:end -->", readme, re.S)
    assert block, "README lost its settings table markers"
    assert block.group(1).strip() == settings_table().strip(), "run `clip-docgen settings-table`, paste into README"


def test_upstream_variable_names_are_honoured(monkeypatch) -> None:
    monkeypatch.setenv("CLIP_VERSION_ID", "ViT-B-32")
    monkeypatch.setenv("CLIP_MAX_BATCH_SIZE", "4")
    monkeypatch.setenv("WHITELISTED_DESTINATIONS_FOR_URL_INPUT", "a.example.com, b.example.com")
    monkeypatch.setenv("ALLOW_NON_HTTPS_URL_INPUT", "true")
    s = Settings()
    assert s.clip_version_id == "ViT-B-32" and s.max_images_per_request == 4
    assert s.url_allowlist == ["a.example.com", "b.example.com"] and s.allow_non_https_url_input


def test_defaults_match_upstream_where_upstream_has_the_knob() -> None:
    s = Settings(_env_file=None)
    assert s.clip_version_id == "ViT-B-16"
    assert s.max_images_per_request == 8 and s.max_prompts_per_compare == 8
    assert s.allow_url_input and not s.allow_non_https_url_input and not s.allow_url_input_without_fqdn
    assert not s.allow_url_to_non_global_addresses  # deliberate difference: refuse private targets


def test_keys_file_adds_keys(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("k1\n\n k2 \n")
    s = Settings(api_keys="k0", api_keys_file=keys)
    assert [k.get_secret_value() for k in s.accepted_keys()] == ["k0", "k1", "k2"]
