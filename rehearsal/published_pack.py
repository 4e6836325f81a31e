"""The policy pack as `pulumi policy publish` ships it, built and started outside the repository.

`pulumi policy publish` archives the pack folder alone (pulumi/pulumi pkg/backend/httpstate/policypack.go,
`archive.TGZ(<pack dir>, ...)`), following symlinks and honouring .gitignore files
(sdk/go/common/util/archive/archive.go, addDirectoryToTar); a pack enforced from a Pulumi Cloud
policy group is unpacked under ~/.pulumi/policies/<org>/..., its virtualenv installed from its own
requirements.txt, and started with the CLI's command. `published_files` lists what the archive
holds (the tracked files of policies/, the `atlassian_cmk` symlink followed into the core's tracked
files); `main` (`make check-published-pack`) copies them to a temporary folder outside the
repository, builds the virtualenv from the copy's requirements.txt alone, starts the pack with
`pack_command`, and has it judge a revocation during live re-encryption. Exit 0 when it blocks it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
PACK_DIR = PROJECT_DIR / "policies"


def _tracked(prefix: str) -> list[tuple[str, int]]:
    """(path, git mode) of the tracked files under `prefix`, from the index."""
    listing = subprocess.run(
        ["git", "ls-files", "-s", "--", prefix], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    ).stdout
    entries = []
    for line in listing.splitlines():
        meta, path = line.split("\t", 1)
        entries.append((path, int(meta.split()[0], 8)))
    return entries


def published_files() -> dict[str, Path]:
    """Path inside the archive -> the file it is read from, as `pulumi policy publish` would archive.

    Symlinks are followed (a symlinked folder contributes its tracked files). Raises ValueError for
    a symlink that leads outside the repository's tracked files.
    """
    files: dict[str, Path] = {}
    for path, mode in _tracked("policies/"):
        inside = path.removeprefix("policies/")
        if mode == 0o120000:  # a symlink: archive.go stats the target and archives what it finds
            target = (PROJECT_DIR / path).resolve()
            relative = target.relative_to(PROJECT_DIR).as_posix()
            below = [(p, m) for p, m in _tracked(relative + "/") if m != 0o120000]
            if not below:
                raise ValueError(f"policies/{inside} -> {relative}: no tracked files to archive")
            for linked, _ in below:
                files[f"{inside}/{linked.removeprefix(relative + '/')}"] = PROJECT_DIR / linked
        else:
            files[inside] = PROJECT_DIR / path
    return files


def copy_published_pack(destination: Path) -> Path:
    """Write the published files under `destination` (a folder outside the repository); return it."""
    for inside, source in published_files().items():
        target = destination / inside
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return destination


def build_pack_venv(pack_dir: Path) -> str:
    """`<pack>/venv` from `<pack>/requirements.txt` alone (what `pulumi install` does); its python."""
    venv = pack_dir / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(pack_dir / "requirements.txt")], check=True)
    return str(venv / "bin" / "python")


def main() -> int:
    from rehearsal.pack_venv_check import judge_reencryption_revocation

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="published-pack-") as folder:
        pack = copy_published_pack(Path(folder) / "atlassian-cmk-guardrails")
        python = build_pack_venv(pack)
        blocking, policies = judge_reencryption_revocation(pack, python)
    print(
        f"published copy ({len(published_files())} files) from its own virtualenv: {policies} policies; "
        f"blocking: {blocking}; {time.monotonic() - started:.0f} s"
    )
    return 0 if blocking == ["no-revocation-during-reencryption"] else 1


if __name__ == "__main__":
    sys.exit(main())
