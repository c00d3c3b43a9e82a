"""Hostile packed models: none may write outside its cache directory or run code; each must be refused.

Every archive is the valid packed model (``packed.zip`` of the fixtures) with one attack added:

* members whose names leave the unpack directory: ``../`` chains and absolute paths (zip and
  tar.gz), also as the ``yaml_files`` entry of meta.yaml (ESPnet's unpack writes those itself);
* links: a zip member marked as a symlink, a tar symlink to a directory outside followed by a
  member written through it, a tar symlink standing for the model file and pointing at a
  checkpoint outside, a tar hard link to a file outside followed by a member of the same name;
* code: a pickle payload (``__reduce__`` creating a marker file) in ``ttt/model.pth``,
  ``codebook.pt`` or ``decoder.pt``, and a ``!!python/object/apply`` tag doing the same in
  meta.yaml, config.yaml or tokenizer.yaml.

The ``../`` chains are long enough to reach ``/`` from any cache depth and then name the
case's ``outside/`` directory, so every escape lands where it is seen.  Each archive is loaded
in a fork (:func:`faults.runner.run_forked`, working directory: the case's) by
``TtTInference.from_pretrained(archive, cache_dir)`` (then its text and speech tokenizers, read
when first used) and by ``ttt_inference --model_tag archive
--model_cache_dir ...`` (a CLI without a cache-directory option is not run, since it would unpack
into the installed package, and counts as not refused).  Outcomes:

* refused: the load failed with a user error (:func:`espnet2_ttt.utils.cli.user_error_message`);
* escaped: a file appeared (or ``outside/victim.txt`` changed) outside the cache directory;
* code ran: the marker file exists.
"""
from __future__ import annotations

import builtins
import dataclasses
import io
import os
import shutil
import tarfile
import zipfile
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
import yaml

from espnet2_ttt.bin import ttt_inference
from faults.cases import cli, load_pretrained
from faults.fixtures import DECODE, Fixtures
from faults.runner import run_forked

CACHE_OPTION = "--model_cache_dir"
DEPTH = 24  # "../" repeated: more than any cache directory is deep


class Payload:
    """Unpickling it calls ``open(marker, "w")``: the marker file exists iff pickled code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


@dataclasses.dataclass
class Paths:
    """Where the archive section works (``root``: each archive in ``<attack>/``, the cache in
    ``cache/``, outputs in ``decode/``) and what the attacks aim at (``outside/``)."""

    root: Path

    @property
    def outside(self) -> Path:
        return self.root / "outside"

    @property
    def marker(self) -> Path:
        return self.outside / "code_ran"

    @property
    def victim(self) -> Path:
        return self.outside / "victim.txt"

    def escape(self, name: str) -> str:
        """A member name that leaves any unpack directory for ``outside/<name>``."""
        return "../" * DEPTH + str(self.outside / name).lstrip("/")


def _members(packed: Path) -> Dict[str, bytes]:
    with zipfile.ZipFile(packed) as z:
        return {name: z.read(name) for name in z.namelist() if not name.endswith("/")}


def _write_zip(path: Path, members: Dict[str, bytes], extra: List[zipfile.ZipInfo] = (), extra_data=()) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
        for info, data in zip(extra, extra_data):
            z.writestr(info, data)


def _tar_info(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname, info.mode = size, kind, link, 0o644
    return info


def _write_tar(path: Path, members: Dict[str, bytes], extra: List[tuple] = ()) -> None:
    """``members`` as regular files, then ``extra`` ``(TarInfo, bytes or None)`` in order."""
    with tarfile.open(path, "w:gz") as t:
        for name, data in members.items():
            t.addfile(_tar_info(name, len(data)), io.BytesIO(data))
        for info, data in extra:
            t.addfile(info, io.BytesIO(data) if data is not None else None)


def _pickled_state(original: bytes, marker: Path) -> bytes:
    """The torch-saved dict ``original`` with one more entry whose unpickling runs code."""
    state = torch.load(io.BytesIO(original), map_location="cpu", weights_only=True)
    state["payload"] = Payload(marker)
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _tagged_yaml(original: bytes, marker: Path) -> bytes:
    return original + f'payload: !!python/object/apply:builtins.open ["{marker}", "w"]\n'.encode()


def _meta_names(members: Dict[str, bytes], key: str, name: str) -> Dict[str, bytes]:
    """meta.yaml's ``yaml_files[key]`` set to member ``name`` (which holds the original's bytes)."""
    meta = yaml.safe_load(members["meta.yaml"])
    original = meta["yaml_files"][key]
    meta["yaml_files"][key] = name
    members = {**members, "meta.yaml": yaml.safe_dump(meta).encode(), name: members[original]}
    del members[original]
    return members


def build(packed: Path, paths: Paths) -> Dict[str, Callable[[Path], Path]]:
    """{attack name: function writing that archive into a directory and returning its path}."""
    base = _members(packed)
    model, codebook = "ttt/model.pth", "ttt/speech_tokenizer/codebook.pt"
    decoder, tok_yaml = "ttt/speech_tokenizer/decoder.pt", "ttt/speech_tokenizer/tokenizer.yaml"

    def zip_archive(members: Dict[str, bytes], extra=(), extra_data=()):
        def write(d: Path) -> Path:
            _write_zip(d / "model.zip", members, list(extra), list(extra_data))
            return d / "model.zip"
        return write

    def tar_archive(members: Dict[str, bytes], extra=()):
        def write(d: Path) -> Path:
            _write_tar(d / "model.tar.gz", members, list(extra))
            return d / "model.tar.gz"
        return write

    symlink = zipfile.ZipInfo("ttt/speech_tokenizer_link")
    symlink.external_attr = 0o120777 << 16
    outside_checkpoint = str(paths.outside / "other.pth")
    return {
        "zip_member_dotdot": zip_archive({**base, paths.escape("dotdot.txt"): b"escaped\n"}),
        "zip_member_absolute": zip_archive({**base, str(paths.outside / "absolute.txt"): b"escaped\n"}),
        "zip_yaml_files_dotdot": zip_archive(_meta_names(base, "ttt_train_config", paths.escape("config.yaml"))),
        "zip_yaml_files_absolute": zip_archive(_meta_names(base, "ttt_train_config",
                                                           str(paths.outside / "abs_config.yaml"))),
        "zip_symlink_member": zip_archive(base, [symlink], [str(paths.outside).encode()]),
        "tar_member_dotdot": tar_archive(base, [(_tar_info(paths.escape("dotdot.txt"), 8), b"escaped\n")]),
        "tar_member_absolute": tar_archive(base, [(_tar_info(str(paths.outside / "absolute.txt"), 8), b"escaped\n")]),
        "tar_symlink_dir_write_through": tar_archive(base, [
            (_tar_info("ttt/out", kind=tarfile.SYMTYPE, link=str(paths.outside)), None),
            (_tar_info("ttt/out/through_symlink.txt", 8), b"escaped\n")]),
        "tar_symlink_model_outside": tar_archive({k: v for k, v in base.items() if k != model}, [
            (_tar_info(model, kind=tarfile.SYMTYPE, link=outside_checkpoint), None)]),
        "tar_hardlink_overwrite": tar_archive(base, [
            (_tar_info("ttt/hardlink", kind=tarfile.LNKTYPE, link=str(paths.victim)), None),
            (_tar_info("ttt/hardlink", 12), b"overwritten\n")]),
        "pickle_model": zip_archive({**base, model: _pickled_state(base[model], paths.marker)}),
        "pickle_codebook": zip_archive({**base, codebook: _pickled_state(base[codebook], paths.marker)}),
        "pickle_decoder": zip_archive({**base, decoder: _pickled_state(base[decoder], paths.marker)}),
        "yaml_tag_meta": zip_archive({**base, "meta.yaml": _tagged_yaml(base["meta.yaml"], paths.marker)}),
        "yaml_tag_config": zip_archive({**base, "ttt/config.yaml": _tagged_yaml(base["ttt/config.yaml"], paths.marker)}),
        "yaml_tag_tokenizer": zip_archive({**base, tok_yaml: _tagged_yaml(base[tok_yaml], paths.marker)}),
    }


def _snapshot(root: Path, skip: List[Path]) -> Dict[str, bytes]:
    """{path: content (b"" for non-files)} of everything under ``root`` outside ``skip``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) not in skip]
        for name in filenames + dirnames:
            path = Path(dirpath, name)
            out[str(path)] = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
    return out


