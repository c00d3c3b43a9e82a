"""scp-file tools: split_scp, filter_scp, utt2spk_to_spk2utt, spk2utt_to_utt2spk.

Command line: ``python -m espnet2_ttt.utils.scp <tool>.pl [args]``; the files
``egs/ttt_bilingual/utils/<tool>.pl`` are thin wrappers around it.
"""

import argparse
import bisect
import functools
import sys
from typing import Dict, List, Optional, Sequence

from espnet2_ttt.utils.cli import dispatch
from espnet2_ttt.utils.table import (
    TableError,
    line_key,
    read_lines,
    split_key,
    write_lines,
    write_stdout,
)


def split_into_chunks(
    lines: Sequence[str], num_chunks: int, utt2spk: Optional[Dict[str, str]] = None,
    name: str = "input",
) -> List[List[str]]:
    """Split ``lines`` into ``num_chunks`` contiguous, order-preserving chunks.

    Without ``utt2spk`` chunk sizes differ by at most one. With it, the lines of one
    speaker (which must be contiguous) stay in one chunk and chunk boundaries are put
    at the speaker boundaries closest to an even split by line count.
    """
    groups = _group_lines(lines, utt2spk, name) if utt2spk is not None else [[x] for x in lines]
    _check_num_chunks(len(groups), num_chunks, "speakers" if utt2spk is not None else "lines", name)
    ends = [0]  # cumulative line count after each group
    for group in groups:
        ends.append(ends[-1] + len(group))
    boundaries = [0]
    for k in range(1, num_chunks):
        target = k * len(lines) / num_chunks
        # leave at least one group for each of the remaining chunks
        low, high = boundaries[-1] + 1, len(groups) - (num_chunks - k)
        above = bisect.bisect_left(ends, target, low, high + 1)
        candidates = [b for b in (above - 1, above) if low <= b <= high]
        boundaries.append(min(candidates, key=lambda b: abs(ends[b] - target)))
    boundaries.append(len(groups))
    return [
        [line for group in groups[start:stop] for line in group]
        for start, stop in zip(boundaries[:-1], boundaries[1:])
    ]


def deal_into_chunks(lines: Sequence[str], num_chunks: int, name: str = "input") -> List[List[str]]:
    """Line i goes to chunk i mod ``num_chunks`` (order kept within a chunk).

    Balances parallel jobs when the cost per line drifts along the file (e.g. a key list
    sorted by speaker, whose languages differ in length); job outputs are merged by key.
    """
    _check_num_chunks(len(lines), num_chunks, "lines", name)
    return [list(lines[k::num_chunks]) for k in range(num_chunks)]


def _check_num_chunks(num_units: int, num_chunks: int, unit: str, name: str) -> None:
    if num_chunks < 1:
        raise TableError(f"number of parts must be at least 1, got {num_chunks}")
    if num_chunks > num_units:
        raise TableError(f"cannot split {num_units} {unit} of {name} into {num_chunks} parts")


def _group_lines(lines: Sequence[str], utt2spk: Dict[str, str], name: str) -> List[List[str]]:
    """Group consecutive lines by speaker; a speaker may not reappear later."""
    groups: List[List[str]] = []
    seen_speakers = set()
    previous = None
    for number, line in enumerate(lines, start=1):
        utt = line_key(line)
        if utt not in utt2spk:
            raise TableError(f"{name}: utterance '{utt}' (line {number}) is not in utt2spk")
        speaker = utt2spk[utt]
        if speaker != previous:
            if speaker in seen_speakers:
                raise TableError(
                    f"{name}: lines of speaker '{speaker}' are not contiguous "
                    f"(again at line {number}); sort the file by speaker"
                )
            seen_speakers.add(speaker)
            groups.append([])
            previous = speaker
        groups[-1].append(line)
    return groups


def filter_lines(
    lines: Sequence[str], ids: set, field: int = 1, exclude: bool = False, name: str = "input"
) -> List[str]:
    """Keep the lines whose ``field``-th (1-based) field is in ``ids`` (or not, if exclude)."""
    kept = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if len(fields) < field:
            raise TableError(f"{name}: line {number} has fewer than {field} fields")
        if (fields[field - 1] in ids) != exclude:
            kept.append(line)
    return kept


def utt2spk_to_spk2utt(lines: Sequence[str], name: str = "utt2spk") -> List[str]:
    """Group utterances per speaker, speakers in first-seen order."""
    speakers: Dict[str, List[str]] = {}
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if len(fields) != 2:
            raise TableError(f"{name}: line {number} should be '<utt> <spk>': '{line}'")
        speakers.setdefault(fields[1], []).append(fields[0])
    return [" ".join([spk] + utts) for spk, utts in speakers.items()]


