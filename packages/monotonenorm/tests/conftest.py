"""One torch thread: the tests run on a small, shared CPU where thread spin-waits cost more than they give."""

import torch

torch.set_num_threads(1)
