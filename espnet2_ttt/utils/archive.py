"""Packed models (ESPnet model-zoo layout: ``meta.yaml`` + files) unpacked safely into a cache.

A model tag is a packed archive (zip or tar, as ``espnet2_ttt.bin.pack`` or ESPnet's ``pack``
writes it; the format is read from the content) or a Hugging Face repo id
``owner/name[@revision]`` (the folder ``pack --hf_dir`` lays out).  An archive is untrusted
input, so every member is checked before anything is written, and nothing is written outside
``<cache_dir>/<key>``:

* a member name is a relative path without ``..`` components, backslashes or NUL bytes
  (absolute paths, drive letters and traversal are refused, not rewritten), given once;
* a member is a regular file or a directory: symbolic links, hard links, devices and FIFOs
  are refused, and archive permissions are not applied;
* ``meta.yaml`` at the root (``yaml.safe_load``) maps keys to members: ``yaml_files`` (files)
  and ``files`` (files or directories) the archive holds.  An absolute value, as ESPnet's
  ``pack`` records a file outside its working directory, names the member without its
  leading ``/`` (the name zip and tar store); it never points outside the cache.

Unpacking writes a staging directory beside the final one, rewrites the member paths in the
yaml files to the unpacked copies (as ESPnet's ``unpack`` does), and renames it into place,
so the cache only ever holds whole models; the staging directory of a job that fails is
removed, that of a killed job by the next unpack into the same cache.  Model weights are read
by :mod:`espnet2_ttt.models.weights` (weights only, no code).
"""
import hashlib
import lzma
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Dict, Iterator, Optional, Set, Tuple, Union

import yaml

from espnet2_ttt.user_cache import user_cache_dir
from espnet2_ttt.utils.cli import InputError
from espnet2_ttt.utils.table import remove_stale_temps, temp_sibling

PathLike = Union[str, Path]
META = PurePosixPath("meta.yaml")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".gz", ".bz2", ".tbz2", ".xz", ".txz")
HF_REPO_ID = re.compile(r"(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<revision>[\w./-]+))?")
HF_METADATA = ".cache"  # huggingface_hub's bookkeeping folder inside a local_dir download


class ArchiveError(InputError):
    """A packed model that cannot or must not be unpacked; the message names it."""


def default_model_cache_dir() -> Path:
    """``<user cache>/models`` (:func:`espnet2_ttt.user_cache.user_cache_dir`)."""
    return user_cache_dir() / "models"


def unpack_model(tag: str, cache_dir: Optional[PathLike] = None) -> Dict[str, str]:
    """``meta.yaml``'s keys -> paths of the unpacked files, for a packed archive or a Hugging
    Face repo id (module docstring), unpacked once into ``cache_dir`` (default:
    :func:`default_model_cache_dir`) and reused from there (no network for a cached repo)."""
    cache = Path(cache_dir).expanduser().absolute() if cache_dir is not None else default_model_cache_dir()
    path = Path(tag).expanduser()
    if path.is_dir():
        raise ArchiveError(f"{tag}: a directory; give the packed archive (zip or tar) or a Hugging Face repo id")
    if path.exists():
        st = path.stat()
        final = cache / _cache_key(path.name, f"{path.absolute()}\0{st.st_size}\0{st.st_mtime_ns}")
        unpack = _unpack_archive
    elif HF_REPO_ID.fullmatch(tag) and not tag.endswith(ARCHIVE_SUFFIXES):
        final = cache / _cache_key(tag, tag)
        unpack = _download_hf
    else:
        raise ArchiveError(f"{tag}: no such file (and not a Hugging Face repo id owner/name[@revision])")
    if not final.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(cache, {final.name})
        tmp = temp_sibling(final)
        try:
            tmp.mkdir()
            unpack(tag, tmp, final)
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():  # else: another job unpacked the same model first
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return model_files(final, tag)


def _cache_key(name: str, identity: str) -> str:
    """A readable, unique directory name: the tag's last part + a hash of what identifies it."""
    readable = re.sub(r"[^\w-]", "_", name.rsplit("/", 1)[-1])
    return f"{readable}-{hashlib.sha256(identity.encode('utf-8', 'surrogateescape')).hexdigest()[:16]}"


