"""Build the zip that spark-submit ships to executors with --py-files."""
from __future__ import annotations

import zipfile
from pathlib import Path

PACKAGES = ("jobs", "pipelines", "schemas", "training", "eval")


def project_root() -> Path:
    return Path(__file__).resolve().parents[1]


def build_pyfiles_zip(out: Path) -> Path:
    """Zip the project's Python packages (and the demo corpus) into `out`."""
    root = project_root()
    out = out if out.is_absolute() else Path.cwd() / out
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for pkg in PACKAGES:
            for path in sorted((root / pkg).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".yaml"):
                    zf.write(path, path.relative_to(root).as_posix())
    return out
