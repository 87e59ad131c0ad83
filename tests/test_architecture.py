"""The domain imports only the standard library and eventsourcing.domain.

import-linter cannot forbid a submodule of an external package (it would have to forbid
all of eventsourcing), so this reads the domain's imports itself.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[1] / "libs" / "lodestone" / "domain"


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_domain_imports_only_the_standard_library_and_eventsourcing_domain() -> None:
    files = sorted(DOMAIN.glob("*.py"))
    assert len(files) >= 5
    foreign = {
        f"{path.name}: {module}"
        for path in files
        for module in imported_modules(path)
        if module.split(".")[0] not in sys.stdlib_module_names
        and module != "eventsourcing.domain"
        and not module.startswith("lodestone.domain")
    }
    assert foreign == set()


def test_the_integrity_module_stands_alone_on_the_standard_library() -> None:
    # Auditors run this one file without Lodestone installed: no project or third-party import.
    path = DOMAIN.parent / "integrity.py"
    foreign = {m for m in imported_modules(path) if m.split(".")[0] not in sys.stdlib_module_names}
    assert foreign == set()
