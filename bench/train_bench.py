"""Trainer throughput: our explicit GPT on sve_kernels vs the same architecture in PyTorch eager (CPU),
and `jcorpus-train` on 1 vs 2 MPI ranks with its communication share.

    .venv/bin/python bench/train_bench.py [--models tiny,small] [--batch 4] [--seq-len 128] [--vocab 8000]
        [--steps 5] [--mpi] [--json OUT.json]

Both sides run forward + backward + AdamW on identical shapes with the same thread count
(sve_kernels.info()["threads"] → torch.set_num_threads). Times are medians over `--steps` after one warm-up step.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sve_kernels as K  # noqa: E402
from trainer_bridge.model import GPT, param_layout, resolve_config  # noqa: E402
from trainer_bridge.optim import AdamW  # noqa: E402


def ours_step(cfg, batch: int):
    """One training step of our model (forward + backward + AdamW) as a timed closure."""
    model = GPT(cfg, seed=0)
    opt = AdamW(model.num_params, model.decay_mask())
    rng = np.random.default_rng(0)

    def step() -> float:
        ids = rng.integers(0, cfg.vocab_size, size=(batch, cfg.seq_len + 1)).astype(np.int32)
        t0 = time.perf_counter()
        model.forward(ids[:, :-1], ids[:, 1:])
        model.backward(1.0 / ids[:, 1:].size)
        opt.step(model.params, model.grads, 1e-4)
        return time.perf_counter() - t0
    return step


def torch_step(cfg, batch: int, threads: int):
    """The same step in PyTorch eager, or None without torch."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    C, H, T = cfg.d_model, cfg.n_heads, cfg.seq_len

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = torch.nn.LayerNorm(C), torch.nn.LayerNorm(C)
            self.qkv, self.proj = torch.nn.Linear(C, 3 * C), torch.nn.Linear(C, C)
            self.fc, self.fcproj = torch.nn.Linear(C, 4 * C), torch.nn.Linear(4 * C, C)

        def forward(self, x):
            B = x.shape[0]
            q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in self.qkv(self.ln1(x)).split(C, -1))
            x = x + self.proj(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C))
            return x + self.fcproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = torch.nn.Embedding(cfg.vocab_size, C), torch.nn.Embedding(T, C)
            self.blocks = torch.nn.ModuleList(Block() for _ in range(cfg.n_layers))
            self.lnf = torch.nn.LayerNorm(C)

        def forward(self, ids, targets):
            x = self.wte(ids) + self.wpe.weight[:T]
            for blk in self.blocks:
                x = blk(x)
            logits = self.lnf(x) @ self.wte.weight.T
            return F.cross_entropy(logits.view(-1, cfg.vocab_size), targets.reshape(-1))

    net = Net()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    gen = torch.Generator().manual_seed(0)

    def step() -> float:
        ids = torch.randint(0, cfg.vocab_size, (batch, T + 1), generator=gen)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        net(ids[:, :-1], ids[:, 1:]).backward()
        opt.step()
        return time.perf_counter() - t0
    return step


def compare(cfg, batch: int, steps: int, threads: int) -> tuple[float, float | None]:
    """Median step seconds of both, alternating steps so a shared machine's load hits both alike."""
    ours, theirs = ours_step(cfg, batch), torch_step(cfg, batch, threads)
    ours()  # warm-up
    if theirs:
        theirs()
    t_ours, t_theirs = [], []
    for _ in range(steps):
        t_ours.append(ours())
        if theirs:
            t_theirs.append(theirs())
    return statistics.median(t_ours), statistics.median(t_theirs) if theirs else None