def spk2utt_to_utt2spk(lines: Sequence[str], name: str = "spk2utt") -> List[str]:
    """Expand ``spk utt1 utt2 ...`` lines into ``utt spk`` lines."""
    result = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if len(fields) < 2:
            raise TableError(f"{name}: line {number} should be '<spk> <utt1> ...': '{line}'")
        result.extend(f"{utt} {fields[0]}" for utt in fields[1:])
    return result


def _read_utt2spk(path: str) -> Dict[str, str]:
    """Read an utt2spk file into a dict, rejecting malformed lines."""
    utt2spk = {}
    for number, line in enumerate(read_lines(path), start=1):
        utt, spk = split_key(line)
        if not utt or not spk or len(spk.split()) != 1:
            raise TableError(f"{path}: line {number} should be '<utt> <spk>': '{line}'")
        utt2spk[utt] = spk
    return utt2spk


def split_scp_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="split_scp.pl",
        description="Split an scp file into N contiguous parts whose line counts "
        "differ by at most one (order kept). N = number of output files.",
    )
    parser.add_argument("--utt2spk", metavar="FILE",
                        help="keep all utterances of a speaker in the same part")
    parser.add_argument("--interleave", action="store_true",
                        help="deal the lines round-robin (line i -> part i mod N) instead of "
                        "contiguous parts: balances jobs whose cost drifts along the file")
    parser.add_argument("-j", nargs=2, type=int, metavar=("N", "K"),
                        help="write only part K (0-based) of N to stdout")
    parser.add_argument("scp")
    parser.add_argument("outputs", nargs="*", metavar="out")
    args = parser.parse_args(argv)
    if args.j is not None:
        num_chunks, index = args.j
        if args.outputs or not 0 <= index < num_chunks:
            parser.error("-j N K takes no output files and needs 0 <= K < N")
    elif not args.outputs:
        parser.error("give at least one output file (or -j N K)")
    else:
        num_chunks = len(args.outputs)
    if args.interleave and args.utt2spk:
        parser.error("--interleave and --utt2spk exclude each other")
    if args.interleave:
        chunks = deal_into_chunks(read_lines(args.scp), num_chunks, name=args.scp)
    else:
        utt2spk = _read_utt2spk(args.utt2spk) if args.utt2spk else None
        chunks = split_into_chunks(read_lines(args.scp), num_chunks, utt2spk, name=args.scp)
    if args.j is not None:
        write_stdout(chunks[index])
    else:
        for path, chunk in zip(args.outputs, chunks):
            write_lines(path, chunk)


def filter_scp_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="filter_scp.pl",
        description="Print the lines of in.scp whose field FIELD is in the first column "
        "of idlist (keeping in.scp order).",
    )
    parser.add_argument("--exclude", action="store_true",
                        help="print the lines whose field is NOT in idlist")
    parser.add_argument("-f", type=int, default=1, metavar="FIELD",
                        help="1-based field of in.scp to look up (default 1)")
    parser.add_argument("idlist")
    parser.add_argument("scp", nargs="?", default="-", metavar="in.scp",
                        help="default: stdin")
    args = parser.parse_args(argv)
    if args.f < 1:
        parser.error("-f FIELD must be at least 1")
    ids = {fields[0] for fields in map(str.split, read_lines(args.idlist)) if fields}
    write_stdout(filter_lines(read_lines(args.scp), ids, args.f, args.exclude, name=args.scp))


def _conversion_main(argv: Sequence[str], prog: str, convert, description: str) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("input", nargs="?", default="-", help="default: stdin")
    args = parser.parse_args(argv)
    write_stdout(convert(read_lines(args.input), name=args.input))


TOOLS = {
    "split_scp.pl": split_scp_main,
    "filter_scp.pl": filter_scp_main,
    "utt2spk_to_spk2utt.pl": functools.partial(
        _conversion_main, prog="utt2spk_to_spk2utt.pl", convert=utt2spk_to_spk2utt,
        description="Convert utt2spk to spk2utt on stdout (speakers in first-seen order).",
    ),
    "spk2utt_to_utt2spk.pl": functools.partial(
        _conversion_main, prog="spk2utt_to_utt2spk.pl", convert=spk2utt_to_utt2spk,
        description="Convert spk2utt to utt2spk on stdout.",
    ),
}

if __name__ == "__main__":
    sys.exit(dispatch(TOOLS, "espnet2_ttt.utils.scp"))
