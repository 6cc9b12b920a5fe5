"""BTDNet (tiny variant, random weights): shapes, gradients, switches, D-MOLS at inference."""

from __future__ import annotations

import pytest
import torch

from btdnet import BTDNetOutput, build_model
from btdnet.models.dmols import DualModalObjectLearning
from btdnet.models.variants import VARIANTS, variant_config


def make_batch(size: int, batch: int = 2, tokens: int = 12) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 3000, (batch, tokens), generator=generator)
    ids[:, 0] = 101
    mask = torch.ones(batch, tokens, dtype=torch.long)
    mask[-1, tokens // 2 :] = 0  # one padded expression
    ids[-1, tokens // 2 - 1] = 102
    ids[-1, tokens // 2 :] = 0
    targets = torch.zeros(batch, size, size)
    targets[:, size // 4 : size // 2, size // 3 : size // 2 + 8] = 1
    targets[-1] = 0  # an empty target
    return {
        "pixel_values": torch.randn(batch, 3, size, size, generator=generator),
        "input_ids": ids,
        "attention_mask": mask,
        "targets": targets,
    }


@pytest.mark.parametrize("size", [96, 160])
def test_output_shapes(size: int) -> None:
    torch.manual_seed(0)
    model = build_model("tiny", pretrained=False, image_size=size)
    batch = make_batch(size)
    out = model(**batch)
    assert isinstance(out, BTDNetOutput)
    assert out.target_logits.shape == (2, 1, size, size)
    assert out.background_logits.shape == (2, 1, size, size)
    assert [tuple(m.shape) for m in out.correlation_maps] == [
        (2, 1, size // s, size // s) for s in (4, 8, 16, 32)
    ]
    assert set(out.losses) == {
        "joint_ce", "dice", "target_stream", "background_stream", "agreement", "alignment",
        "dmols_visual", "dmols_language", "total",
    }  # fmt: skip
    assert all(torch.isfinite(v) for v in out.losses.values())
    assert out.loss is out.losses["total"]
    # the correlation maps are the BSC blocks' own, stage by stage (finest first)
    seen: list[torch.Tensor] = []
    hooks = [
        fusion.register_forward_hook(lambda m, i, o: seen.append(o.correlation))
        for fusion in model.fusions
    ]
    without = model.eval()(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
    for hook in hooks:
        hook.remove()
    assert len(seen) == 4 and all(a is b for a, b in zip(without.correlation_maps, seen))
    assert without.loss is None and without.losses == {}
    # each sample's answer is its own: the second sample alone gives the same logits and maps
    alone = model(batch["pixel_values"][1:], batch["input_ids"][1:], batch["attention_mask"][1:])
    torch.testing.assert_close(alone.target_logits[0], without.target_logits[1])
    torch.testing.assert_close(alone.background_logits[0], without.background_logits[1])
    for single, both in zip(alone.correlation_maps, without.correlation_maps):
        torch.testing.assert_close(single[0], both[1])
    # and the two samples' maps differ (other image, other text): no map is shared
    for both in without.correlation_maps:
        assert (both[0] - both[1]).abs().max() > 1e-4


def test_total_loss_uses_the_configured_weights() -> None:
    """The total is the sum of the terms weighted by the config (D-MOLS weights included), and
    the joint cross-entropy is that of the returned joint logits, recomputed here."""
    weights = {
        "joint_ce": 1.0,
        "dice": 0.25,
        "target_stream": 0.35,
        "background_stream": 0.45,
        "agreement": 0.15,
        "alignment": 0.05,
        "dmols_visual": 0.3,
        "dmols_language": 0.7,
    }
    overrides = {f"{name}_weight": w for name, w in weights.items() if name != "joint_ce"}
    overrides["background_weight"] = overrides.pop("background_stream_weight")
    torch.manual_seed(0)
    model = build_model("tiny", pretrained=False, image_size=96, **overrides)
    batch = make_batch(96)
    out = model(**batch)
    terms = {name: out.losses[name].item() for name in weights}
    assert all(value > 0 for value in terms.values()), terms
    total = sum(weights[name] * value for name, value in terms.items())
    assert out.losses["total"].item() == pytest.approx(total, rel=1e-5)
    # weighted 2-class CE of the joint logit: background 0.9, target 1.1
    probs = torch.sigmoid(out.target_logits[:, 0].double())
    truth = batch["targets"].double()
    pixel_w = 0.9 + 0.2 * truth
    ce = -(truth * probs.log() + (1 - truth) * (1 - probs).log())
    assert terms["joint_ce"] == pytest.approx(((pixel_w * ce).sum() / pixel_w.sum()).item(), 1e-4)


def test_joint_logit_is_target_minus_background() -> None:
    model = build_model("tiny", pretrained=False).eval()
    batch = make_batch(96)
    captured = {}
    model.decoder.register_forward_hook(lambda m, i, o: captured.setdefault("dec", o))
    out = model(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
    up = torch.nn.functional.interpolate
    t = up(captured["dec"].target_logits, size=(96, 96), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out.target_logits, t - out.background_logits)


@pytest.mark.parametrize(
    "reading",
    [
        {},
        {"bsc_reading": "language_first"},
        {"alignment_kind": "bce"},
        {"dmols_reconstruct": "features"},
    ],
)
def test_every_parameter_gets_a_gradient(reading: dict[str, str]) -> None:
    """Under every alternative reading too (distributed training needs every parameter used)."""
    torch.manual_seed(0)
    model = build_model("tiny", pretrained=False, **reading).train()
    out = model(**make_batch(96))
    assert "alignment" in out.losses and "dmols_language" in out.losses
    out.loss.backward()
    without = [n for n, p in model.named_parameters() if p.grad is None]
    assert without == []
    zero = [n for n, p in model.named_parameters() if not p.grad.abs().sum() > 0]
    assert zero == []
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def _count(model: torch.nn.Module, prefix: str = "") -> int:
    return sum(p.numel() for n, p in model.named_parameters() if n.startswith(prefix))


def test_switching_parts_off() -> None:
    full = build_model("tiny", pretrained=False)
    batch = make_batch(96)

    no_twin = build_model("tiny", pretrained=False, use_twin_stream=False)
    background = _count(full, "decoder.background_")
    assert background > 0 and _count(no_twin, "decoder.background_") == 0
    target_blocks = _count(full, "decoder.target_blocks") - _count(no_twin, "decoder.target_blocks")
    assert _count(full) - _count(no_twin) == background + target_blocks
    out = no_twin(**batch)
    assert "background_stream" not in out.losses and "agreement" not in out.losses
    torch.testing.assert_close(out.background_logits, -out.target_logits)

    no_bsc = build_model("tiny", pretrained=False, use_bsc=False)
    bidirectional = sum(
        _count(full, f"fusions.{i}.{part}")
        for i in range(4)
        for part in ("sentence_proj", "map_", "word_norm", "word_update")
    )
    assert bidirectional > 0 and _count(full) - _count(no_bsc) == bidirectional
    out = no_bsc(**batch)
    assert out.correlation_maps == [] and "alignment" not in out.losses

    no_dmols = build_model("tiny", pretrained=False, use_dmols=False)
    assert _count(full) - _count(no_dmols) == _count(full, "dmols.") > 0
    assert not any(k.startswith("dmols") for k in no_dmols(**batch).losses)

    no_align = build_model("tiny", pretrained=False, use_alignment_loss=False)
    assert _count(no_align) == _count(full)
    out = no_align(**batch)
    assert "alignment" not in out.losses and len(out.correlation_maps) == 4


def test_dmols_absent_at_inference(monkeypatch) -> None:
    model = build_model("tiny", pretrained=False)
    batch = make_batch(96)

    def fail(*args, **kwargs):
        raise AssertionError("D-MOLS must not run at inference")

    for name in ("mask_words", "visual_loss", "language_loss", "forward"):
        monkeypatch.setattr(DualModalObjectLearning, name, fail)
    out = model.eval()(**batch)  # eval with targets: validation losses, no D-MOLS
    assert "total" in out.losses and not any(k.startswith("dmols") for k in out.losses)

    inference = build_model("tiny", pretrained=False, training=False)
    assert inference.dmols is None
    assert not any(k.startswith("dmols.") for k in inference.state_dict())
    assert _count(model) - _count(inference) == _count(model, "dmols.")
    assert model.strip_training_heads().dmols is None
    out = model.train()(**batch)
    assert not any(k.startswith("dmols") for k in out.losses)


def test_readings_are_config_values_checked_by_name() -> None:
    language_first = build_model("tiny", pretrained=False, bsc_reading="language_first")
    assert all(f.language_first and f.update_words for f in language_first.fusions)
    features = build_model("tiny", pretrained=False, dmols_reconstruct="features")
    assert features.dmols is not None and features.dmols.reconstruct == "features"
    for field, value in [
        ("bsc_reading", "both"),
        ("alignment_kind", "l1"),
        ("dmols_reconstruct", "ids"),
    ]:
        with pytest.raises(ValueError, match=field):
            variant_config("tiny", **{field: value})


def test_bad_inputs_give_clear_errors() -> None:
    model = build_model("tiny", pretrained=False)
    batch = make_batch(96)
    with pytest.raises(ValueError, match="built for"):
        model(torch.randn(2, 3, 128, 128), batch["input_ids"], batch["attention_mask"])
    with pytest.raises(ValueError, match="attention_mask"):
        model(batch["pixel_values"], batch["input_ids"], batch["attention_mask"][:, :3])
    with pytest.raises(ValueError, match="targets"):
        model(**{**batch, "targets": batch["targets"][:, :10]})
    with pytest.raises(ValueError, match="unknown BTDNet variant"):
        build_model("huge", pretrained=False)
    with pytest.raises(ValueError, match="unknown overrides"):
        build_model("tiny", pretrained=False, use_magic=True)
    with pytest.raises(ValueError, match="multiple of 32"):
        build_model("tiny", pretrained=False, image_size=100)


def test_variants_table() -> None:
    assert {"paper", "small", "tiny", "demo"} <= set(VARIANTS)
    paper = variant_config("paper")
    assert paper.image_encoder == "swin_base_patch4_window12_384" and paper.image_size == 480
    assert paper.text_config["hidden_size"] == 768 and paper.text_encoder == "bert-base-uncased"
    assert variant_config("small").text_encoder is None  # the offline MiniLM


def test_tokenizer_is_lazy_and_matches_the_text_encoder() -> None:
    model = build_model("tiny", pretrained=False)
    assert model._tokenizer is None
    tokens = model.tokenizer("the grey vehicle at the left", padding="max_length", max_length=12)
    assert tokens["input_ids"][0] == 101 and len(tokens["input_ids"]) == 12
    assert model.tokenizer.mask_token_id == model.config.mask_token_id


def test_pretrained_text_encoder_offline() -> None:
    model = build_model("tiny", pretrained=True, training=False)
    assert model.text_encoder.hidden_size == 384  # the offline MiniLM replaced the tiny BERT
    assert model.config.text_config["num_hidden_layers"] == 6
    with pytest.raises(OSError, match="text_encoder=<local folder"):
        build_model("paper", pretrained=True)


def test_dmols_word_masking() -> None:
    model = build_model("tiny", pretrained=False)
    batch = make_batch(96, batch=3)
    torch.manual_seed(0)
    masked, selected = model.dmols.mask_words(batch["input_ids"], batch["attention_mask"])
    real = batch["attention_mask"].bool()
    assert selected.any(1).all()  # at least one word per sentence
    assert not (selected & ~real).any() and not selected[:, 0].any()  # never padding or [CLS]
    last = real.long().sum(1) - 1
    assert not selected[torch.arange(3), last].any()  # never the final [SEP]
    assert (masked[selected] == model.config.mask_token_id).all()
    assert torch.equal(masked[~selected], batch["input_ids"][~selected])

    # Two-token sentences have nothing to mask: the loss is zero but every head parameter is used.
    ids = torch.tensor([[101, 102, 0, 0]])
    _, none = model.dmols.mask_words(ids, (ids != 0).long())
    assert not none.any()
    loss = model.dmols.language_loss(
        masked_words=torch.randn(1, 4, 32),
        selected=none,
        input_ids=ids,
        region=torch.randn(1, 16),
        embeddings=model.text_encoder.word_embeddings,
    )
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert all(p.grad is not None for p in model.dmols.language.parameters())


def test_other_timm_backbone() -> None:
    model = build_model(
        "tiny", pretrained=False, image_encoder="convnext_atto", image_encoder_kwargs={}
    )
    batch = make_batch(96)
    out = model(**batch)
    assert out.target_logits.shape == (2, 1, 96, 96) and len(out.correlation_maps) == 4
    assert torch.isfinite(out.loss) and out.loss > 0
    # the backbone really reads the image: in eval mode, changing image 0 changes its answer
    # and leaves image 1's
    model.eval()
    with torch.no_grad():
        inputs = {k: batch[k] for k in ("pixel_values", "input_ids", "attention_mask")}
        before = model(**inputs).target_logits
        inputs["pixel_values"] = inputs["pixel_values"].clone()
        inputs["pixel_values"][0] = torch.randn_like(inputs["pixel_values"][0])
        after = model(**inputs).target_logits
    torch.testing.assert_close(after[1], before[1])
    assert (after[0] - before[0]).abs().max() > 1e-4


def test_trailing_padding_is_trimmed_without_changing_the_answer() -> None:
    from btdnet.models.text_encoder import trim_trailing_padding

    ids = torch.tensor([[101, 7, 102, 0, 0, 0], [101, 8, 9, 102, 0, 0]])
    mask = (ids != 0).long()
    short_ids, short_mask = trim_trailing_padding(ids, mask)
    assert short_ids.tolist() == [[101, 7, 102, 0], [101, 8, 9, 102]]
    assert short_mask.tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    empty = torch.zeros(2, 5, dtype=torch.long)
    assert trim_trailing_padding(empty, empty)[0].shape == (2, 1)

    torch.manual_seed(0)
    model = build_model("tiny", pretrained=False).eval()
    batch = make_batch(96, tokens=8)
    padded = {  # the same expressions with 9 more padding columns, as a longer max_tokens gives
        "input_ids": torch.cat([batch["input_ids"], torch.zeros(2, 9, dtype=torch.long)], 1),
        "attention_mask": torch.cat(
            [batch["attention_mask"], torch.zeros(2, 9, dtype=torch.long)], 1
        ),
    }
    with torch.no_grad():
        a = model(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
        b = model(batch["pixel_values"], padded["input_ids"], padded["attention_mask"])
    torch.testing.assert_close(b.target_logits, a.target_logits, rtol=1e-4, atol=1e-5)
    seen = []
    model.text_encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape))
    with torch.no_grad():
        model(batch["pixel_values"], padded["input_ids"], padded["attention_mask"])
    assert seen == [(2, 8)]  # the encoder never sees the padding-only columns


def test_inference_compiles_to_one_graph_with_padded_expressions() -> None:
    """No graph break (the padding trim is skipped under torch.compile), so one compiled
    graph serves every expression length."""
    torch.manual_seed(0)
    model = build_model("tiny", pretrained=False).eval()
    batch = make_batch(96)  # the second expression is padded
    explained = torch._dynamo.explain(model)(
        batch["pixel_values"], batch["input_ids"], batch["attention_mask"]
    )
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)


def test_the_auxiliary_twin_reading_answers_from_the_target_stream_alone() -> None:
    """Same weights, two readings: "joint" answers target - background, "auxiliary" the target
    stream; the background stream is still returned and still trained by its own loss."""
    size = 96
    torch.manual_seed(0)
    joint = build_model("tiny", pretrained=False, image_size=size, use_dmols=False).eval()
    torch.manual_seed(0)
    auxiliary = build_model(
        "tiny", pretrained=False, image_size=size, use_dmols=False, twin_reading="auxiliary"
    ).eval()
    auxiliary.load_state_dict(joint.state_dict())
    batch = make_batch(size)
    with torch.no_grad():
        a = joint(**batch)
        b = auxiliary(**batch)
    # joint = target - background, so the target stream alone is joint + background
    torch.testing.assert_close(b.target_logits, a.target_logits + a.background_logits)
    torch.testing.assert_close(b.background_logits, a.background_logits)
    assert b.losses["background_stream"] == a.losses["background_stream"]
    assert b.losses["joint_ce"] != a.losses["joint_ce"]
