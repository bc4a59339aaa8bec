"""``benchmarks/gpu_check.py --dry-run``: every section of the GPU check runs on the CPU with tiny shapes."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_prints_one_json_line_with_every_section():
    env = {"PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin",
           "OMP_NUM_THREADS": "2"}
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry-run"], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1
    res = json.loads(lines[0])
    assert res["dry_run"] and res["paper_preset_trains"]
    assert res["training"]["label"]["context"] == 77 and res["training"]["lego"]["context"] == 77 + 16 + 77
    assert res["plain_training"]["samples_per_s"] > 0 and res["enrichment"]["ours_pairs_per_s"] > 0
    assert res["generation"]["batch1"]["ours_s"] > 0 and res["generation"]["batch1"]["diffusers_eager_s"] > 0
    assert set(res["goals"]) == {"generation_vs_compiled_diffusers", "batch1_latency_s_max", "training_vs_plain",
                                 "enrichment_vs_hf_generate"}
    assert all(g["met"] is None for g in res["goals"].values())  # tiny CPU shapes judge nothing
