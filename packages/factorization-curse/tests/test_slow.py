"""Slow end-to-end checks: DDP through torchrun on 2 CPU processes (gloo), and the paper's
headline effect on a small retrieval task."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_torchrun_ddp_two_cpu_processes(tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
        "-m", "factorization_curse", "run", "--task", "retrieval", "--objective", "mlm-u",
        "--device", "cpu", "--quiet", "--quick", "--out", str(out),
        "--set", "steps=40", "--set", "n_items=30", "--set", "d_model=32", "--set", "n_layers=1",
        "--set", "batch_size=8", "--threads", "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["world_size"] == 2
    assert m["history"][-1]["ddp_max_param_diff"] == 0.0  # gradients were all-reduced
    assert m["history"][-1]["loss"] < m["history"][0]["loss"]
    assert 0 <= m["forward_accuracy"] <= 1 and 0 <= m["backward_accuracy"] <= 1
