import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tests are small: one intra-op thread avoids OpenMP oversubscription when the suite's own
# subprocesses (CLI runs, 2-process launches) share the machine's cores with it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A random-weight tiny BTDNet checkpoint folder (shared by predictor and CLI tests)."""
    from btdnet.models import build_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_checkpoint")
    build_model("tiny", pretrained=False).save_pretrained(folder)
    return folder
