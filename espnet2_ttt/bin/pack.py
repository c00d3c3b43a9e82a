#!/usr/bin/env python3
"""Pack a trained TtT model like ESPnet's model zoo, and lay out a Hugging Face upload folder.

    python -m espnet2_ttt.bin.pack --train_config exp/ttt/config.yaml --model_file exp/ttt/valid.acc.ave.pth \
        [--speech_tokenizer_dir exp/speech_tokenizer] [--bpemodel data/spm/bpe.model] \
        [--inference_config conf/decode_ttt.yaml [--inference_args "--layout_span_len 26"]] \
        [--results exp/ttt/RESULTS.md] --outpath exp/ttt/packed.zip \
        [--hf_dir exp/ttt/hf_upload [--hf_repo user/name]]

Files are stored under fixed names in ``ttt/`` wherever they came from, and the packed
``config.yaml`` names them there, so ``pack_funcs.unpack`` (and so ``espnet_model_zoo``'s
``ModelDownloader``) points it at the unpacked copies.  Keys in ``meta.yaml``:
``ttt_train_config``, ``ttt_model_file``, ``ttt_inference_config`` (the decode options that
``--inference_config`` + ``--inference_args`` set, resolved as ``ttt_inference`` reads them, so
the archive holds the options the model was evaluated with), ``bpemodel`` (``ttt/bpe.model``, or
``ttt/text_tokenizer/`` for a pretrained backbone's tokenizer directory), ``speech_tokenizer_dir``.
A pretrained (``hf_causal_lm``) backbone needs no further file: config.yaml holds its ``hf_config``.

Before anything is written, the model, the text tokenizer and the speech tokenizer are loaded
as ``ttt_inference`` loads them (``TtTTask.build_model_from_file``, ``load_text_tokenizer``,
``load_speech_tokenizer``: a file they refuse is an error naming it).
The files are staged, and the archive is written, in a temporary directory beside ``--outpath``
(``.<stem>.tmp<pid><suffix>``); the archive is renamed into place, and the staging directory
is removed whatever happens; one left by a killed run goes with the next run.  The upload
folder is built the same way and pushed only when ``--hf_repo`` is given.
"""
import argparse
import logging
import os
import shlex
import shutil
from pathlib import Path
from typing import Optional, Sequence

import yaml
from espnet2.main_funcs.pack_funcs import pack

from espnet2_ttt.bin.ttt_inference import decode_options
from espnet2_ttt.speech import load_speech_tokenizer
from espnet2_ttt.tasks.ttt import TtTTask
from espnet2_ttt.text_tokenizer import load_text_tokenizer
from espnet2_ttt.utils.archive import extract_archive
from espnet2_ttt.utils.cli import InputError, run
from espnet2_ttt.utils.table import remove_stale_temps, temp_sibling

MODEL_CARD = """---
tags:
- espnet
- audio
- text-to-talk
- speech-language-model
language:
- en
- zh
license: cc-by-4.0
---

# TtT (Text-to-Talk) model trained with espnet2_ttt

One Transformer that writes text autoregressively and speech tokens by block-wise absorbing
diffusion (TtT).  Trained with the `egs/ttt_bilingual` recipe of espnet2_ttt.

## Use

```python
from espnet2_ttt.bin.ttt_inference import TtTInference
ttt = TtTInference.from_pretrained("{repo_or_zip}")
```

## Reproduce

```bash
cd egs/ttt_bilingual
{run_args}
```

{results}

<details><summary>Training config</summary>

```yaml
{config}
```
</details>
"""


