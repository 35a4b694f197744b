"""Imports flow one way: channels -> core -> retrieval / escalation; corpus -> retrieval; `common` under all."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from common.errors import ConfigError
from escalation.errors import EscalationError, PoolConfigError
from escalation.settings import EscalationConfigError
from retrieval.errors import RetrievalError

ROOT = Path(__file__).resolve().parents[1]
OURS = {"bot", "common", "corpus", "escalation", "retrieval"}
MAY_IMPORT = {
    "common": {"common"},
    "retrieval": {"common", "retrieval"},
    "escalation": {"common", "escalation"},
    "corpus": {"common", "corpus", "retrieval"},
    "bot": OURS,
}


def _imported_packages(path: Path) -> set[str]:
    """Our top-level packages a module imports (lazily inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names if name.split(".")[0] in OURS)
    return found


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_a_package_imports_only_the_packages_below_it(package: str) -> None:
    wrong = {str(path.relative_to(ROOT)): sorted(_imported_packages(path) - MAY_IMPORT[package])
             for path in sorted((ROOT / package).rglob("*.py"))}
    assert {path: names for path, names in wrong.items() if names} == {}


def test_a_configuration_error_is_one_kind_whichever_package_raises_it() -> None:
    # The command line catches ConfigError once; a Teams or mail setting is no retrieval problem.
    assert not issubclass(ConfigError, RetrievalError)
    assert issubclass(EscalationConfigError, ConfigError) and issubclass(EscalationConfigError, EscalationError)
    assert issubclass(PoolConfigError, ConfigError)
