"""Ray backend: a local 2-CPU instance (loopback only), and a 2-node test cluster via --address.

Every test shuts down what it starts.
"""
import os

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # bind to 127.0.0.1; must precede `import ray`

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ray = pytest.importorskip("ray")

from lmech.sweep import RayExecutor, SweepSpec, run_sweep  # noqa: E402

pytestmark = pytest.mark.ray

TOY = "_toy_trials:quadratic"
TESTS = str(Path(__file__).resolve().parent)


def _spec():
    return SweepSpec(TOY, base={"noise": 0.01}, grid={"width": [64, 256], "lr": [2.0**-9, 2.0**-8, 2.0**-4.5],
                                                    "seed": [0, 1]})


def test_local_ray_instance_runs_a_sweep_and_shuts_down(tmp_path):
    assert not ray.is_initialized()
    spec = _spec()
    serial = run_sweep(spec, tmp_path / "serial", executor="inprocess", progress=False)
    ex = RayExecutor(num_cpus=2)
    try:
        run = run_sweep(spec, tmp_path / "ray", executor=ex, progress=False)
        assert ray.is_initialized()
        node_ips = {n["NodeManagerAddress"] for n in ray.nodes()}
        assert node_ips == {"127.0.0.1"}  # loopback only
        assert int(ray.cluster_resources()["CPU"]) == 2
    finally:
        ex.close()
    assert not ray.is_initialized()
    assert run.complete and run.counts["diverged"] == 4
    assert [t.result for t in run.trials] == [t.result for t in serial.trials]  # same numbers as in-process
    assert {t.worker["pid"] for t in run.trials} - {os.getpid()}
    # the toy module lives in tests/, which Ray workers only see through the executor's path hints
    assert TESTS not in os.environ.get("PYTHONPATH", "")


def test_ray_errors_are_recorded_and_resume_skips_finished(tmp_path):
    marker = tmp_path / "m"
    marker.mkdir()
    spec = SweepSpec(TOY, base={"fail_times": 1, "marker_dir": str(marker)}, grid={"width": [64], "lr": [0.01, 0.02]})
    with RayExecutor(num_cpus=2) as ex:
        run = run_sweep(spec, tmp_path, executor=ex, retries=0, progress=False)
        assert run.counts["error"] == 2 and "planned failure" in run.trials[0].error
        run = run_sweep(spec, tmp_path, executor=ex, retries=0, progress=False)
        assert run.complete and run.executed == 2
        assert run_sweep(spec, tmp_path, executor=ex, progress=False).executed == 0
    assert not ray.is_initialized()


@pytest.mark.slow
def test_cli_reaches_a_two_node_cluster_via_address(tmp_path, capsys):
    from ray.cluster_utils import Cluster

    from lmech.cli import main

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        out = tmp_path / "out"
        argv = ["transfer", "--model", "toy", "--scheme", "a", "--widths", "64", "128", "--lrs", "2^-9", "2^-8",
                "2^-7", "--seeds", "0", "1", "--trial", TOY, "--set", "sleep=0.2", "--out", str(out),
                "--address", cluster.address, "--no-progress", "--no-plot"]
        assert main(argv) == 0
        assert "12 trials: 12 done" in capsys.readouterr().out
        summary = json.loads((out / "summary.json").read_text())
        assert summary["complete"]
        from lmech.sweep import load_sweep

        nodes = {t.worker["ray_node"] for t in load_sweep(out).trials}
        assert len(nodes) == 2  # both nodes took trials
        assert not ray.is_initialized()  # the CLI disconnected from the cluster it did not start...
    finally:
        cluster.shutdown()  # ... and the test stops the cluster it started