def pack_ttt(
    train_config: str,
    model_file: str,
    outpath: str,
    speech_tokenizer_dir: Optional[str] = None,
    bpemodel: Optional[str] = None,
    inference_config: Optional[str] = None,
    options=(),
    inference_args: Sequence[str] = (),
) -> None:
    """Check that the model loads, stage every file under a fixed name in ``ttt/`` (the
    training config rewritten to point at them), pack from there, and rename the archive into
    place (module docstring)."""
    config = dict(vars(TtTTask.build_model_from_file(train_config, model_file)[1]))  # as the model was built
    text_tokenizer = bpemodel or config.get("bpemodel")  # a SentencePiece model or a Hugging Face tokenizer dir
    sources = {
        "ttt_model_file": (model_file, "ttt/model.pth"),
        "bpemodel": (text_tokenizer, "ttt/text_tokenizer" if text_tokenizer and os.path.isdir(text_tokenizer)
                     else "ttt/bpe.model"),
        "speech_tokenizer_dir": (speech_tokenizer_dir or config.get("speech_tokenizer_dir"), "ttt/speech_tokenizer"),
    }
    sources = {k: v for k, v in sources.items() if v[0]}
    files = [p for p, _ in sources.values()] + list(options) + ([inference_config] if inference_config else [])
    missing = [p for p in files if not os.path.exists(p)]
    if missing:
        raise InputError(f"{missing[0]}: not found: cannot pack ({len(missing)} missing in all)")
    if "bpemodel" in sources:  # loaded as ttt_inference loads them: what they refuse is not packed
        load_text_tokenizer(sources["bpemodel"][0])
    if "speech_tokenizer_dir" in sources:
        load_speech_tokenizer(sources["speech_tokenizer_dir"][0])
    out = Path(outpath).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out.parent, {out.name})
    stage = str(temp_sibling(out))
    try:
        for key, (src, name) in sources.items():
            dst = os.path.join(stage, name)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            (shutil.copytree if os.path.isdir(src) else shutil.copyfile)(src, dst)
        config.update(bpemodel=sources.get("bpemodel", (None, None))[1],
                      speech_tokenizer_dir=sources.get("speech_tokenizer_dir", (None, None))[1])
        with open(os.path.join(stage, "ttt", "config.yaml"), "w", encoding="utf-8") as f:
            yaml.safe_dump(config, f, allow_unicode=True, sort_keys=False)
        yaml_files = {"ttt_train_config": "ttt/config.yaml"}
        if inference_config or inference_args:
            yaml_files["ttt_inference_config"] = "ttt/decode.yaml"
            with open(os.path.join(stage, "ttt", "decode.yaml"), "w", encoding="utf-8") as f:
                yaml.safe_dump(decode_options(inference_config, inference_args), f, sort_keys=False)
        for o in options:
            shutil.copyfile(o, os.path.join(stage, "ttt", os.path.basename(o)))
        cwd = os.getcwd()
        os.chdir(stage)
        try:
            pack(
                files={k: name for k, (_, name) in sources.items()},
                yaml_files=yaml_files,
                option=[os.path.join("ttt", os.path.basename(o)) for o in options],
                outpath=out.name,
            )
        finally:
            os.chdir(cwd)
        os.replace(os.path.join(stage, out.name), out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def make_hf_folder(packed: str, hf_dir: str, train_config: str, results: Optional[str], run_args: str,
                   repo_or_zip: str) -> None:
    """Unpack the packed model into ``hf_dir`` (meta.yaml at its root) and write the model card;
    built beside it and renamed into place (module docstring)."""
    final = Path(hf_dir).absolute()
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(final.parent, {final.name})
    tmp = temp_sibling(final)
    try:
        tmp.mkdir()
        extract_archive(packed, tmp)
        card = MODEL_CARD.format(
            repo_or_zip=repo_or_zip,
            run_args=run_args or "./run.sh",
            results=Path(results).read_text(encoding="utf-8") if results and os.path.exists(results) else "",
            config=Path(train_config).read_text(encoding="utf-8"),
        )
        (tmp / "README.md").write_text(card, encoding="utf-8")
        old = temp_sibling(final, "old")
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_config", required=True)
    parser.add_argument("--model_file", required=True)
    parser.add_argument("--outpath", required=True, help="archive to write (.zip or .tar.gz)")
    parser.add_argument("--speech_tokenizer_dir", default=None, help="default: the training config's")
    parser.add_argument("--bpemodel", default=None, help="default: the training config's")
    parser.add_argument("--inference_config", default=None, help="decode yaml (ttt_inference --config)")
    parser.add_argument("--inference_args", default="", help="ttt_inference decode options that win over it")
    parser.add_argument("--results", default=None, help="RESULTS.md to ship and to show in the model card")
    parser.add_argument("--option", action="append", default=[], help="any other file to ship")
    parser.add_argument("--hf_dir", default=None, help="also lay out a Hugging Face upload folder here")
    parser.add_argument("--hf_repo", default=None, help="push the upload folder to this hub repo")
    parser.add_argument("--run_args", default="", help="the command that reproduces the model")
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    options = list(args.option) + ([args.results] if args.results and os.path.exists(args.results) else [])
    pack_ttt(args.train_config, args.model_file, args.outpath, args.speech_tokenizer_dir, args.bpemodel,
             args.inference_config, options, shlex.split(args.inference_args))
    if args.hf_dir:
        make_hf_folder(args.outpath, args.hf_dir, args.train_config, args.results, args.run_args,
                       args.hf_repo or args.outpath)
        logging.info(f"Hugging Face upload folder: {args.hf_dir}")
    if args.hf_repo:
        if not args.hf_dir:
            parser.error("--hf_repo needs --hf_dir")
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(args.hf_repo, exist_ok=True)
        api.upload_folder(repo_id=args.hf_repo, folder_path=args.hf_dir)
        logging.info(f"pushed {args.hf_dir} to {args.hf_repo}")


if __name__ == "__main__":
    run(main, "pack")
