"""The atlassian-cmk-guardrails policy pack, started by the Pulumi CLI from this folder.

The CLI runs `venv/bin/python -u -m pulumi.policy <engine address> <absolute pack dir>` with this
folder as working directory (pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go,
RunPlugin); `pulumi.policy` then runs this file with `runpy.run_path(<pack dir>)`, which puts the
pack folder first on sys.path (sdk/python/lib/pulumi/policy/__main__.py). So `guardrails` and the
domain core, `atlassian_cmk` (a symlink to ../atlassian_cmk that `pulumi policy publish` archives
as a folder: sdk/go/common/util/archive/archive.go follows symlinks), import from here alone: the
pack runs the same from the repository and from a published copy in ~/.pulumi/policies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from policies.guardrails.registry import serve
else:  # run from policies/: the package is top-level here
    from guardrails.registry import serve

if __name__ == "__main__":
    serve()