def model_files(root: Path, where: str) -> Dict[str, str]:
    """``meta.yaml``'s keys -> absolute paths under the unpacked model ``root`` (every one checked)."""
    members = set(_walk(root, where))
    return {key: str(root / member) for key, (member, _) in _read_meta(root / META, members, where).items()}


def _read_meta(meta: Path, members: Set[PurePosixPath], where: str) -> Dict[str, Tuple[PurePosixPath, bool]]:
    """{key: (member, is a yaml file)} of ``meta.yaml``, every value a member of the model."""
    if META not in members:
        raise ArchiveError(f"{where}: no meta.yaml at the top (not a packed model)")
    try:
        with open(meta, encoding="utf-8") as f:
            info = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ArchiveError(f"{where}: meta.yaml: not valid YAML: {e}") from None
    sections = {name: info.get(name) if isinstance(info, dict) else None for name in ("yaml_files", "files")}
    if not all(isinstance(s, dict) for s in sections.values()):
        raise ArchiveError(f"{where}: meta.yaml: needs the mappings yaml_files and files")
    directories = {parent for m in members for parent in m.parents}
    out = {}
    for name, section in sections.items():
        for key, value in section.items():
            member = _member_name(value.lstrip("/") if isinstance(value, str) else "", f"{where}: meta.yaml: {key}")
            if member not in members and (name == "yaml_files" or member not in directories):
                raise ArchiveError(f"{where}: meta.yaml: {key}: {value} is not in the model")
            out[str(key)] = (member, name == "yaml_files")
    return out


def _member_name(name: str, where: str) -> PurePosixPath:
    """``name`` as a relative member path, or ArchiveError (module docstring)."""
    path = PurePosixPath(name)
    parts = [p for p in path.parts if p != "."]
    if not name or "\\" in name or "\0" in name or path.is_absolute() or re.match(r"[A-Za-z]:", name):
        raise ArchiveError(f"{where}: member {name!r} is not a relative path")
    if ".." in parts or not parts:
        raise ArchiveError(f"{where}: member {name!r} points outside the model directory")
    return PurePosixPath(*parts)


def _unpack_archive(archive: str, out: Path, final: Path) -> None:
    """:func:`extract_archive` into ``out``, then point the yaml files at the copies in ``final``."""
    extract_archive(archive, out)
    _rewrite_yaml_files(out, final, archive)


