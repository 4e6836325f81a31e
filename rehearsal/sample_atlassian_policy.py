"""A SAMPLE of Atlassian's key-policy statements, for the demo, the rehearsal and the tests.

NOT Atlassian's statement: the real one comes from Atlassian's "Set up your AWS account and
create a KMS key policy" page or the enrollment ticket and is pasted into
`atlassian-cmk:atlassianKeyPolicy`. The sample's principal is in 279766244153, the account the
CMK pages name as Atlassian's own (its BYOK principal), never the customer's key account
(111122223333 in iam/*.json and the tests).
"""

from __future__ import annotations

import json
from typing import Any, Final

SAMPLE_ATLASSIAN_ACCOUNT: Final = "279766244153"
SAMPLE_ATLASSIAN_ROLE: Final = f"arn:aws:iam::{SAMPLE_ATLASSIAN_ACCOUNT}:role/SAMPLE-AtlassianCmkAccess"
SAMPLE_SID: Final = "SAMPLEAtlassianUseOfTheKey"

SAMPLE_ATLASSIAN_KEY_POLICY: Final[list[dict[str, Any]]] = [
    {
        "Sid": SAMPLE_SID,
        "Effect": "Allow",
        "Principal": {"AWS": SAMPLE_ATLASSIAN_ROLE},
        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
        "Resource": "*",
    }
]


def sample_config_value() -> str:
    """The sample as the engine hands structured config to a program: JSON text."""
    return json.dumps(SAMPLE_ATLASSIAN_KEY_POLICY)
