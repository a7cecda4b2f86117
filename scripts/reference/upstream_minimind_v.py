"""Loads MiniMind-V's own model code (model/model_minimind.py, model/model_vlm.py) from a git snapshot of
jingyaogong/minimind-v into a temporary directory outside the repository, for parity checks. The upstream
code is never copied into this repository.

The snapshot is $MINIMIND_V_REPO (a git directory or a checkout), by default
/work/.mirror/jingyaogong+minimind-v/repo.
"""

import importlib
import os
import subprocess
import sys
import tempfile

DEFAULT_REPO = "/work/.mirror/jingyaogong+minimind-v/repo"
_loaded = None


def _read(repo, path):
    if os.path.isfile(os.path.join(repo, path)):
        with open(os.path.join(repo, path), encoding="utf-8") as f:
            return f.read()
    return subprocess.run(["git", "-C", repo, "show", f"HEAD:{path}"], check=True, capture_output=True,
                          text=True).stdout


def load():
    """-> (model_minimind module, model_vlm module, commit id)."""
    global _loaded
    if _loaded is not None:
        return _loaded
    repo = os.environ.get("MINIMIND_V_REPO", DEFAULT_REPO)
    commit = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    tmp = tempfile.mkdtemp(prefix="minimind_v_upstream_")
    pkg = os.path.join(tmp, "mmv_upstream")
    os.makedirs(pkg)
    open(os.path.join(pkg, "__init__.py"), "w").close()
    for name in ("model_minimind.py", "model_vlm.py"):
        with open(os.path.join(pkg, name), "w", encoding="utf-8") as f:
            f.write(_read(repo, f"model/{name}"))
    sys.path.insert(0, tmp)
    try:
        mm = importlib.import_module("mmv_upstream.model_minimind")
        vlm = importlib.import_module("mmv_upstream.model_vlm")
    finally:
        sys.path.remove(tmp)
    _loaded = (mm, vlm, commit)
    return _loaded
