"""Toy trial functions for the sweep tests (importable by spawned and Ray workers).

``quadratic``: loss = floor(size) + curvature * (log2 lr - opt(size))^2 + noise, with
opt(size) = opt + drift * log2(size / base) and floor(size) = 1 + 1/sqrt(size), so the
optimum and its drift with size are known exactly and wider is better. Trials with
log2 lr > opt(size) + diverge_above report ``diverged``. Options: ``sleep`` (seconds),
``log`` (a file to which every execution appends one JSON line), ``fail_times`` with
``marker_dir`` (raise on the first n executions of a config), ``crash`` (kill the worker
process).
"""
from __future__ import annotations

import json
import math
import os
import time
import zlib

import numpy as np


def optimum(config: dict) -> float:
    size = float(config.get("width", config.get("depth", 1)))
    return config.get("opt", -8.0) + config.get("drift", 0.0) * math.log2(size / config.get("base", 64))


def _tag(config: dict) -> str:
    return json.dumps({k: config[k] for k in sorted(config) if k not in ("log", "marker_dir")}, sort_keys=True)


def quadratic(config: dict) -> dict:
    if config.get("log"):
        with open(config["log"], "a") as fh:
            fh.write(json.dumps({"pid": os.getpid(), "tag": _tag(config)}) + "\n")
    if config.get("sleep"):
        time.sleep(config["sleep"])
    if config.get("crash"):
        os._exit(7)
    if config.get("fail_times"):
        marker = os.path.join(config["marker_dir"], f"{zlib.crc32(_tag(config).encode())}.count")
        n = int(open(marker).read()) if os.path.exists(marker) else 0
        with open(marker, "w") as fh:
            fh.write(str(n + 1))
        if n < config["fail_times"]:
            raise RuntimeError(f"planned failure {n + 1} of {config['fail_times']}")
    size = float(config.get("width", config.get("depth", 1)))
    x = math.log2(config["lr"])
    opt = optimum(config)
    floor = 1.0 + 1.0 / math.sqrt(size)
    if x > opt + config.get("diverge_above", 3.0):
        return {"final_train_loss": float("nan"), "val_loss": float("inf"), "diverged": True,
                "train_curve": [floor + 10.0, float("nan")]}
    rng = np.random.default_rng([int(config.get("seed", 0)), int(size), int(round(x * 1000)) + 100_000])
    loss = floor + config.get("curvature", 0.05) * (x - opt) ** 2 + config.get("noise", 0.0) * rng.standard_normal()
    return {"final_train_loss": float(loss), "val_loss": float(loss) + 0.01, "diverged": False,
            "train_curve": [floor + 10.0, float(loss)]}


def returns_list(config: dict):
    return [1, 2, 3]