def bench_mpi(model: str, ranks: int, gb: int, seq_len: int, vocab: int, steps: int, *extra: str) -> dict:
    sys.path.insert(0, str(ROOT / "tests" / "trainer_bridge"))
    from test_train_mpi import write_shards

    with tempfile.TemporaryDirectory() as tmp:
        shards = write_shards(Path(tmp) / "shards", n_docs=600, vocab=vocab, seq_len=seq_len)
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
            p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p))
        mpiexec = Path(sys.executable).parent / "mpiexec"
        cmd = [str(mpiexec), "-n", str(ranks), sys.executable, "-m", "trainer_bridge.train", "--shards",
               str(shards), "--model", model, "--steps", str(steps + 1), "--global-batch", str(gb),
               "--out", f"{tmp}/run", "--log-every", "1000", "--ckpt-every", "100000", *extra]
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, timeout=1800)
        recs = [json.loads(ln) for ln in Path(f"{tmp}/run/metrics.jsonl").read_text().splitlines()][1:]
    total = sum(r["time_compute"] + r["time_comm"] + r["time_data"] for r in recs)
    return {"ranks": ranks, "allreduce": "blocking" if extra else "overlapped", "tokens_per_s": statistics.median(r["tokens_per_s"] for r in recs),
            "comm_share": sum(r["time_comm"] for r in recs) / total,
            "data_share": sum(r["time_data"] for r in recs) / total}


# A64FX (FX1000 node, 2.2 GHz) and Tofu-D figures from docs/trainer.md / research notes section C2.
A64FX = {"fp32_flops": 6.76e12, "fp16_flops": 13.5e12, "hbm_bytes_s": 1024e9}
TOFU = {"link_bytes_s": 6.8e9, "latency_s": 1.5e-6}
GEMM_EFF, HBM_EFF = 0.7, 0.8  # assumed: BLIS-class GEMM when compute-bound; streaming kernels vs HBM peak


