"""The environment the feature-engineering peers run in when AUREON's pinned stack cannot run them.

autofeat 2.1 and Featuretools 1.31 (with woodwork 0.31) are written for pandas 2
and scikit-learn < 1.8: on pandas 3 autofeat calls ``Series.ravel`` (removed) and
woodwork's DataFrame accessor loses its schema (pandas 3 no longer caches
accessors); autofeat's ``transform`` passes ``force_all_finite``, which
scikit-learn 1.8 removed; Featuretools imports ``pkg_resources``, which
setuptools 82 dropped. ``benchmarks/features.py --peer-python`` runs them in a
separate virtual environment holding the stack they declare, built here:

    python benchmarks/_peer_env.py DIR      # then: --peer-python DIR/bin/python

Only the peers run there; AUREON, the split and the downstream model stay on the
pinned stack, and every row names the versions it ran on.
"""

from __future__ import annotations

import argparse
import subprocess
import venv
from pathlib import Path

PEER_PACKAGES = (
    "autofeat==2.1.3",
    "featuretools==1.31.0",
    "numpy==1.26.4",
    "pandas==2.3.3",
    "scikit-learn==1.7.2",
    "setuptools==81.0.0",
)


def build(directory: Path) -> Path:
    """Create (or complete) the virtual environment in ``directory``; return its interpreter."""
    python = directory / "bin" / "python"
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(directory)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES], check=True)
    subprocess.run([str(python), "-m", "pip", "check"], check=True)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory", type=Path, help="where the virtual environment goes")
    args = parser.parse_args()
    python = build(args.directory.expanduser().resolve())
    print(f"peer environment ready: --peer-python {python}")


if __name__ == "__main__":
    main()
