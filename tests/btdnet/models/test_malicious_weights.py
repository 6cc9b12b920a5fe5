"""Weight and training-state files are tensors only: a pickle that would run code is refused by
every loader, with one error naming the file, and nothing in it runs."""

from __future__ import annotations

import pytest
import torch

from btdnet.engine import checkpoints as ckpt
from btdnet.models.image_encoder import ImageEncoder
from btdnet.models.serialization import CheckpointError, read_state_dict


class _WritesFile:
    """Unpickled by an unrestricted loader, this writes ``marker`` (through ``builtins.exec``)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('x')",))


def _malicious_file(tmp_path, name: str):
    """A torch.save file holding real tensors and the payload; proves the payload works."""
    marker = tmp_path / "pwned"
    path = tmp_path / name
    torch.save({"model": {"weight": torch.zeros(2)}, "hook": _WritesFile(marker)}, path)
    torch.load(path, weights_only=False)  # what an unrestricted loader would do
    assert marker.read_text() == "x"
    marker.unlink()
    return path, marker


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".bin", ".ckpt"])
def test_read_state_dict_refuses_code_in_a_pickle(tmp_path, suffix):
    path, marker = _malicious_file(tmp_path, f"weights{suffix}")
    with pytest.raises(CheckpointError) as info:
        read_state_dict(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "weights_only" in message
    assert "\n" not in message.split(" (")[0]
    assert not marker.exists()


def test_image_encoder_pretrained_file_refuses_code(tmp_path):
    path, marker = _malicious_file(tmp_path, "swin.pth")
    encoder = ImageEncoder(
        "swin_tiny_patch4_window7_224", 96, embed_dim=16, depths=(1, 1, 1, 1),
        num_heads=(1, 1, 2, 2), window_size=3,
    )  # fmt: skip
    with pytest.raises(CheckpointError, match=str(path)):
        encoder.load_pretrained(path)
    assert not marker.exists()


def test_training_state_refuses_code(tmp_path):
    path, marker = _malicious_file(tmp_path, "optimizer.pt")
    with pytest.raises(ckpt.CheckpointError, match="cannot be read safely") as info:
        ckpt.load_tensors(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_plain_tensor_files_still_load(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save({"state_dict": {"a": torch.arange(3.0), "epoch": 4}}, path)
    state = read_state_dict(path)
    assert list(state) == ["a"] and state["a"].tolist() == [0.0, 1.0, 2.0]
    ckpt.save_tensors({"step": torch.tensor(7)}, tmp_path / "state.pt")
    assert ckpt.load_tensors(tmp_path / "state.pt")["step"].item() == 7