def extract_archive(archive: PathLike, out: Path) -> None:
    """Check every member of zip or tar ``archive`` (module docstring), then write the files
    under the existing directory ``out``; an ArchiveError names the archive and the member."""
    try:
        with _Archive(archive) as (entries, read):
            files = _check_members(entries, archive)
            for member, entry in files.items():
                dest = out.joinpath(*member.parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with read(entry) as src, open(dest, "xb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, NotImplementedError) as e:
        raise ArchiveError(f"{archive}: corrupt or truncated archive: {e}") from None
    except OSError as e:
        if e.filename is not None:
            raise
        raise ArchiveError(f"{archive}: corrupt or truncated archive: {e}") from None


class _Archive:
    """``with _Archive(path) as (entries, read)``: the members of a zip or tar file as
    ``(name, kind, link target, entry)`` (kind "file", "dir", "symlink", "hardlink",
    "encrypted" or "special") and a function opening an entry for reading."""

    def __init__(self, path: str):
        with open(path, "rb") as f:
            zip_magic = f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")  # not is_zipfile: a tar holding a zip
        if zip_magic:
            try:
                self.zip, self.tar = zipfile.ZipFile(path), None
            except zipfile.BadZipFile:
                raise ArchiveError(f"{path}: truncated or corrupt zip archive (its directory at the end is "
                                   f"missing or damaged)") from None
        elif _is_tarfile(path):
            self.zip, self.tar = None, tarfile.open(path)
        else:
            raise ArchiveError(f"{path}: not a zip or tar archive (truncated or corrupt?)")

    def __enter__(self):
        return self._entries(), (self.zip.open if self.zip else self.tar.extractfile)

    def __exit__(self, *exc):
        (self.zip or self.tar).close()

    def _entries(self) -> Iterator[Tuple[str, str, str, object]]:
        if self.zip:
            for info in self.zip.infolist():
                mode = stat.S_IFMT(info.external_attr >> 16)
                kind = ("dir" if info.is_dir() else "file") if mode in (0, stat.S_IFREG, stat.S_IFDIR) else (
                    "symlink" if mode == stat.S_IFLNK else "special")
                if info.flag_bits & 0x1:
                    kind = "encrypted"
                link = self.zip.read(info).decode("utf-8", "replace") if kind == "symlink" else ""  # a zip link's data
                yield info.filename, kind, link, info
        else:
            for info in self.tar:
                kind = ("file" if info.isreg() else "dir" if info.isdir() else "symlink" if info.issym()
                        else "hardlink" if info.islnk() else "special")
                yield info.name, kind, info.linkname, info


def _is_tarfile(path: str) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, EOFError, zlib.error, lzma.LZMAError):
        return False


def _check_members(entries, archive: str) -> Dict[PurePosixPath, object]:
    """{member: entry} of the regular files, after checking every entry (module docstring)."""
    files, directories = {}, set()
    for name, kind, link, entry in entries:
        if kind == "dir" and not [p for p in PurePosixPath(name).parts if p != "."]:
            continue  # the archive's top directory "." (tar -C dir .)
        member = _member_name(name, archive)
        if kind not in ("file", "dir"):
            what = {"symlink": f"a symbolic link (to {link})", "hardlink": f"a hard link (to {link})",
                    "encrypted": "encrypted"}.get(kind, "a device, FIFO or other special file")
            raise ArchiveError(f"{archive}: member {name!r} is {what}; only regular files and directories are unpacked")
        if member in files:
            raise ArchiveError(f"{archive}: member {name!r} appears twice")
        if kind == "file":
            files[member] = entry
        directories.update(member.parents if kind == "file" else (member, *member.parents))
    clash = set(files) & directories
    if clash:
        raise ArchiveError(f"{archive}: member {sorted(map(str, clash))[0]!r} is both a file and a directory")
    return files


def _walk(root: Path, where: str) -> Iterator[PurePosixPath]:
    """The files under ``root`` as member paths (not huggingface_hub's metadata); a symbolic
    link or special file is an ArchiveError."""
    for directory, dirs, names in os.walk(root):
        rel = PurePosixPath(Path(directory).relative_to(root).as_posix())
        dirs[:] = [d for d in dirs if not (rel == PurePosixPath(".") and d == HF_METADATA)]
        for name in dirs + names:
            path = Path(directory) / name
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                raise ArchiveError(f"{where}: {rel / name} is a symbolic link or special file")
        yield from (rel / name for name in names)


def _rewrite_yaml_files(root: Path, final: Path, where: str) -> None:
    """Point the values of the yaml files under ``root`` that name a member file, or a
    directory of ``meta.yaml``'s ``files``, at its copy under ``final`` (where ``root`` goes)."""
    members = set(_walk(root, where))
    meta = _read_meta(root / META, members, where)
    names = {str(m) for m in members} | {str(member) for member, _ in meta.values()}
    for member, is_yaml in meta.values():
        if not is_yaml:
            continue
        path = root / member
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise ArchiveError(f"{where}: {member}: not valid YAML: {e}") from None
        path.write_text(yaml.safe_dump(_rewrite(config, names, final), allow_unicode=True, sort_keys=False),
                        encoding="utf-8")


def _rewrite(value, names: Set[str], root: Path):
    """``value`` with every string in ``names`` (or that with a leading ``/``) -> ``root/<it>``."""
    if isinstance(value, dict):
        return {k: _rewrite(v, names, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, names, root) for v in value]
    if isinstance(value, str) and value and os.path.normpath(value).lstrip("/") in names:
        return str(root / os.path.normpath(value).lstrip("/"))
    return value


def _download_hf(tag: str, out: Path, final: Path) -> None:
    """Download Hugging Face repo ``owner/name[@revision]`` into ``out`` (huggingface_hub
    refuses traversing file names), then point the yaml files at the copies in ``final``."""
    from huggingface_hub import snapshot_download

    match = HF_REPO_ID.fullmatch(tag)
    try:
        snapshot_download(match["repo"], revision=match["revision"], local_dir=out)
    except Exception as e:  # network, authentication, missing repo: all say why in their message
        raise ArchiveError(f"{tag}: cannot download from the Hugging Face Hub: {type(e).__name__}: {e}") from None
    shutil.rmtree(out / HF_METADATA, ignore_errors=True)
    _rewrite_yaml_files(out, final, tag)
