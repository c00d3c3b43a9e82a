"""The per-user cache of espnet2_ttt and what keeps its imports offline.

:func:`user_cache_dir` is ``$XDG_CACHE_HOME/espnet2_ttt`` (default ``~/.cache/espnet2_ttt``):
unpacked models (``models/``, :mod:`espnet2_ttt.utils.archive`) and ``nltk_data/``.

NLTK: espnet2's phoneme tokenizer, imported by espnet2's collate and preprocessor modules that
the task and every ESPnet entry point import, imports ``g2p_en``, which downloads two NLTK
resources at import time when NLTK cannot find them (network errors on stderr, or a hang where
the network drops packets).  TtT never uses g2p_en.  :func:`provide_nltk_placeholders` (run by
the package's ``__init__`` before any espnet import) points ``NLTK_DATA``, when it is unset, at
valid placeholder zips in the cache for the resources that none of NLTK's default directories
holds, so the import finds them and never reaches for the network; real NLTK data in a default
directory still wins, and a set ``NLTK_DATA`` (the recipe's ``path.sh``) is left alone.
"""
import os
import sys
import zipfile
from pathlib import Path
from typing import List

# the resources g2p_en looks for (``nltk.data.find``) at import, downloading each one it lacks
G2P_EN_NLTK_RESOURCES = ("taggers/averaged_perceptron_tagger_eng.zip", "corpora/cmudict.zip")


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/espnet2_ttt``, or ``~/.cache/espnet2_ttt`` (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "espnet2_ttt"


def nltk_default_dirs() -> List[str]:
    """The directories NLTK searches besides ``NLTK_DATA`` (``nltk.data.path`` on POSIX)."""
    return [os.path.expanduser("~/nltk_data"),
            *(os.path.join(sys.prefix, *sub, "nltk_data") for sub in ((), ("share",), ("lib",))),
            "/usr/share/nltk_data", "/usr/local/share/nltk_data", "/usr/lib/nltk_data", "/usr/local/lib/nltk_data"]


def provide_nltk_placeholders() -> None:
    """With ``NLTK_DATA`` unset and a g2p_en resource missing from NLTK's default directories,
    set ``NLTK_DATA`` to ``<user cache>/nltk_data`` holding a placeholder zip for exactly the
    missing ones (module docstring).  A cache that cannot be written leaves everything as is."""
    if os.environ.get("NLTK_DATA"):
        return
    defaults = nltk_default_dirs()
    missing = [r for r in G2P_EN_NLTK_RESOURCES if not any(os.path.exists(os.path.join(d, r)) for d in defaults)]
    if not missing:
        return
    root = user_cache_dir() / "nltk_data"
    try:
        for resource in G2P_EN_NLTK_RESOURCES:
            path = root / resource
            if resource not in missing:
                path.unlink(missing_ok=True)  # real data appeared since: do not shadow it
            elif not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
                try:
                    with zipfile.ZipFile(tmp, "w") as z:
                        z.writestr(f"{Path(resource).stem}/README", "placeholder: espnet2_ttt does not use g2p_en\n")
                    os.replace(tmp, path)
                finally:
                    tmp.unlink(missing_ok=True)
    except OSError:
        return
    os.environ["NLTK_DATA"] = str(root)
