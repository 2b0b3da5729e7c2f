"""The code version recorded with what a job writes (releases, shard sets, runs)."""
from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def code_version() -> str:
    """Package version, plus the git commit (and .dirty) when run from a checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("telelake")
    except PackageNotFoundError:
        v = "0+unknown"
    try:
        git = ["git", "-C", str(REPO)]
        sha = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=10)
        if sha.returncode == 0:
            dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                   text=True, timeout=10).stdout.strip()
            v += f"+g{sha.stdout.strip()}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        pass
    return v