def project_step(cfg, rows: int, nodes: int, precision: str = "fp32") -> dict:
    """Roofline time of one step on `nodes` A64FX nodes, each with `rows` sequences: GEMMs at
    min(peak, bandwidth × intensity), streaming kernels at HBM speed, ring allreduce on one Tofu-D link."""
    T, C, V, L, H = cfg.seq_len, cfg.d_model, cfg.vocab_size, cfg.n_layers, cfg.n_heads
    M, word = rows * T, 2 if precision == "fp16" else 4
    peak = A64FX[f"{precision}_flops"] * GEMM_EFF
    bw = A64FX["hbm_bytes_s"] * HBM_EFF

    def gemm(m: int, k: int, n: int, count: int = 1) -> tuple[float, float]:
        flops = 2.0 * m * k * n * count * 3  # forward + the two backward products
        bytes_ = word * (m * k + k * n + m * n) * count * 3
        return flops, max(flops / peak, bytes_ / bw)

    parts = [gemm(M, C, 3 * C), gemm(M, C, C), gemm(M, C, 4 * C), gemm(M, 4 * C, C)]
    parts += [gemm(T, C // H, T, rows * H), gemm(T, T, C // H, rows * H)]  # QK^T and PV per head
    layer_flops = sum(f for f, _ in parts)
    layer_time = sum(t for _, t in parts)
    head_flops, head_time = gemm(M, C, V)
    n_params = sum(int(np.prod(shape)) for _, shape in param_layout(cfg))
    stream_bytes = 4.0 * (L * (M * C * 16 + M * 4 * C * 5 + rows * H * T * T * 4) + M * V * 5) + 4.0 * 7 * n_params
    compute = L * layer_time + head_time + stream_bytes / bw
    grad_bytes = n_params * (2 if precision == "fp16" else 4)
    comm = 0.0 if nodes == 1 else (2 * (nodes - 1) / nodes * grad_bytes / TOFU["link_bytes_s"]
                                   + 2 * (nodes - 1) * (L + 1) * TOFU["latency_s"])
    return {"flops_per_token": (L * layer_flops + head_flops) / M, "compute_s": compute, "comm_s": comm,
            "tokens_per_s_node_no_overlap": M / (compute + comm), "tokens_per_s_node_overlap": M / max(compute, comm),
            "mfu": (L * layer_flops + head_flops) / (compute + comm) / A64FX[f"{precision}_flops"],
            "grad_mbytes": grad_bytes / 1e6}


def print_projection(vocab: int, seq_len: int, rows: int) -> list[dict]:
    out = []
    print(f"\nA64FX projection: vocab {vocab}, seq {seq_len}, {rows} rows per node per step "
          f"(GEMM {GEMM_EFF:.0%} of peak when compute-bound, streaming at {HBM_EFF:.0%} of 1024 GB/s)")
    print("| model | precision | nodes | GFLOP/token | step compute ms | allreduce ms | tok/s/node (no overlap) "
          "| tok/s/node (overlap) | MFU |\n|---|---|---|---|---|---|---|---|---|")
    for name in ("tiny", "small"):
        cfg = resolve_config(name, vocab, seq_len)
        for precision in ("fp32", "fp16"):
            for nodes in (1, 2, 16, 128):
                r = project_step(cfg, rows, nodes, precision)
                out.append(dict(r, model=name, precision=precision, nodes=nodes))
                print(f"| {name} | {precision} | {nodes} | {r['flops_per_token'] / 1e9:.3f} | "
                      f"{1e3 * r['compute_s']:.1f} | {1e3 * r['comm_s']:.2f} | "
                      f"{r['tokens_per_s_node_no_overlap']:,.0f} | {r['tokens_per_s_node_overlap']:,.0f} | "
                      f"{r['mfu']:.0%} |")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="tiny,small")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--mpi", action="store_true", help="also time jcorpus-train on 1 and 2 ranks (tiny)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--project-only", action="store_true", help="print only the A64FX/Tofu-D projection")
    ap.add_argument("--project-vocab", type=int, default=32000)
    ap.add_argument("--project-seq-len", type=int, default=1024)
    ap.add_argument("--project-rows", type=int, default=16, help="sequences per node per step")
    args = ap.parse_args(argv)
    if args.project_only:
        print_projection(args.project_vocab, args.project_seq_len, args.project_rows)
        return 0
    info = K.info()
    threads = int(info.get("threads") or 1)
    rows = []
    print(f"sve_kernels {info}; batch {args.batch} x seq {args.seq_len}, vocab {args.vocab}, {threads} thread(s)")
    print("| model | params | ours tok/s | PyTorch eager tok/s | ratio |\n|---|---|---|---|---|")
    for name in args.models.split(","):
        cfg = resolve_config(name, args.vocab, args.seq_len)
        tokens = args.batch * args.seq_len
        t_ours, t = compare(cfg, args.batch, args.steps, threads)
        ours, theirs = tokens / t_ours, (tokens / t if t else None)
        n = GPT(cfg).num_params
        rows.append({"model": name, "params": n, "ours_tok_s": ours, "torch_tok_s": theirs})
        print(f"| {name} | {n / 1e6:.2f}M | {ours:,.0f} | " + (f"{theirs:,.0f} | {ours / theirs:.2f}x |"
                                                              if theirs else "n/a | n/a |"), flush=True)
    result = {"info": info, "shapes": vars(args), "models": rows}
    if args.mpi:
        print("\n| ranks | allreduce | tok/s (tiny, global batch 8) | comm share | data share |\n"
              "|---|---|---|---|---|")
        result["mpi"] = []
        for ranks, extra in ((1, ()), (2, ()), (2, ("--no-overlap",))):
            r = bench_mpi("tiny", ranks, 8, args.seq_len, args.vocab, args.steps * 2, *extra)
            result["mpi"].append(r)
            print(f"| {ranks} | {r['allreduce']} | {r['tokens_per_s']:,.0f} | {100 * r['comm_share']:.1f}% | "
                  f"{100 * r['data_share']:.1f}% |", flush=True)
    result["projection"] = print_projection(args.project_vocab, args.project_seq_len, args.project_rows)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
