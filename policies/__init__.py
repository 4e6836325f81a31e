"""The atlassian-cmk-guardrails policy pack.

The Pulumi CLI runs `__main__.py` as a script from this folder, so at run time `guardrails` is a
top-level package. This file only makes the folder a package for type checkers and tests, which
see the same code as `policies.guardrails`; the pack's modules import one another relatively so
both views work.
"""
