"""The core reads botocore's partition data as botocore's own Loader does, without importing its HTTP stack."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.loaders import Loader

from atlassian_cmk import realms


def test_the_partition_data_is_what_botocores_loader_returns() -> None:
    assert realms._partition_data() == Loader().load_data("partitions")


@pytest.mark.parametrize("name", ["partitions.json", "partitions.json.gz"])
def test_a_partitions_file_in_aws_models_wins_as_with_botocores_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """~/.aws/models is searched before botocore's folder, .json before .json.gz (botocore/loaders.py)."""
    models = tmp_path / ".aws" / "models"
    models.mkdir(parents=True)
    document = {"partitions": [{"id": "aws", "regionRegex": "^zz-[a-z]+-\\d+$", "regions": {"zz-test-1": {}}}]}
    payload = json.dumps(document).encode()
    (models / name).write_bytes(gzip.compress(payload) if name.endswith(".gz") else payload)
    monkeypatch.setenv("HOME", str(tmp_path))
    # Loader fixes its customer folder when botocore.loaders is imported; point it at the same place.
    monkeypatch.setattr(Loader, "CUSTOMER_DATA_PATH", str(models))
    assert realms._partition_data() == Loader().load_data("partitions") == document


def test_validating_regions_imports_no_botocore_http_stack() -> None:
    """The pack and cmkctl check a stack's regions at start; boto3 and botocore's loaders wait for a live read."""
    code = (
        "import sys, atlassian_cmk.realms as r; assert r.region_problem('eu-west-2') is None; "
        "print(sorted(m for m in ('boto3', 'botocore.loaders', 'botocore.session') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
