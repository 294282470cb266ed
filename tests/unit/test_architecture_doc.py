"""docs/architecture.md stays true: every package module it names exists, and every module is named."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
PACKAGES = ("gateway", "triton_clip", "clipbench")
NAMED = re.compile(r"`((?:%s)/[\w/]*(?:\.py)?)`" % "|".join(PACKAGES))


def named_paths() -> set[str]:
    return set(NAMED.findall(DOC.read_text()))


def test_every_named_module_exists() -> None:
    names = named_paths()
    assert len(names) > 20, "the pattern no longer finds the doc's module names"
    missing = sorted(n for n in names if not (ROOT / n).exists())
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"


def test_every_module_is_named() -> None:
    names = named_paths()
    modules = {
        str(p.relative_to(ROOT)) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if p.name != "__init__.py"
    }
    unnamed = sorted(m for m in modules if m not in names)
    assert not unnamed, f"add these modules to docs/architecture.md (which layer, what they own): {unnamed}"
