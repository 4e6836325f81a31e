"""The pack's policies: one module per area, assembled by `registry`.

Every rule a policy applies comes from the domain core (`atlassian_cmk`); these modules only
adapt it to CrossGuard: read the resource's inputs, read the deployed state once, report.
"""
