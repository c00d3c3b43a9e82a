"""Packed models are untrusted input: from_pretrained / --model_tag check every archive member before
unpacking anything, never write outside the cache directory, never run code from a weights file,
unpack into a user cache (not the installed packages), and import and load offline and quietly."""
import io
import os
import shutil
import stat
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch

from espnet2_ttt.bin.pack import make_hf_folder, pack_ttt
from espnet2_ttt.bin.ttt_inference import TtTInference, main as ttt_inference
from espnet2_ttt.user_cache import G2P_EN_NLTK_RESOURCES, provide_nltk_placeholders
from espnet2_ttt.utils.archive import ArchiveError, default_model_cache_dir, unpack_model
from espnet2_ttt.utils.cli import InputError

from helpers import run_bounded
from test_model_loading import Payload
from tiny_model import WEIGHTS, train_tiny_model
from user_errors import dead_pid, error_line

DECODE = dict(max_new_tokens=8, block_length=4, steps_per_block=2, max_span_length=8)


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def packed(exp):
    path = exp.parent / "packed.zip"
    pack_ttt(str(exp / "config.yaml"), str(exp / WEIGHTS), str(path))
    return path


def members(packed):
    """{name: bytes} of the good packed zip."""
    with zipfile.ZipFile(packed) as z:
        return {name: z.read(name) for name in z.namelist()}


def write_zip(path, files, extra=()):
    """A zip of ``files`` ({name: bytes}) followed by ``extra`` (ZipInfo, bytes) members."""
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        for info, data in extra:
            z.writestr(info, data)
    return path


