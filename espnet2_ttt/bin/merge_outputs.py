#!/usr/bin/env python3
"""Merge the Kaldi-style outputs of N parallel jobs into one directory.

    python -m espnet2_ttt.bin.merge_outputs --inputs out.1 out.2 ... --output_dir D --files text wav.scp

For every named file present in at least one input: concatenate, sort by key (C order) and
write atomically.  A key produced by two jobs is an error naming both.
"""
import argparse
import logging
import os
from typing import Dict, List, Sequence

from espnet2_ttt.utils.cli import run
from espnet2_ttt.utils.table import TableError, read_table, sort_lines, write_lines


def merge_outputs(inputs: Sequence[str], output_dir: str, files: Sequence[str]) -> List[str]:
    """Returns the names of the files written."""
    os.makedirs(output_dir, exist_ok=True)
    written = []
    for name in files:
        merged: Dict[str, str] = {}
        origin: Dict[str, str] = {}
        sources = [os.path.join(d, name) for d in inputs if os.path.exists(os.path.join(d, name))]
        for path in sources:
            for key, value in read_table(path).items():
                if key in merged:
                    raise TableError(f"{path}: key '{key}' is also in {origin[key]}")
                merged[key], origin[key] = value, path
        if sources:
            write_lines(os.path.join(output_dir, name), sort_lines(f"{k} {v}".rstrip() for k, v in merged.items()))
            written.append(name)
            logging.info(f"{name}: {len(merged)} entries from {len(sources)} jobs")
    return written


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", nargs="+", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--files", nargs="+", required=True)
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    merge_outputs(args.inputs, args.output_dir, args.files)


if __name__ == "__main__":
    run(main, "merge_outputs")
