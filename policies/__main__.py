"""The atlassian-cmk-guardrails policy pack, started by the Pulumi CLI from this folder.

The pack reuses the project's domain core (`atlassian_cmk`) and config reader (`components`)
rather than copies. In its own virtualenv they are not installed, so the repository this folder
lives in goes on the import path; where they are installed (the project's venv), nothing changes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

try:
    import atlassian_cmk  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if TYPE_CHECKING:
    from policies.guardrails.registry import serve
else:  # run as a script from policies/: the package is top-level here
    from guardrails.registry import serve

if __name__ == "__main__":
    serve()
