"""The tiny BTDNet learns a simple referring task: the mask marks the bright square."""

from __future__ import annotations

import pytest
import torch

from btdnet import build_model


def synthetic_samples(count: int, size: int, tokens: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    pixels = 0.3 * torch.randn(count, 3, size, size, generator=generator)
    targets = torch.zeros(count, size, size)
    for index in range(count):
        side = int(torch.randint(size // 5, size // 3, (1,), generator=generator))
        top, left = torch.randint(0, size - side, (2,), generator=generator).tolist()
        pixels[index, :, top : top + side, left : left + side] += 2.0
        targets[index, top : top + side, left : left + side] = 1
    ids = torch.zeros(count, tokens, dtype=torch.long)
    ids[:, :6] = torch.tensor(
        [101, 1996, 4408, 2675, 2406, 102]
    )  # "[CLS] the bright square ... [SEP]"
    mask = (ids != 0).long()
    return {"pixel_values": pixels, "input_ids": ids, "attention_mask": mask, "targets": targets}


@pytest.fixture
def one_thread():
    # Tiny tensors: one thread avoids OpenMP barriers, which crawl on a busy shared machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_tiny_model_fits_a_simple_task(one_thread) -> None:
    torch.manual_seed(0)
    model = build_model("tiny", pretrained=False, image_size=64).train()
    data = synthetic_samples(count=8, size=64, tokens=12)
    optimizer = torch.optim.AdamW(model.param_groups(weight_decay=0.01, lr=3e-3))
    history = []
    for step in range(30):
        batch = {k: v[(step % 2) * 4 : (step % 2) * 4 + 4] for k, v in data.items()}
        out = model(**batch)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        history.append({k: float(v.detach()) for k, v in out.losses.items()})
    start = sum(h["total"] for h in history[:2]) / 2
    end = sum(h["total"] for h in history[-4:]) / 4
    assert end < 0.5 * start
    main_start = sum(h["joint_ce"] for h in history[:2]) / 2
    main_end = sum(h["joint_ce"] for h in history[-4:]) / 4
    assert main_end < 0.5 * main_start

    model.eval()
    with torch.no_grad():
        out = model(data["pixel_values"], data["input_ids"], data["attention_mask"])
    predicted = out.target_logits[:, 0] > 0
    truth = data["targets"] > 0.5
    iou = (predicted & truth).sum() / (predicted | truth).sum()
    assert iou > 0.5
