import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def one_thread():
    """For modules of tiny networks: extra threads only add overhead (a lot, on a busy CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def smooth_depth(batch: int, size: int, amplitude: float = 0.06, coarse: int = 5,
                 seed: int = 0) -> torch.Tensor:
    """Random smooth depth maps in [0.9, 1.1]: bicubic upsampling of coarse noise."""
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(batch, 1, coarse, coarse, generator=g).tanh() * amplitude + 1.0
    d = torch.nn.functional.interpolate(c, size=(size, size), mode="bicubic", align_corners=True)
    return d[:, 0].clamp(0.9, 1.1)