def write_tar(path, files, extra=()):
    """A tar.gz of ``files`` followed by ``extra`` TarInfo members (no data unless a regular file)."""
    with tarfile.open(path, "w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        for info in extra:
            t.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return path


def zip_member(name, file_type=stat.S_IFREG):
    info = zipfile.ZipInfo(name)
    info.external_attr = (file_type | 0o644) << 16
    return info


def tar_member(name, kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, 1 if kind == tarfile.REGTYPE else 0
    return info


def assert_nothing_written(tmp_path, cache):
    """No unpacked file and no staging directory in the cache, nothing named evil anywhere."""
    assert not cache.exists() or list(cache.iterdir()) == []
    assert [p for p in tmp_path.rglob("*evil*")] == []


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("member, message", [
    ("../evil", "member '../evil' points outside the model directory"),
    ("ttt/../../evil", "member 'ttt/../../evil' points outside the model directory"),
    ("/tmp/evil", "member '/tmp/evil' is not a relative path"),
    ("C:/evil", "member 'C:/evil' is not a relative path"),
    ("ttt\\..\\..\\evil", "member 'ttt\\\\..\\\\..\\\\evil' is not a relative path"),
    ("ttt/config.yaml", "member 'ttt/config.yaml' appears twice"),
])
def test_zip_members_outside_the_model_are_refused_before_anything_is_written(packed, tmp_path, member, message):
    bad = write_zip(tmp_path / "bad.zip", members(packed), [(zip_member(member), b"evil")])
    with pytest.raises(ArchiveError) as e:
        unpack_model(str(bad), tmp_path / "cache")
    assert str(e.value) == f"{bad}: {message}"
    assert_nothing_written(tmp_path, tmp_path / "cache")


@pytest.mark.parametrize("file_type, what", [
    (stat.S_IFLNK, "a symbolic link (to {tmp_path})"),
    (stat.S_IFCHR, "a device, FIFO or other special file"),
    (stat.S_IFIFO, "a device, FIFO or other special file"),
])
def test_zip_links_and_special_files_are_refused(packed, tmp_path, file_type, what):
    bad = write_zip(tmp_path / "bad.zip", members(packed), [(zip_member("ttt/evil", file_type), str(tmp_path))])
    with pytest.raises(ArchiveError) as e:
        unpack_model(str(bad), tmp_path / "cache")
    assert str(e.value) == (f"{bad}: member 'ttt/evil' is {what.format(tmp_path=tmp_path)}; only regular files and "
                            f"directories are unpacked")
    assert_nothing_written(tmp_path, tmp_path / "cache")


@pytest.mark.parametrize("member, message", [
    (tar_member("../evil"), "member '../evil' points outside the model directory"),
    (tar_member("/tmp/evil"), "member '/tmp/evil' is not a relative path"),
    (tar_member("ttt/evil", tarfile.SYMTYPE, "/etc/passwd"), "member 'ttt/evil' is a symbolic link (to /etc/passwd)"),
    (tar_member("ttt/evil", tarfile.SYMTYPE, "../../.."), "member 'ttt/evil' is a symbolic link (to ../../..)"),
    (tar_member("ttt/evil", tarfile.LNKTYPE, "../../outside"), "member 'ttt/evil' is a hard link (to ../../outside)"),
    (tar_member("ttt/evil", tarfile.CHRTYPE), "member 'ttt/evil' is a device, FIFO or other special file"),
    (tar_member("ttt/evil", tarfile.FIFOTYPE), "member 'ttt/evil' is a device, FIFO or other special file"),
    (tar_member("ttt/config.yaml/evil"), "member 'ttt/config.yaml' is both a file and a directory"),
])
def test_tar_members_outside_the_model_links_and_devices_are_refused(packed, tmp_path, member, message):
    bad = write_tar(tmp_path / "bad.tar.gz", members(packed), [member])
    with pytest.raises(ArchiveError) as e:
        unpack_model(str(bad), tmp_path / "cache")
    assert str(e.value).startswith(f"{bad}: {message}")
    assert_nothing_written(tmp_path, tmp_path / "cache")


def test_a_tar_of_the_model_directory_with_dot_members_unpacks(packed, tmp_path):
    """``tar -czf m.tar.gz -C dir .``: members "./meta.yaml", "./ttt/...", and the directories "." and "./ttt"."""
    with tarfile.open(tmp_path / "m.tar", "w") as t:
        for name in (".", "./ttt"):
            t.addfile(tar_member(name, tarfile.DIRTYPE))
        for name, data in members(packed).items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    files = unpack_model(str(tmp_path / "m.tar"), tmp_path / "cache")
    assert Path(files["ttt_model_file"]).read_bytes() == members(packed)["ttt/model.pth"]


@pytest.mark.parametrize("value, message", [
    ("../../evil.pth", "meta.yaml: ttt_model_file: member '../../evil.pth' points outside the model directory"),
    ("ttt/absent.pth", "meta.yaml: ttt_model_file: ttt/absent.pth is not in the model"),
])
def test_meta_yaml_cannot_point_outside_the_model(packed, exp, tmp_path, value, message):
    files = members(packed)
    files["meta.yaml"] = files["meta.yaml"].replace(b"ttt/model.pth", value.encode())
    bad = write_zip(tmp_path / "bad.zip", files)
    with pytest.raises(ArchiveError) as e:
        unpack_model(str(bad), tmp_path / "cache")
    assert str(e.value) == f"{bad}: {message}"
    assert_nothing_written(tmp_path, tmp_path / "cache")


def test_an_absolute_meta_yaml_path_names_the_member_not_the_file_outside(exp, tmp_path):
    """ESPnet's pack records files outside its working directory by absolute path and stores them
    without the leading '/': the path resolves to the member inside the cache, never to the file."""
    from espnet2.main_funcs.pack_funcs import pack

    zip_path = tmp_path / "espnet.zip"
    pack(files={"ttt_model_file": str(exp / WEIGHTS)}, yaml_files={"ttt_train_config": str(exp / "config.yaml")},
         option=[], outpath=str(zip_path))
    files = unpack_model(str(zip_path), tmp_path / "cache")
    cache = (tmp_path / "cache").resolve()
    assert Path(files["ttt_model_file"]).resolve().is_relative_to(cache)
    assert Path(files["ttt_model_file"]).read_bytes() == (exp / WEIGHTS).read_bytes()


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_a_truncated_or_random_archive_names_it(packed, exp, tmp_path, capsys, damage):
    data = packed.read_bytes()
    bad = tmp_path / "packed.zip"
    bad.write_bytes(data[: len(data) // 2] if damage == "truncated" else bytes(range(256)) * 64)
    message = f"{bad}: " + ("truncated or corrupt zip archive (its directory at the end is missing or damaged)"
                            if damage == "truncated" else "not a zip or tar archive (truncated or corrupt?)")
    with pytest.raises(ArchiveError) as e:
        TtTInference.from_pretrained(str(bad), cache_dir=tmp_path / "cache")
    assert str(e.value) == message
    codes = tmp_path / "codes"
    codes.write_text("u1 1 2\n")
    assert error_line(capsys, ttt_inference, "ttt_inference", [
        "--model_tag", bad, "--model_cache_dir", tmp_path / "cache", "--output_dir", tmp_path / "out",
        "--data_path_and_name_and_type", f"{codes},speech_codes,text_int"]) == f"ttt_inference: error: {message}"
    assert_nothing_written(tmp_path, tmp_path / "cache")


def test_a_corrupt_member_fails_the_unpack_and_leaves_no_staging_directory(packed, tmp_path):
    data = bytearray(packed.read_bytes())
    with zipfile.ZipFile(packed) as z:
        info = z.getinfo("ttt/model.pth")
    assert info.compress_type == zipfile.ZIP_STORED
    data[info.header_offset + 30 + len(info.orig_filename) + len(info.extra) + 100] ^= 0xFF  # its CRC fails
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match=f"{bad}: corrupt or truncated archive: Bad CRC-32 for file 'ttt/model.pth'"):
        unpack_model(str(bad), tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_pickle_payload_in_a_packed_model_never_runs(packed, tmp_path, capsys):
    marker = tmp_path / "marker"
    state = torch.load(io.BytesIO(members(packed)["ttt/model.pth"]), weights_only=True)
    state["backbone.norm.weight"] = Payload(marker)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    bad = write_zip(tmp_path / "payload.zip", {**members(packed), "ttt/model.pth": buffer.getvalue()})
    with pytest.raises(InputError) as e:
        TtTInference.from_pretrained(str(bad), cache_dir=tmp_path / "cache")
    assert "ttt/model.pth: refused: it holds pickled Python objects, not only tensors" in str(e.value)
    codes = tmp_path / "codes"
    codes.write_text("u1 1 2\n")
    line = error_line(capsys, ttt_inference, "ttt_inference", [
        "--model_tag", bad, "--model_cache_dir", tmp_path / "cache", "--output_dir", tmp_path / "out",
        "--data_path_and_name_and_type", f"{codes},speech_codes,text_int"])
    assert line.startswith(f"ttt_inference: error: {tmp_path / 'cache'}/payload_zip-") and "refused" in line
    assert not marker.exists()


CALLED = []


def recording_decoder(codes, **conf):
    """An external speech decoder that records being run."""
    CALLED.append(len(codes))
    return codes.astype("float32"), 8000


def test_a_packed_speech_tokenizer_naming_code_is_not_run(exp, tmp_path):
    """precomputed's decoder is 'package.module:function', imported and called on decoding: from
    an archive that is code the archive chose, so the packed tokenizer is refused; a tokenizer
    given explicitly is the caller's choice."""
    from espnet2_ttt.speech import PrecomputedTokenizer

    PrecomputedTokenizer(codebook_size=16, decoder="test_archive_safety:recording_decoder").save(tmp_path / "tok")
    pack_ttt(str(exp / "config.yaml"), str(exp / WEIGHTS), str(tmp_path / "p.zip"),
             speech_tokenizer_dir=str(tmp_path / "tok"))
    with pytest.raises(InputError) as e:
        TtTInference.from_pretrained(str(tmp_path / "p.zip"), cache_dir=tmp_path / "cache", **DECODE)
    assert str(e.value) == (f"{tmp_path / 'p.zip'}: its speech tokenizer names the external decoder "
                            f"'test_archive_safety:recording_decoder', which decoding would import and run: give "
                            f"speech_tokenizer_dir to use one deliberately")
    assert CALLED == []
    ttt = TtTInference.from_pretrained(str(tmp_path / "p.zip"), cache_dir=tmp_path / "cache",
                                       speech_tokenizer_dir=str(tmp_path / "tok"), **DECODE)
    assert ttt.speech_tokenizer_dir == str(tmp_path / "tok")


def test_pack_refuses_weights_it_could_not_load(exp, tmp_path, capsys):
    from espnet2_ttt.bin.pack import main as pack_main

    state = torch.load(exp / WEIGHTS, weights_only=True)
    state["backbone.norm.weight"][2] = float("nan")
    torch.save(state, tmp_path / "nan.pth")
    assert error_line(capsys, pack_main, "pack", [
        "--train_config", exp / "config.yaml", "--model_file", tmp_path / "nan.pth", "--outpath", tmp_path / "p.zip",
    ]) == f"pack: error: {tmp_path / 'nan.pth'}: backbone.norm.weight: 1 of 16 values are NaN or inf"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.pth"]  # no archive, no staging directory


def test_tar_gz_packs_unpack_and_decode_like_zip(exp, packed, tmp_path):
    pack_ttt(str(exp / "config.yaml"), str(exp / WEIGHTS), str(tmp_path / "packed.tar.gz"))
    outs = [TtTInference.from_pretrained(str(p), cache_dir=tmp_path / "cache", **DECODE)("chat", None, [1, 2, 3], seed=2)
            for p in (packed, tmp_path / "packed.tar.gz")]
    assert outs[0].tokens == outs[1].tokens
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "packed.tar.gz"]


def test_the_default_cache_is_the_user_cache_not_the_installed_packages(packed, tmp_path, monkeypatch):
    import espnet_model_zoo

    zoo = Path(espnet_model_zoo.__file__).parent
    before = sorted(os.listdir(zoo))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_model_cache_dir() == tmp_path / "xdg" / "espnet2_ttt" / "models"
    files = unpack_model(str(packed))
    assert Path(files["ttt_model_file"]).parent.parent.parent == default_model_cache_dir()
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_model_cache_dir() == tmp_path / "home" / ".cache" / "espnet2_ttt" / "models"
    assert sorted(os.listdir(zoo)) == before


def test_the_cache_is_reused_and_stale_staging_directories_are_removed(packed, tmp_path):
    cache = tmp_path / "cache"
    files = unpack_model(str(packed), cache)
    model_dir = Path(files["ttt_model_file"]).parent.parent
    mtime = Path(files["ttt_model_file"]).stat().st_mtime_ns
    stale = cache / f".{model_dir.name}.tmp{dead_pid()}"  # what a killed unpack leaves
    (stale / "ttt").mkdir(parents=True)
    (stale / "ttt" / "model.pth").write_bytes(b"partial")
    assert unpack_model(str(packed), cache) == files
    assert Path(files["ttt_model_file"]).stat().st_mtime_ns == mtime  # not unpacked again
    shutil.rmtree(model_dir)
    assert unpack_model(str(packed), cache) == files  # unpacked again, and the stale one swept
    assert sorted(p.name for p in cache.iterdir()) == [model_dir.name]


def test_the_packed_config_names_the_unpacked_files(exp, tmp_path):
    import yaml

    from espnet2_ttt.text_tokenizer import TextTokenizer

    (tmp_path / "text").write_text("the quick brown fox jumps over the lazy dog\n", encoding="utf-8")
    TextTokenizer.train(tmp_path / "text", tmp_path / "bpe", 20, model_type="char", character_coverage=1.0,
                        byte_fallback=False, num_threads=1)
    spm = tmp_path / "bpe.model"  # pack loads it as ttt_inference would
    pack_ttt(str(exp / "config.yaml"), str(exp / WEIGHTS), str(tmp_path / "p.zip"), bpemodel=str(spm))
    files = unpack_model(str(tmp_path / "p.zip"), tmp_path / "cache")
    config = yaml.safe_load(Path(files["ttt_train_config"]).read_text())
    assert config["bpemodel"] == files["bpemodel"] == str(Path(files["ttt_train_config"]).parent / "bpe.model")
    assert config["chat_template"] == "ttt"  # a value that names a directory of the archive is not a path


def test_a_hugging_face_repo_is_downloaded_once_into_the_cache(exp, packed, tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id, revision=None, local_dir=None):
        calls.append((repo_id, revision))
        make_hf_folder(str(packed), str(tmp_path / "hf"), str(exp / "config.yaml"), None, "", repo_id)
        for path in (tmp_path / "hf").iterdir():
            os.rename(path, Path(local_dir) / path.name)
        (Path(local_dir) / ".cache" / "huggingface").mkdir(parents=True)
        return local_dir

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    direct = TtTInference.from_pretrained(str(packed), cache_dir=tmp_path / "cache", **DECODE)
    for _ in range(2):
        hub = TtTInference.from_pretrained("someone/tiny@v1", cache_dir=tmp_path / "cache", **DECODE)
        assert hub("chat", None, [4, 5], seed=1).tokens == direct("chat", None, [4, 5], seed=1).tokens
    assert calls == [("someone/tiny", "v1")]
    with pytest.raises(ArchiveError, match="someone/missing.zip: no such file"):
        unpack_model("someone/missing.zip", tmp_path / "cache")  # an archive name is never looked up online


def test_nltk_placeholders_only_for_what_nltk_cannot_find(tmp_path, monkeypatch):
    import espnet2_ttt.user_cache as user_cache

    real = tmp_path / "nltk_home"
    monkeypatch.setattr(user_cache, "nltk_default_dirs", lambda: [str(real)])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("NLTK_DATA", raising=False)
    placeholders = tmp_path / "xdg" / "espnet2_ttt" / "nltk_data"
    provide_nltk_placeholders()
    assert os.environ["NLTK_DATA"] == str(placeholders)
    assert all(zipfile.ZipFile(placeholders / r).namelist() for r in G2P_EN_NLTK_RESOURCES)  # valid zips
    tagger, cmudict = G2P_EN_NLTK_RESOURCES
    (real / cmudict).parent.mkdir(parents=True)
    (real / cmudict).write_bytes(b"real data")
    monkeypatch.delenv("NLTK_DATA")
    provide_nltk_placeholders()
    assert (placeholders / tagger).exists() and not (placeholders / cmudict).exists()  # the real one is not shadowed
    (real / tagger).parent.mkdir(parents=True)
    (real / tagger).write_bytes(b"real data")
    monkeypatch.delenv("NLTK_DATA")
    provide_nltk_placeholders()
    assert "NLTK_DATA" not in os.environ
    monkeypatch.setenv("NLTK_DATA", "/somewhere")
    provide_nltk_placeholders()
    assert os.environ["NLTK_DATA"] == "/somewhere"  # the recipe's path.sh setting stays


QUIET_LOAD = """
import sys

def no_network(event, args):
    if event.startswith("socket.") and event != "socket.__new__":
        print(f"network: {event} {args}", file=sys.stderr)
        raise RuntimeError("the network was reached for")

sys.addaudithook(no_network)
from espnet2_ttt.bin.ttt_inference import TtTInference

ttt = TtTInference.from_pretrained(sys.argv[1], max_new_tokens=8, block_length=4, steps_per_block=2)
print(len(ttt("chat", None, [1, 2, 3], seed=0).tokens))
"""


def test_import_and_load_from_any_directory_are_offline_and_quiet(packed, tmp_path):
    """A fresh interpreter outside the repository, NLTK_DATA unset, an empty home: importing the
    package and loading a packed model print nothing on stderr and open no socket."""
    env = {k: v for k, v in os.environ.items() if k != "NLTK_DATA"}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "xdg"), OMP_NUM_THREADS="1")
    (tmp_path / "home").mkdir()
    result = run_bounded([sys.executable, "-c", QUIET_LOAD, str(packed)], timeout=240, capture_output=True,
                         cwd=tmp_path, env=env)
    assert (result.returncode, result.stderr.decode()) == (0, "")
    assert int(result.stdout.decode().split()[-1]) > 0
    assert (tmp_path / "xdg" / "espnet2_ttt" / "models").is_dir()
