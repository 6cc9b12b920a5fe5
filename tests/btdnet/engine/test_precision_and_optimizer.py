"""Mixed-precision resolution (``auto``) and the fused AdamW every task gets by default."""

import pytest
import torch

from btdnet.engine import accelerator
from btdnet.engine.accelerator import resolve_mixed_precision
from btdnet.engine.optimizer import build_adamw


@pytest.mark.parametrize(
    ("value", "expected"),
    [("no", "no"), (False, "no"), (None, "no"), ("none", "no"), ("fp16", "fp16")],
)
def test_explicit_values_pass_through(value, expected):
    assert resolve_mixed_precision(value, cpu=True) == expected


def test_auto_on_cpu_follows_native_bf16(monkeypatch):
    monkeypatch.setattr(accelerator, "cpu_has_native_bf16", lambda: False)
    assert resolve_mixed_precision("auto", cpu=True) == "no"
    monkeypatch.setattr(accelerator, "cpu_has_native_bf16", lambda: True)
    assert resolve_mixed_precision("auto", cpu=True) == "bf16"


def test_auto_on_gpu_prefers_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_mixed_precision("auto", cpu=False) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_mixed_precision("auto", cpu=False) == "fp16"


def test_unknown_value_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="'bf32' is not one of auto, no, bf16, fp16"):
        resolve_mixed_precision("bf32")


def test_native_bf16_reads_the_cpu_flags(monkeypatch, tmp_path):
    fake = tmp_path / "cpuinfo"
    monkeypatch.setattr(accelerator, "Path", lambda _: fake)
    for flags, expected in (("fpu avx2 avx512f", False), ("fpu avx512f avx512_bf16", True)):
        fake.write_text(f"flags\t\t: {flags}\n")
        accelerator.cpu_has_native_bf16.cache_clear()
        assert accelerator.cpu_has_native_bf16() is expected
    accelerator.cpu_has_native_bf16.cache_clear()


def test_build_adamw_is_fused_on_cpu_and_matches_the_reference_update():
    torch.manual_seed(0)
    weights = [torch.randn(7, 5), torch.randn(3)]
    grads = [torch.randn_like(w) for w in weights]
    results = []
    for fused in (True, False):
        params = [torch.nn.Parameter(w.clone()) for w in weights]
        opt = build_adamw(
            [{"params": params[:1]}, {"params": params[1:], "weight_decay": 0.0}],
            lr=0.1,
            weight_decay=0.05,
            fused=fused,
        )
        assert opt.defaults["fused"] is (True if fused else None)
        for _ in range(3):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            opt.step()
        results.append([p.detach() for p in params])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # AdamW's first step moves each weight by lr * sign(grad) (plus decay): the update is real.
    assert not torch.allclose(results[0][0], weights[0])


def test_build_adamw_falls_back_where_no_fused_kernel_exists(monkeypatch):
    real = torch.optim.AdamW

    def no_fused_kernel(params, **kwargs):
        if kwargs.get("fused"):
            raise RuntimeError("`fused=True` requires all the params to be on a supported device")
        return real(params, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", no_fused_kernel)
    opt = build_adamw([torch.nn.Parameter(torch.zeros(2))], lr=0.1, weight_decay=0.0)
    assert isinstance(opt, real)
    assert not opt.defaults["fused"]
