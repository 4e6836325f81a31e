"""The core's AWS I/O: boto3 clients, reads of the deployed keys, KMS actions, provisioning, CloudTrail.

Everything here talks to AWS; everything in `atlassian_cmk` outside this package is pure rules and
data that these modules fill in or act on.
"""
