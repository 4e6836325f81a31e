"""Atlassian Cloud data-residency realms and the AWS regions that hold their keys.

One table, used by the program, the policy pack and cmkctl: a realm decides how many
keys exist and where, so every component must agree on it. Source: Atlassian support,
"Set up your AWS account and create a KMS key policy" (see ../shared/DOMAIN.md).
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final


@dataclass(frozen=True)
class Realm:
    """A realm: its config name, a human label, and its regions in Atlassian's order.

    The first region is where a multi-region primary key lives.
    """

    name: str
    label: str
    regions: tuple[str, ...]

    @property
    def is_dual_region(self) -> bool:
        return len(self.regions) == 2


REALMS: Final = MappingProxyType(
    {
        realm.name: realm
        for realm in (
            Realm("us", "United States", ("us-east-1", "us-west-2")),
            Realm("eu", "Europe", ("eu-central-1", "eu-west-1")),
            Realm("au", "Australia", ("ap-southeast-2",)),
            Realm("ca", "Canada", ("ca-central-1",)),
            Realm("de", "Germany", ("eu-central-1",)),
            Realm("in", "India", ("ap-south-1",)),
            Realm("jp", "Japan", ("ap-northeast-1",)),
            Realm("kr", "South Korea", ("ap-northeast-2",)),
            Realm("sg", "Singapore", ("ap-southeast-1",)),
        )
    }
)
"""Realms Atlassian documents, by the name used in `atlassian-cmk:realm`."""

EXPLICIT_REALM_NAME: Final = "explicit"
"""The realm name reported when the stack lists `regions` instead of naming a realm."""

MAX_REGIONS: Final = 2
"""Atlassian realms hold one or two regions; a third key would never be used."""


SUPPORTED_PARTITIONS: Final = ("aws",)
"""The AWS partitions whose regions a stack may use: the commercial one only. Atlassian Cloud and its
key-policy principals live there (every realm above is commercial), and a key in aws-cn or aws-us-gov
could never be granted to them; a realm's regions are therefore always in one partition."""


@functools.cache
def region_partitions() -> MappingProxyType[str, str]:
    """Every AWS region in the partition data botocore ships (botocore/data/partitions.json), to its
    partition (`aws`, `aws-cn`, `aws-us-gov`, ...).

    botocore is updated with each new region, so this is AWS's own list rather than a guess at
    the shape of a name; the `*-global` pseudo-regions are left out by each partition's own
    `regionRegex`.
    """
    data = _partition_data()
    return MappingProxyType(
        {
            region: partition["id"]
            for partition in data["partitions"]
            for region in partition["regions"]
            if re.fullmatch(partition["regionRegex"], region)
        }
    )


def _partition_data() -> Any:
    """The document `botocore.loaders.Loader().load_data("partitions")` returns, read the way it reads it.

    Loader searches ~/.aws/models, then botocore's own data folder, for `partitions.json`, then
    `partitions.json.gz`, and returns the first file found (botocore/loaders.py: Loader.__init__,
    _potential_locations, load_data_with_path, JSONFileLoader.load_file). Importing botocore.loaders
    pulls in botocore.compat and botocore.utils (urllib3, dateutil: about 0.25 s), which a process that
    only validates a stack's regions (the policy pack, cmkctl on a file) otherwise never needs.
    tests/test_partition_data.py keeps this equal to Loader's answer.
    """
    import botocore  # the package alone: its folder, not its HTTP stack

    folders = (os.path.join(os.path.expanduser("~"), ".aws", "models"), os.path.join(botocore.BOTOCORE_ROOT, "data"))
    for folder in folders:
        if not os.path.isdir(folder):
            continue
        for path, opener in ((f"{folder}/partitions.json", open), (f"{folder}/partitions.json.gz", gzip.open)):
            if os.path.isfile(path):
                with opener(path, "rb") as file:
                    return json.loads(file.read().decode("utf-8"))
    raise FileNotFoundError(f"botocore's partitions.json in none of {', '.join(folders)}")


def known_regions() -> frozenset[str]:
    """Every AWS region botocore knows, in any partition."""
    return frozenset(region_partitions())


def is_region_name(value: str) -> bool:
    """Whether `value` is a region AWS has, per botocore's partition data."""
    return value in region_partitions()


def region_problem(value: str) -> str | None:
    """Why `value` cannot hold a key of this product (unknown, or outside SUPPORTED_PARTITIONS), or None."""
    partition = region_partitions().get(value)
    supported = "/".join(SUPPORTED_PARTITIONS)
    if partition is None:
        return f"allowed: an AWS region of the {supported} partition, such as eu-west-2"
    if partition not in SUPPORTED_PARTITIONS:
        return (
            f"allowed: a region of the {supported} partition (commercial AWS, where Atlassian Cloud runs); "
            f"{value} is in {partition}"
        )
    return None


def realm_names() -> str:
    """The allowed realm names, for error messages."""
    return ", ".join(REALMS)