def cli_has_cache_option() -> bool:
    return CACHE_OPTION in ttt_inference.get_parser().format_help()


def _loaders(fx: Fixtures, archive: Path, case: Path) -> Dict[str, Optional[Callable[[], object]]]:
    api, _ = load_pretrained(archive, case / "cache")
    command = None
    if cli_has_cache_option():
        command, _ = cli("ttt_inference", ttt_inference.main, [
            "--model_tag", archive, CACHE_OPTION, case / "cache", "--output_dir", case / "decode",
            "--data_path_and_name_and_type", f"{fx.codes},speech_codes,text_int", "--mode", "asr", *DECODE])
    return {"from_pretrained": api, "ttt_inference --model_tag": command}


def _reset(paths: Paths, fx: Fixtures) -> None:
    """A fresh ``outside/`` (the victim file and an outside checkpoint in it), no cache, no outputs."""
    for d in ("outside", "cache", "decode"):
        shutil.rmtree(paths.root / d, ignore_errors=True)
    paths.outside.mkdir()
    paths.victim.write_text("original\n")
    (paths.outside / "other.pth").write_bytes(fx.model_file.read_bytes())


def run(fx: Fixtures, work: Path) -> List[str]:
    """The archive section's report lines (module docstring)."""
    cases = refused = escaped = code_ran = 0
    notes = []
    paths = Paths(work)
    for name, write in build(fx.packed, paths).items():
        (work / name).mkdir(parents=True)
        archive = write(work / name)
        for loader_name, call in _loaders(fx, archive, work).items():
            cases += 1
            if call is None:
                notes.append(f"archive[{name}] {loader_name}: not run: ttt_inference has no {CACHE_OPTION} "
                             f"(the archive would be unpacked inside the installed package)")
                continue
            _reset(paths, fx)
            skip = [paths.root / "cache", paths.root / "decode"]
            before = _snapshot(paths.root, skip)
            result = run_forked(call, 120.0, cwd=paths.root)
            after = _snapshot(paths.root, skip)
            changed = sorted(k for k in after.keys() | before.keys()
                             if after.get(k) != before.get(k) and k != str(paths.marker))
            ran = paths.marker.exists()
            was_refused = not result.ok and (result.user_error is not None or result.status == "exit")
            refused += was_refused
            escaped += bool(changed)
            code_ran += ran
            if not was_refused or changed or ran:
                how = "refused" if was_refused else "accepted" if result.ok else "failed with an internal error"
                notes.append(f"archive[{name}] {loader_name}: {how}{', wrote ' + str(changed[:2]) if changed else ''}"
                             f"{', code ran' if ran else ''}: {result.final_line[:200]}")
    return notes + [f"archive_cases={cases} archive_refused={refused} archive_escaped={escaped} "
                    f"archive_code_ran={code_ran}"]
