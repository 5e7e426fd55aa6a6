"""Instruction mix of each SVE kernel's hot loop, read from the compiled code with aarch64-linux-gnu-objdump.

Compiles sve_kernels/src/*.c with -O3 -mcpu=a64fx, disassembles, and for every *_sve function (and the
OpenMP bodies outlined from it) takes the innermost backward-branch loop with the most SVE instructions,
then counts FMA-class, other FP, load, store, predicate and scalar instructions per iteration.
With --roofline it projects each streaming loop onto one A64FX core (2.2 GHz, 512-bit SVE): in-core cycles
per vector = max(instructions / 4 issue, FP-pipe ops / 2 pipes, loads / 2, stores / 1), against the core's
share of HBM2 (1024 GB/s / 48 cores). Feeds docs/a64fx.md:
    python sve_kernels/qemu/insn_mix.py [--roofline] [--cc aarch64-linux-gnu-gcc]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
FUNC = re.compile(r"^[0-9a-f]+ <(?P<name>[^>]+)>:$")
INSN = re.compile(r"^\s*(?P<addr>[0-9a-f]+):\s+(?P<op>\S+)\s*(?P<args>.*)$")
BRANCH = re.compile(r"^(b\.\w+|cbnz|cbz|tbnz|tbz)$")  # conditional: loops, not shared tails
CLASSES = [
    ("fma", re.compile(r"^(fmla|fmls|fmad|fmsb|fnmla|fnmls)$")),
    ("fp", re.compile(r"^(fadd|fsub|fsubr|fmul|fdiv|fdivr|fsqrt|fmax|fmin|fmaxnm|fminnm|fabs|fneg|fscale|frint\w|"
                      r"fcvt\w*|scvtf|ucvtf|fcm\w+|fexpa|frecp\w|frsqrt\w|fadda|faddv|fmaxv|fminv|fsel|sel|movprfx)$")),
    ("load", re.compile(r"^(ld1\w*|ldnt1\w*|ldff1\w*|ldr|ldp|ldur)$")),
    ("store", re.compile(r"^(st1\w*|stnt1\w*|str|stp|stur)$")),
    ("pred", re.compile(r"^(whilelt|whilelo|ptrue|pfalse|ptest|orr|and|bic|eor|nand|nor|brk\w+|cntp|incp|decp)$")),
]


def classify(op: str, args: str) -> str:
    for name, pat in CLASSES:
        if pat.match(op):
            if name == "pred" and not re.search(r"\bp\d+", args):
                return "scalar"  # integer orr/and on x registers
            return name
    return "scalar"


def hot_loops(objdump: str) -> dict[str, Counter]:
    funcs: dict[str, list[tuple[int, str, str]]] = {}
    current = None
    for line in objdump.splitlines():
        if m := FUNC.match(line):
            current = m["name"]
            funcs[current] = []
        elif current and (m := INSN.match(line)):
            funcs[current].append((int(m["addr"], 16), m["op"], m["args"]))
    result = {}
    for name, insns in funcs.items():
        if "_sve" not in name:
            continue
        loops = []  # (start, end) of every backward branch
        for addr, op, args in insns:
            target = re.search(r"\b([0-9a-f]+) <", args)
            if BRANCH.match(op) and target and int(target[1], 16) < addr:
                loops.append((int(target[1], 16), addr))
        best: Counter | None = None
        for start, end in loops:
            if any(start <= s2 and e2 < end for s2, e2 in loops if (s2, e2) != (start, end)):
                continue  # not innermost
            body = [(op2, a2) for a2_addr, op2, a2 in insns if start <= a2_addr <= end]
            mix = Counter(classify(o, a) for o, a in body)
            mix["total"] = len(body)
            vec = sum(1 for o, a in body if re.search(r"\bz\d+\.", a))
            if vec and (best is None or vec > best["vector"]):
                mix["vector"] = vec
                best = mix
        if best:
            result[name] = best
    return result


GHZ, LANES32, PEAK32, HBM_CORE = 2.2, 16, 140.8, 1024.0 / 48
# hot loop -> (elements per vector iteration at 512 bits, HBM bytes per element, flops per element, what)
STREAMS = {
    "ukernel_sve": (1, 0.0, 640.0, "matmul micro-kernel, one k step of a 10 x 32 tile (operands from L1/L2)"),
    "sk_residual_forward_sve._omp_fn.0": (16, 12, 1, "residual add"),
    "sk_gelu_forward_sve._omp_fn.0": (16, 8, 30, "GELU forward"),
    "sk_gelu_backward_sve._omp_fn.0": (16, 12, 40, "GELU backward"),
    "row_expsum_sve": (64, 8, 20, "softmax / cross-entropy exp pass (4 vectors per iteration)"),
    "row_max_sve": (64, 4, 1, "softmax row max (4 vectors per iteration)"),
    "row_sum_sve": (64, 4, 1, "row sum (layernorm mean, 4 vectors per iteration)"),
    "row_scale_sve": (16, 8, 1, "softmax normalise"),
    "sk_layernorm_forward_sve._omp_fn.0": (16, 8, 4, "layernorm normalise pass"),
    "sk_layernorm_backward_sve._omp_fn.1": (16, 12, 4, "layernorm dweight/dbias column pass"),
    "sk_adamw_step_sve._omp_fn.0": (16, 28, 15, "AdamW (param, grad, m, v in; param, m, v out)"),
    "sumsq_chunk_sve": (32, 4, 2, "sum of squares in float64 (4 x 8 lanes)"),
    "sk_fp32_to_fp16_sve": (16, 6, 1, "fp32 -> fp16 with overflow flag"),
    "sk_fp16_to_fp32_sve": (16, 6, 1, "fp16 -> fp32 with non-finite flag"),
    "sk_embedding_backward_sve._omp_fn.0": (16, 12, 1, "embedding scatter-add"),
    "dot_sve": (32, 0.0, 2, "attention q.k dot (2 vectors per iteration, L1)"),
    "axpy_sve": (16, 0.0, 2, "attention p.v / backward axpy (L1)"),
}


def roofline(mix: Counter, elems: int, nbytes: float, flops: float) -> tuple[float, float, float, str]:
    """(cycles per iteration, GB/s per core, % of FP32 peak, bound) for one core."""
    cycles = max(mix["total"] / 4, (mix["fma"] + mix["fp"]) / 2, mix["load"] / 2, float(mix["store"]), 1.0)
    elems_per_s = elems / cycles * GHZ * 1e9
    gbps_core = elems_per_s * nbytes / 1e9
    bound = "in-core"
    if nbytes and gbps_core > HBM_CORE:  # memory caps the element rate
        elems_per_s, gbps_core, bound = HBM_CORE * 1e9 / nbytes, HBM_CORE, "HBM"
    return cycles, gbps_core, 100.0 * elems_per_s * flops / (PEAK32 * 1e9), bound


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cc", default="aarch64-linux-gnu-gcc")
    ap.add_argument("--objdump", default="aarch64-linux-gnu-objdump")
    ap.add_argument("--cflags", default="-O3 -mcpu=a64fx -fno-trapping-math -fno-math-errno -fopenmp")
    ap.add_argument("--roofline", action="store_true", help="also print the per-core A64FX projection")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = {}
        for src in sorted(SRC.glob("*.c")):
            obj = Path(tmp) / (src.stem + ".o")
            subprocess.run([args.cc, *args.cflags.split(), "-std=c11", f"-I{SRC}", "-c", str(src), "-o", str(obj)],
                           check=True)
            dis = subprocess.run([args.objdump, "-d", "--no-show-raw-insn", str(obj)], check=True,
                                 capture_output=True, text=True).stdout
            rows.update(hot_loops(dis))
    print(f"{'function (hot loop)':44} {'insns':>5} {'fma':>4} {'fp':>4} {'load':>4} {'store':>5} {'pred':>4} {'scalar':>6}")
    for name, mix in sorted(rows.items()):
        print(f"{name:44} {mix['total']:5} {mix['fma']:4} {mix['fp']:4} {mix['load']:4} {mix['store']:5} "
              f"{mix['pred']:4} {mix['scalar']:6}")
    if args.roofline:
        print(f"\n{'hot loop':40} {'cyc/it':>6} {'B/elt':>5} {'GB/s/core':>9} {'%FP32':>6} {'bound':>7}  kernel")
        for name, (elems, nbytes, flops, what) in STREAMS.items():
            if name in rows:
                cyc, gbps, pct, bound = roofline(rows[name], elems, nbytes, flops)
                print(f"{name:40} {cyc:6.1f} {nbytes:5.0f} {gbps:9.1f} {pct:6.1f} {bound:>7}  {what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
