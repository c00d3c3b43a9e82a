"""Model weight files (``*.pth`` state dicts): the one reader and the checks before loading.

:func:`read_weights` loads with ``torch.load(weights_only=True)`` only, so a file holding any
pickled Python object beyond tensors and plain containers (a ``__reduce__`` payload) is refused
before anything of it runs.  :func:`load_weights` loads a file into a model strictly, refusing
with an :class:`~espnet2_ttt.utils.cli.InputError` ``<file>: <key>: <what>``:

* a file that cannot be read (truncated, not a PyTorch file) or is not a state dict, or whose
  zip CRC checks fail (torch.load skips them: a flipped byte would load as a different tensor);
* a tensor whose key is not a string or whose value is not a tensor, naming the key;
* a missing key, an extra key, a shape that differs from the model's, a floating tensor where
  the model's is integer or the other way round;
* a non-finite (NaN / inf) value, naming the first such tensor in the model's key order;
* tensors the model ties (one parameter under several names: the output layer and the input
  embedding with ``tie_embeddings`` / ``tie_word_embeddings``) that differ in the file: loading
  would silently keep only the last of them.
"""
import pickle
import re
import zipfile
import zlib
from pathlib import Path
from typing import Dict, List, Union

import torch
import torch.nn as nn

from espnet2_ttt.utils.cli import InputError

PathLike = Union[str, Path]


def read_weights(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> Dict[str, torch.Tensor]:
    """The state dict in ``path`` (a DeepSpeed ``{"module": ...}`` file unwrapped), weights only."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except IsADirectoryError as e:
        raise InputError(f"{path}: is a directory, not a weights file") from e
    except Exception as e:  # torch reports a bad file as RuntimeError, OSError, UnpicklingError, EOFError...
        reason = _torch_reason(e)
        if re.search(r"\bGLOBAL\b", str(e), re.IGNORECASE):
            raise InputError(f"{path}: refused: it holds pickled Python objects, not only tensors (loading them "
                             f"could run code): {reason}") from None
        raise InputError(f"{path}: cannot be read as PyTorch weights (truncated or corrupt?): {reason}") from None
    check_zip_crc(path)
    if isinstance(state, dict) and set(state) == {"module"}:
        state = state["module"]
    if not isinstance(state, dict):
        raise InputError(f"{path}: not a model state dict (a mapping of parameter names to tensors)")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise InputError(f"{path}: {key}: {type(value).__name__}, not a tensor (a state dict maps "
                             "parameter names to tensors)")
    return state


def check_zip_crc(path: PathLike) -> None:
    """The CRC checks of a file ``torch.save`` wrote (a zip archive; none in the legacy format),
    which torch.load skips; InputError naming the file and the member that fails."""
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            return
    try:
        with zipfile.ZipFile(path) as archive:
            corrupt = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
        raise InputError(f"{path}: corrupt: {e}") from None
    if corrupt is not None:
        raise InputError(f"{path}: {corrupt}: CRC check failed (the file is corrupt)")


def _torch_reason(error: Exception) -> str:
    """The informative line of a torch.load error, first sentence only."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror  # not "[Errno 22] ..."
    lines = [line.strip() for line in str(error).splitlines()
             if line.strip() and not line.startswith(("Check the documentation", "Please file an issue"))]
    line = (lines[-1] if isinstance(error, pickle.UnpicklingError) else lines[0]) if lines else ""
    return re.split(r"(?<=\.) ", line, maxsplit=1)[0] or type(error).__name__


def load_weights(model: nn.Module, path: PathLike, map_location: Union[str, torch.device] = "cpu") -> None:
    """Load weights file ``path`` into ``model`` after the checks of the module docstring."""
    state = read_weights(path, map_location)
    expected = model.state_dict(keep_vars=True)
    for key in expected:
        if key not in state:
            raise InputError(f"{path}: {key}: missing (the model has it; {_count(expected, state)} missing in all)")
    for key, value in state.items():
        if key not in expected:
            raise InputError(f"{path}: {key}: not in the model ({_count(state, expected)} unknown keys in all)")
        if value.shape != expected[key].shape:
            raise InputError(f"{path}: {key}: shape {list(value.shape)} in the file, "
                             f"{list(expected[key].shape)} in the model")
    for key in expected:
        check_values(path, key, state[key], expected[key])
    for names in tied_names(model):
        for name in names[1:]:
            if not torch.equal(state[name], state[names[0]]):
                raise InputError(f"{path}: {name}: differs from {names[0]}, which the model ties it to "
                                 f"(one tensor under both names)")
    model.load_state_dict(state, strict=True)


def check_values(path: PathLike, key: str, value: torch.Tensor, target: torch.Tensor) -> None:
    """Refuse tensor ``key`` of file ``path`` for model tensor ``target``: a floating tensor for an
    integer one or the other way round (loading would convert its values), a NaN or inf value."""
    if value.is_floating_point() != target.is_floating_point():
        raise InputError(f"{path}: {key}: dtype {value.dtype} in the file, {target.dtype} in the model "
                         "(loading would convert its values)")
    if (value.is_floating_point() or value.is_complex()) and not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise InputError(f"{path}: {key}: {bad} of {value.numel()} values are NaN or inf")


def check_init_param(init_param: str, model: nn.Module, ignore_mismatch: bool = False) -> None:
    """Refuse an ESPnet ``--init_param`` ``<file>[:<src_key>[:<dst_key>[:<excludes>]]]`` for
    ``model`` before ESPnet's loader (which unpickles, and reports PyTorch's errors without the
    file) reads it: the file as :func:`read_weights` reads it, then each tensor it would load into
    ``dst_key`` of the model (after ``excludes`` and ``src_key`` select them): a key the model
    lacks or a shape that differs (ESPnet skips those with ``ignore_mismatch``), and
    :func:`check_values`.  Keys the file lacks keep the model's initial values, as in ESPnet."""
    path, src_key, dst_key, excludes = (init_param.split(":", 3) + [""] * 3)[:4]
    state = read_weights(path)
    for prefix in filter(None, excludes.split(",")):
        state = {k: v for k, v in state.items() if not k.startswith(prefix)}
    if src_key:
        state = {k[len(src_key) + 1:]: v for k, v in state.items() if k.startswith(src_key)}
    try:
        target = model.get_submodule(dst_key) if dst_key else model
    except AttributeError:
        raise InputError(f"--init_param {init_param}: the model has no module {dst_key!r}") from None
    expected = target.state_dict()
    for key, value in state.items():
        name = f"{src_key}.{key}" if src_key else key
        if key not in expected or value.shape != expected[key].shape:
            if ignore_mismatch:
                continue
            if key not in expected:
                raise InputError(f"{path}: {name}: not in the model" + (f" under {dst_key}" if dst_key else ""))
            raise InputError(f"{path}: {name}: shape {list(value.shape)} in the file, "
                             f"{list(expected[key].shape)} in the model")
        check_values(path, name, value, expected[key])


def _count(have: Dict[str, object], other: Dict[str, object]) -> int:
    return sum(k not in other for k in have)


def tied_names(model: nn.Module) -> List[List[str]]:
    """The state-dict names that share one tensor, per tensor with several names (model order)."""
    groups: Dict[int, List[str]] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        groups.setdefault(id(tensor), []).append(name)
    return [names for names in groups.values() if len(names) > 1]
