"""Kernel benchmark on this host: portable C (sve_kernels, SVE_KERNELS_PATH=portable) against numpy at the
trainer's tiny and small shapes. Matmuls in GFLOP/s (also numpy BLAS, the default dispatch on x86), the
element-wise / row kernels in GB/s of compulsory traffic, next to this machine's copy bandwidth.

    .venv/bin/python bench/kernels_bench.py [--shapes tiny,small] [--repeat 5] [--json OUT.json]

Numbers are best-of-N wall times on a shared machine; OMP_NUM_THREADS decides the C threads."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import sve_kernels as sk  # noqa: E402

# rows = batch * seq_len tokens per step; model dims follow trainer_bridge/model.py
SHAPES = {
    "tiny": {"rows": 8 * 128, "C": 128, "H": 4, "L": 2, "B": 8, "T": 128, "V": 8000},
    "small": {"rows": 4 * 256, "C": 512, "H": 8, "L": 6, "B": 4, "T": 256, "V": 32000},
}


def best_time(fn, repeat: int) -> float:
    """Best of `repeat` runs after a warm-up; a call slower than 0.5 s is timed once (warm-up excluded)."""
    t0 = time.perf_counter()
    fn()
    best = float("inf")
    for _ in range(repeat if time.perf_counter() - t0 < 0.5 else 1):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def with_path(path: str, fn):
    def run():
        old = os.environ.get("SVE_KERNELS_PATH")
        os.environ["SVE_KERNELS_PATH"] = path
        try:
            return fn()
        finally:
            if old is None:
                del os.environ["SVE_KERNELS_PATH"]
            else:
                os.environ["SVE_KERNELS_PATH"] = old
    return run


def np_gelu(x):
    return 0.5 * x * (1.0 + np.tanh(np.float32(0.7978845608) * (x + np.float32(0.044715) * x * x * x)))


def np_layernorm(x, w, b):
    m = x.mean(1, keepdims=True)
    v = ((x - m) ** 2).mean(1, keepdims=True)
    return (x - m) / np.sqrt(v + np.float32(1e-5)) * w + b


def np_softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def copy_bandwidth(repeat: int) -> float:
    src = np.ones(32 << 20 >> 2, np.float32)  # 32 MiB, beyond the caches
    dst = np.empty_like(src)
    return 2 * src.nbytes / best_time(lambda: np.copyto(dst, src), repeat) / 1e9


def bench_shape(name: str, s: dict, repeat: int) -> list[dict]:
    rng = np.random.default_rng(0)
    n, c, v = s["rows"], s["C"], s["V"]
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    rows = []
    for label, oc, k in (("qkv", 3 * c, c), ("fc", 4 * c, c), ("proj", c, 4 * c), ("lm_head", v, c)):
        x, w, b, d = f32(n, k), f32(oc, k), f32(oc), f32(n, oc)
        flops = 2.0 * n * k * oc
        for path in ("portable", "blas"):
            fwd = best_time(with_path(path, lambda x=x, w=w, b=b: sk.matmul_forward(x, w, b)), repeat)
            bwd = best_time(with_path(path, lambda d=d, x=x, w=w: sk.matmul_backward(d, x, w)), repeat)
            rows.append({"shape": name, "kernel": f"matmul_{label} {n}x{k}x{oc}", "path": path,
                         "fwd_gflops": flops / fwd / 1e9, "bwd_gflops": 2 * flops / bwd / 1e9})
    x4, xc, w, b = f32(n, 4 * c), f32(n, c), f32(c), f32(c)
    logits, tg = f32(n, v), rng.integers(0, v, n).astype(np.int32)
    q = f32(s["B"], s["H"], s["T"], c // s["H"])
    p = f32(12 * c * c * s["L"] + v * c)  # all parameters: blocks + tied embedding
    g, m1, m2 = f32(p.size), np.zeros_like(p), np.zeros_like(p)
    elementwise = [  # name, C call, numpy call, bytes moved
        ("gelu_forward", lambda: sk.gelu_forward(x4), lambda: np_gelu(x4), 2 * x4.nbytes),
        ("gelu_backward", lambda: sk.gelu_backward(x4, x4), None, 3 * x4.nbytes),
        ("residual_forward", lambda: sk.residual_forward(xc, xc), lambda: xc + xc, 3 * xc.nbytes),
        ("layernorm_forward", lambda: sk.layernorm_forward(xc, w, b), lambda: np_layernorm(xc, w, b), 2 * xc.nbytes),
        ("softmax_forward", lambda: sk.softmax_forward(logits), lambda: np_softmax(logits), 2 * logits.nbytes),
        ("crossentropy_forward", lambda: sk.crossentropy_forward(logits, tg), None, 2 * logits.nbytes),
        ("attention_forward", lambda: sk.attention_forward(q, q, q), None, 4 * q.nbytes + q.nbytes * s["T"] // q.shape[3]),
        ("adamw_step", lambda: sk.adamw_step(p, g, m1, m2, lr=1e-3, beta1=0.9, beta2=0.95, eps=1e-8,
                                             weight_decay=0.1, step=1), None, 7 * p.nbytes),
        ("fp32_to_fp16", lambda: sk.fp32_to_fp16(xc), lambda: xc.astype(np.float16), xc.nbytes * 3 // 2),
    ]
    for label, c_call, np_call, nbytes in elementwise:
        t_c = best_time(with_path("portable", c_call), repeat)
        row = {"shape": name, "kernel": label, "path": "portable", "gbps": nbytes / t_c / 1e9, "ms": 1e3 * t_c}
        if np_call is not None:
            row["numpy_gbps"] = nbytes / best_time(np_call, repeat) / 1e9
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="tiny,small")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    info = {**sk.info(), "copy_gbps": copy_bandwidth(args.repeat)}
    print(f"# {info}")
    rows = []
    for name in args.shapes.split(","):
        if name not in SHAPES:
            ap.error(f"--shapes: unknown shape {name!r} (choose from {', '.join(SHAPES)})")
        rows += bench_shape(name, SHAPES[name], args.repeat)
    for r in rows:
        if "fwd_gflops" in r:
            print(f"{r['shape']:6} {r['kernel']:34} {r['path']:9} fwd {r['fwd_gflops']:7.1f} GF/s  "
                  f"bwd {r['bwd_gflops']:7.1f} GF/s")
        else:
            extra = f"  numpy {r['numpy_gbps']:6.1f} GB/s" if "numpy_gbps" in r else ""
            print(f"{r['shape']:6} {r['kernel']:34} {r['path']:9} {r['gbps']:7.1f} GB/s ({r['ms']:.2f} ms){extra}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"info": info, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
