import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # one thread is several times faster than two on the shared, oversubscribed 2-core machine
    torch.set_num_threads(1)
