import os

# One BLAS thread per test process: small-matrix numpy is far slower when pools oversubscribe.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import random

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # with one xdist worker per core, intra-op threads only oversubscribe the machine
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same global seeds (tests still pass explicit seeds)."""
    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:  # pragma: no cover
        pass
    yield


@pytest.fixture
def isolated_registry():
    """Snapshot the claim registry; claims registered inside the test are removed after."""
    from lmech.claims import registry

    registry._discover()
    saved = dict(registry._REGISTRY)
    yield registry
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


# Hypothesis draws the same examples on every run under CI (a run that fails can be rerun
# and fails the same way); locally it explores new examples each time.
try:
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("ci", derandomize=True, print_blob=True)
    if os.environ.get("CI"):
        _hyp_settings.load_profile("ci")
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    pass
