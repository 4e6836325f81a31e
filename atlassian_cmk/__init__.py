"""atlassian-cmk's domain core: realms, stack configuration, key policy, guard rules, impact text.

Nothing here imports Pulumi, gRPC or argparse: the Pulumi component, the policy pack and the
cmkctl CLI are thin adapters around these modules.
"""
