import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True, scope="session")
def _private_generation_cache(tmp_path_factory):
    """`finetune eval` caches base-model clips; tests keep theirs out of the user's cache folder."""
    old = os.environ.get("FINETUNE_CACHE")
    os.environ["FINETUNE_CACHE"] = str(tmp_path_factory.mktemp("finetune-cache"))
    yield
    if old is None:
        os.environ.pop("FINETUNE_CACHE", None)
    else:
        os.environ["FINETUNE_CACHE"] = old


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def random_spd(rng: np.random.Generator, d: int, *, condition: float = 10.0) -> np.ndarray:
    """A random symmetric positive definite matrix with eigenvalues in [1, condition]."""
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (q * np.linspace(1.0, condition, d)) @ q.T


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one intra-op thread for a module: on two shared cores that is steadier than two fighting for them."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
