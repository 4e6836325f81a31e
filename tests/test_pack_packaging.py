"""The pack runs from what `pulumi policy publish` archives: its folder, its requirements, nothing else.

The full check (copy outside the repository, build the virtualenv from the copy's requirements,
start it with the CLI's command, judge a revocation) installs packages: `make check-published-pack`.
Here, cheaply: the archive's contents, every import they make, and the pins.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from rehearsal.policy_pack_client import ENGINE_ADDRESS, pack_command
from rehearsal.published_pack import PACK_DIR, PROJECT_DIR, published_files

PACK_REQUIREMENTS = PACK_DIR / "requirements.txt"


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


def distribution_closure(names: list[str]) -> set[str]:
    """The distributions `names` install, their dependencies included (from this venv's metadata)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        seen.add(name)
        for requirement in metadata.requires(name) or []:
            parsed = Requirement(requirement)
            if parsed.marker is None or parsed.marker.evaluate({"extra": ""}):
                todo.append(parsed.name)
    return seen


def top_level_imports(source: str) -> set[str]:
    """Top-level modules a file imports at run time (not under `if TYPE_CHECKING:`; not relative)."""
    tree = ast.parse(source)
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_archive_holds_the_pack_and_the_core_and_nothing_of_the_program() -> None:
    files = published_files()

    assert {"PulumiPolicy.yaml", "__main__.py", "requirements.txt", "guardrails/registry.py"} <= set(files)
    assert "atlassian_cmk/config.py" in files  # the symlinked core, followed
    assert files["atlassian_cmk/config.py"] == PROJECT_DIR / "atlassian_cmk" / "config.py"
    assert not any(name.startswith(("components/", "rehearsal/", "tests/", "venv/")) for name in files)


def test_every_import_of_the_archive_is_in_the_archive_the_stdlib_or_the_packs_requirements() -> None:
    files = published_files()
    own = {name.split("/")[0] for name in files if name.endswith(".py") and "/" in name}  # guardrails, atlassian_cmk
    installed = distribution_closure(list(pins(PACK_REQUIREMENTS)))
    provided = {
        module
        for module, dists in metadata.packages_distributions().items()
        if any(re.sub(r"[-_.]+", "-", d).lower() in installed for d in dists)
    }
    allowed = own | provided | set(sys.stdlib_module_names) | {"__future__"}

    strays = {
        (name, module)
        for name, source in files.items()
        if name.endswith(".py")
        for module in top_level_imports(source.read_text())
        if module not in allowed
    }

    assert strays == set(), "imports the published pack cannot satisfy"


def test_the_packs_pins_equal_the_projects_lock() -> None:
    lock = pins(PROJECT_DIR / "requirements.lock")
    pack = pins(PACK_REQUIREMENTS)

    assert {name: lock.get(name) for name in pack} == pack
    assert "google-re2" in pack  # the ticket pattern's linear-time engine


def test_the_harness_starts_the_pack_with_the_clis_command() -> None:
    # pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go, RunPlugin for kind analyzer.
    assert pack_command("/p/venv/bin/python", PACK_DIR) == [
        "/p/venv/bin/python",
        "-u",
        "-m",
        "pulumi.policy",
        ENGINE_ADDRESS,
        str(PACK_DIR.resolve()),
    ]
