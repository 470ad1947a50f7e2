"""One torch thread: on the shared 2-core CI/dev machines two threads spin-wait and run ~10x slower."""

import torch

torch.set_num_threads(1)
