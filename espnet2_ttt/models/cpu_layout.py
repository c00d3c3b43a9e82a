"""CPU decoding: linear weights stored in the memory layout that MKL streams fastest.

A decoding step multiplies one (or a few) rows by every weight matrix, so on a CPU its time is
the time to stream the weights.  With PyTorch's MKL on a 2-core AMD EPYC, an ``[out, in]``
weight whose rows are short (``in < out``, e.g. a SwiGLU up-projection or the output layer)
streams at ~5 GB/s once the model no longer fits in cache, the same matrix stored ``[in, out]``
at ~16 GB/s.  :func:`relayout_linear_weights_for_cpu` stores such weights as the transpose of a
contiguous ``[in, out]`` tensor: values, shapes, ``Parameter`` objects and ``state_dict`` are
unchanged, ``F.linear`` then hands MKL the ``[in, out]`` matrix.  A bare one-token step gets
~1.3x faster, full-sequence forwards do not change; ``bench/decode.py`` prints the effect on a
whole decoding turn (1.06-1.20x at d256 x 4 in three runs).  On an Intel Xeon with AVX-512 the
same relayout makes whole turns 0.85-0.96x as fast, so
:func:`default_cpu_weight_layout` picks it on AMD CPUs only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import torch
import torch.nn as nn

CPU_WEIGHT_LAYOUTS = ("auto", "input_major", "as_trained")


def relayout_linear_weights_for_cpu(module: nn.Module) -> int:
    """Store every float32 CPU ``nn.Linear`` weight with ``out_features > in_features`` input-major.

    Other dtypes keep their layout: bfloat16 products do not go through MKL's float32 kernels
    (``bench/decode.py``'s bfloat16 turn took 5.2-5.4 s relaid against 1.5-2.2 s as trained).

    Only ``param.data`` is swapped (same Parameter object), so optimizers and tied weights (an
    output layer sharing the embedding) stay attached; a weight already stored that way is left
    alone (calling this twice changes nothing).  Returns the number of weights relaid.
    """
    done = 0
    with torch.no_grad():
        for linear in module.modules():
            w = linear.weight if isinstance(linear, nn.Linear) else None
            if w is None or w.device.type != "cpu" or w.dtype != torch.float32 or w.shape[0] <= w.shape[1] \
                    or w.t().is_contiguous():
                continue
            w.data = w.data.t().contiguous().t()
            done += 1
    return done


def default_cpu_weight_layout(cpuinfo: Union[str, Path] = "/proc/cpuinfo") -> str:
    """What ``cpu_weight_layout="auto"`` means on this machine: "input_major" when the CPU vendor
    in ``cpuinfo`` is AMD (the relayout was 1.03-1.23x faster per turn on the AMD EPYC box of the
    benchmarks), "as_trained" otherwise (slower on the Intel box; unmeasured elsewhere, where
    PyTorch's own layout is the safe choice).  Fixed per machine, never timed at run time, so
    the kernels a decode uses do not depend on timing noise."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return "as_trained"
    return "input_major" if "AuthenticAMD" in text else "as_trained"


def resolve_cpu_weight_layout(layout: str) -> str:
    """``layout`` checked against :data:`CPU_WEIGHT_LAYOUTS`, "auto" resolved for this machine."""
    if layout not in CPU_WEIGHT_LAYOUTS:
        raise ValueError(f"cpu_weight_layout must be one of {CPU_WEIGHT_LAYOUTS}, got {layout!r}")
    return default_cpu_weight_layout() if layout == "auto" else layout
