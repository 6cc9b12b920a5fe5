"""Text-prompted inference on one image at a time: :class:`Predictor` and :class:`Prediction`.

Usage::

    predictor = Predictor.from_pretrained("runs/rrsisd/checkpoints/best")
    predictor.set_image("scene.tif")            # path, PIL image or (H, W, 3) uint8 array
    cars = predictor.predict("the white car at the bottom left")
    many = predictor.predict(["the bridge", "the ship near the dock"])  # batched

What is computed once per image: BTDNet fuses language into every Swin stage (early fusion,
BSC), so no image feature exists independently of the text. :meth:`Predictor.set_image`
therefore caches the preprocessed pixel tensor on the device (resized as a whole to the
model's square input, bilinear, ImageNet-normalised, exactly as in training), and
:meth:`Predictor.predict` runs the whole network once per prompt, with many prompts batched
against the same image tensor. The image is never tiled: a referring expression may speak of
the whole scene ("the largest building in the upper half"). Probabilities are up-sampled
bilinearly from the model's resolution to the original size.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from btdnet.data.tokenize import tokenize_expression
from btdnet.data.transforms import image_to_tensor
from btdnet.engine.accelerator import resolve_mixed_precision
from btdnet.precision import MIXED_PRECISION_CHOICES, canonical_precision
from btdnet.presence import (
    check_presence_threshold,
    output_present,
    presence_probability,
    present_answer,
    resolve_presence_threshold,
)
from btdnet.raster.image_io import LoadedImage, bands_to_rgb, read_image
from btdnet.text import clean_expression

AMP_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TextTruncatedWarning(UserWarning):
    """A prompt had more tokens than the model takes and was cut."""


@dataclass
class Prediction:
    """The answer to one text prompt, at the image's original size.

    Attributes:
        text: the prompt as the model saw it (surrounding whitespace stripped).
        mask: bool (H, W), ``probability > 0.5``; empty when the answer is "no target".
        probability: float32 (H, W) in [0, 1], the sigmoid of the joint target logit,
            up-sampled bilinearly from the model's resolution.
        score: mean probability over the mask's pixels (how sure the model is of what it
            marked); 0.0 when the mask is empty.
        bbox: ``(x1, y1, x2, y2)`` pixel box of the mask, ``x1, y1`` inclusive and ``x2, y2``
            exclusive (so ``x2 - x1`` is the box width); ``None`` when the mask is empty.
        area: number of mask pixels.
        truncated: the prompt had more tokens than the model's limit and was cut.
        present: what the model can say about "the text refers to something in this image":
            True (a presence head said present AND the mask is not empty), False ("not found":
            the head said absent, or nothing was marked; the mask is empty whatever
            ``probability`` shows), or None for a model without a presence head, which cannot
            say absent: its mask is a best guess (``btdnet.presence.NO_PRESENCE_HEAD``).
            Never True with an empty mask.
        presence: the presence head's probability that the target is present, or None when
            the model has no presence head (``config.use_presence`` off).
        correlation: per image stage, the BSC sentence-to-pixel correlation map as a float32
            (h_i, w_i) sigmoid in [0, 1] at that stage's resolution (S/4 ... S/32 of the
            model's square input); empty when the model builds none.
    """

    text: str
    mask: np.ndarray
    probability: np.ndarray
    score: float
    bbox: tuple[int, int, int, int] | None
    area: int
    truncated: bool = False
    present: bool | None = None
    presence: float | None = None
    correlation: list[np.ndarray] = field(default_factory=list)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/``None`` -> CUDA, else MPS, else CPU; an explicit name must be available."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r} (use auto, cpu, cuda, cuda:N or mps)") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} requested but MPS is not available")
    return resolved


def _amp_dtype(amp: str | None, device: torch.device | None = None) -> torch.dtype | None:
    """The autocast dtype of a mixed-precision word (``btdnet.precision``), or None."""
    try:
        mode = canonical_precision(amp)
    except ValueError:
        choices = ", ".join(MIXED_PRECISION_CHOICES)
        raise ValueError(f"unknown amp mode {amp!r}; use one of {choices}") from None
    if mode == "auto":
        mode = resolve_mixed_precision(mode, cpu=device is None or device.type != "cuda")
    return AMP_DTYPES.get(mode)


def _input_side(image_size: Any) -> int:
    """The model's square input side from ``config.image_size`` (an int or equal pair)."""
    if isinstance(image_size, int):
        return image_size
    sides = [int(s) for s in image_size]
    if len(sides) != 2 or sides[0] != sides[1]:
        raise ValueError(f"the predictor needs a square model input, got image_size={image_size}")
    return sides[0]


def summarise(
    text: str,
    probability: np.ndarray,
    truncated: bool,
    *,
    present: bool | None = None,
    presence: float | None = None,
) -> Prediction:
    """Build a :class:`Prediction` from a float32 (H, W) probability map.

    ``present``: the presence head's answer, None for a model without one. False (the head
    said "no target") gives an empty mask, area 0, no box; True with nothing marked becomes
    False (:func:`present_answer`).
    """
    mask = (probability > 0.5) & (present is not False)  # (H, W)
    area = int(mask.sum())
    answer = present_answer(present, area)
    if area == 0:
        return Prediction(text, mask, probability, 0.0, None, 0, truncated, answer, presence)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    bbox = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    score = float(np.sum(probability, where=mask, dtype=np.float64) / area)  # no masked copy
    return Prediction(text, mask, probability, score, bbox, area, truncated, answer, presence)


def _source_index(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear (align_corners=False) source rows i0, i1 and weight of i1 per output row."""
    src = np.maximum((np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5, 0.0)
    low = np.minimum(src.astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    return low, high, (src - low).astype(np.float32)


def upsample_probability(small: np.ndarray, height: int, width: int, band: int = 512) -> np.ndarray:
    """(h, w) float32 probabilities -> (H, W) float32, bilinear like ``F.interpolate``.

    Separable and written row band by row band into one output array, so a large image costs
    one full-size float32 map (no full-size temporaries).
    """
    rows_low, rows_high, row_w = _source_index(height, small.shape[0])
    cols_low, cols_high, col_w = _source_index(width, small.shape[1])
    wide = small[:, cols_low] * (1.0 - col_w) + small[:, cols_high] * col_w  # (h, W)
    out = np.empty((height, width), dtype=np.float32)
    for top in range(0, height, band):
        r = slice(top, min(top + band, height))
        weight = row_w[r, None]  # (b, 1)
        out[r] = wide[rows_low[r]] * (1.0 - weight) + wide[rows_high[r]] * weight
    np.clip(out, 0.0, 1.0, out=out)
    return out


def _to_pil_rgb(image: np.ndarray | Image.Image | str | Path | LoadedImage) -> Image.Image:
    if isinstance(image, LoadedImage):
        return Image.fromarray(image.pixels)
    if isinstance(image, (str, Path)):
        return Image.fromarray(read_image(image).pixels)
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if isinstance(image, np.ndarray):
        array = image[:, :, None] if image.ndim == 2 else image  # (H, W, C)
        if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
            raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) array, got {image.shape}")
        if array.shape[0] < 1 or array.shape[1] < 1:
            raise ValueError(f"the image array is empty (shape {image.shape})")
        return Image.fromarray(bands_to_rgb(array.transpose(2, 0, 1)))
    raise TypeError(f"set_image takes a path, PIL image or numpy array, not {type(image).__name__}")


def _check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return int(batch_size)


def _token_count(tokenizer: Any, text: str) -> int:
    """Tokens of ``text`` with the special ones, without transformers' "longer than" warning
    (``tokenize`` would log it: it encodes without a length and with ``verbose`` on)."""
    return len(tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"])


class Predictor:
    """Segment what a text refers to in one image; many prompts per image.

    Args:
        model: a BTDNet (``config.image_size``, ``config.max_tokens``, ``tokenizer``, forward
            ``(pixel_values, input_ids, attention_mask) -> output.target_logits (B, 1, S, S)``).
        device: ``"auto"`` (CUDA, else MPS, else CPU) or a torch device name.
        amp: mixed precision of the forward pass, in the training vocabulary
            (``btdnet.precision``): ``"no"`` (also ``None``/``"none"``), ``"bf16"``,
            ``"fp16"`` or ``"auto"`` (bf16 where the device computes it natively).
        batch_size: prompts per forward pass in :meth:`predict`.
        presence_threshold: a presence probability below it answers "no target" (models with
            a presence head only); None: the model's ``config.presence_threshold`` (0.5).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        device: str | torch.device | None = "auto",
        amp: str | None = None,
        batch_size: int = 8,
        presence_threshold: float | None = None,
    ) -> None:
        _check_batch_size(batch_size)
        # The default of every call; a call's own ``presence_threshold=`` changes nothing here.
        self.presence_threshold = resolve_presence_threshold(presence_threshold, model)
        self.device = resolve_device(device)
        self.amp_dtype = _amp_dtype(amp, self.device)
        self.batch_size = batch_size
        self.model = model.to(self.device).eval()
        self.input_side = _input_side(model.config.image_size)
        self.max_tokens = int(model.config.max_tokens)
        self._pixel_values: torch.Tensor | None = None  # (1, 3, S, S) on the device
        self._original_size: tuple[int, int] | None = None

    @classmethod
    def from_pretrained(
        cls,
        checkpoint_dir: str | Path,
        *,
        device: str | torch.device | None = "auto",
        amp: str | None = None,
        batch_size: int = 8,
        presence_threshold: float | None = None,
        revision: str | None = None,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
    ) -> Predictor:
        """Load a BTDNet checkpoint folder (``model.safetensors`` + ``config.json``) or a
        Hugging Face Hub repo id (``owner/name``, through the Hugging Face cache; ``revision``,
        ``token`` and ``cache_dir`` as huggingface_hub takes them).

        Raises:
            CheckpointError: the folder is missing, has no weights, or holds another model.
            ValueError: the device is unknown or unavailable, or the amp mode is unknown.
        """
        resolved = resolve_device(device)  # refuse a bad device or amp mode before loading
        _amp_dtype(amp)
        from btdnet.models.variants import load_model  # the model code only when loading

        model = load_model(
            checkpoint_dir, training=False, revision=revision, token=token, cache_dir=cache_dir
        )
        return cls(
            model,
            device=resolved,
            amp=amp,
            batch_size=batch_size,
            presence_threshold=presence_threshold,
        )

    @property
    def has_presence_head(self) -> bool:
        """True when the model can answer "no target" (``Prediction.presence`` is a number)."""
        return getattr(self.model, "presence_head", None) is not None

    @property
    def original_size(self) -> tuple[int, int] | None:
        """(H, W) of the current image, ``None`` before :meth:`set_image`."""
        return self._original_size

    def set_image(self, image: np.ndarray | Image.Image | str | Path | LoadedImage) -> None:
        """Preprocess an image once for all following :meth:`predict` calls.

        Args:
            image: a file path (read with :func:`~btdnet.raster.image_io.read_image`), a PIL
                image, a :class:`~btdnet.raster.image_io.LoadedImage`, or an array (H, W),
                (H, W, 3) or (H, W, 4): uint8 used as is, other types stretched 2-98 percent.
        """
        rgb = _to_pil_rgb(image)
        if rgb.width < 1 or rgb.height < 1:
            raise ValueError(f"the image is empty ({rgb.width}x{rgb.height} pixels)")
        pixel_values = image_to_tensor(rgb, self.input_side)  # (3, S, S)
        self._pixel_values = pixel_values.unsqueeze(0).to(self.device)  # (1, 3, S, S)
        self._original_size = (rgb.height, rgb.width)

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, list[bool]]:
        """(N, T) token ids and attention masks of ``texts`` (cleaned), and which were cut.

        Warns:
            TextTruncatedWarning: a text had more tokens than ``config.max_tokens``.
        """
        tokenizer = self.model.tokenizer
        ids, masks, truncated = [], [], []
        for text in texts:
            count = _token_count(tokenizer, text)
            cut = count > self.max_tokens
            if cut:
                preview = text if len(text) <= 40 else text[:40].rstrip() + " ..."
                warnings.warn(
                    f"text {preview!r} has {count} tokens, more than the model's limit of "
                    f"{self.max_tokens}; it was truncated to {self.max_tokens} tokens",
                    TextTruncatedWarning,
                    stacklevel=3,
                )
            input_ids, attention_mask = tokenize_expression(tokenizer, text, self.max_tokens)
            ids.append(input_ids)
            masks.append(attention_mask)
            truncated.append(cut)
        return torch.stack(ids), torch.stack(masks), truncated  # (N, T), (N, T)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward pass's mixed-precision context (a no-op in float32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    @torch.inference_mode()
    def predict(
        self,
        text: str | Sequence[str],
        *,
        batch_size: int | None = None,
        presence_threshold: float | None = None,
    ) -> Prediction | list[Prediction]:
        """Segment what each text refers to in the current image.

        Args:
            text: one prompt, or a sequence of prompts (run ``batch_size`` at a time, each batch
                against the same image tensor).
            batch_size: overrides the predictor's batch size for this call.
            presence_threshold: overrides the predictor's presence threshold for this call
                (the predictor is not changed: concurrent calls do not see each other's).

        Returns:
            One :class:`Prediction` for a string, a list (same order) for a sequence.

        Raises:
            RuntimeError: no image was set.
            ValueError: a text is empty or only whitespace/invisible characters, or
                ``batch_size`` is below 1.
            TypeError: a text is not a string or ``batch_size`` not an int.

        Warns:
            TextTruncatedWarning: a text had more tokens than ``config.max_tokens``.
        """
        if self._pixel_values is None or self._original_size is None:
            raise RuntimeError("no image: call set_image(image) before predict(text)")
        single = isinstance(text, str)
        raw = [text] if single else list(text)
        texts = []
        for position, item in enumerate(raw):
            if not isinstance(item, str):
                raise TypeError(f"text {position} is a {type(item).__name__}, not a string")
            cleaned = clean_expression(item)
            if not cleaned:
                where = "the text" if single else f"text {position}"
                raise ValueError(
                    f"{where} is empty or invisible: give an expression such as 'the red roof'"
                )
            texts.append(cleaned)
        step = self.batch_size if batch_size is None else _check_batch_size(batch_size)
        threshold = (
            self.presence_threshold
            if presence_threshold is None
            else check_presence_threshold(presence_threshold)
        )
        if not texts:
            return []
        input_ids, attention_mask, truncated = self.tokenize(texts)
        height, width = self._original_size
        results: list[Prediction] = []
        for start in range(0, len(texts), step):
            ids = input_ids[start : start + step].to(self.device)  # (b, T)
            attention = attention_mask[start : start + step].to(self.device)  # (b, T)
            pixels = self._pixel_values.expand(ids.shape[0], -1, -1, -1)  # (b, 3, S, S)
            with self.autocast():
                output = self.model(pixels, ids, attention)
            probability = torch.sigmoid(output.target_logits.float())  # (b, 1, h, w)
            presence = presence_probability(output)  # (b,) or None
            present = output_present(output, threshold).cpu().tolist()  # b
            for offset in range(ids.shape[0]):
                index = start + offset
                small = probability[offset, 0].cpu().numpy()  # (h, w) float32
                prob_map = upsample_probability(small, height, width)  # (H, W)
                prediction = summarise(
                    texts[index],
                    prob_map,
                    truncated[index],
                    present=None if presence is None else bool(present[offset]),
                    presence=None if presence is None else float(presence[offset]),
                )
                prediction.correlation = [
                    torch.sigmoid(c[offset, 0].float()).cpu().numpy()  # (h_i, w_i)
                    for c in output.correlation_maps
                ]
                results.append(prediction)
        return results[0] if single else results

    def predict_scene(
        self,
        image: str | Path,
        text: str,
        out_dir: str | Path,
        *,
        tile: int | str = "auto",
        overlap: int | None = None,
        gsd: float | None = None,
        save_probability: bool = False,
        resume: bool = False,
        batch_size: int | None = None,
        name: str | None = None,
        progress: bool = False,
        on_tiles: Any = None,
        presence_threshold: float | None = None,
        vectors: Any = None,
        limits: dict[str, int | None] | None = None,
        bands: tuple[int, ...] | None = None,
        stretch: Any = None,
    ) -> Any:
        """Segment ``text`` over a whole scene tile by tile, writing the outputs as they come.

        See :func:`btdnet.predict.scene.predict_scene` and
        :class:`~btdnet.predict.scene.SceneOptions` for the arguments (``presence_threshold``:
        this call's, else the predictor's; ``vectors``: a
        :class:`~btdnet.predict.vectors.VectorOptions`, default WGS 84 GeoJSON; ``limits``:
        ``max_pixels`` / ``max_tiles`` other than the defaults, ``None`` for none; ``bands``,
        ``stretch``: :mod:`btdnet.raster.bands`, as for a whole image). Returns a
        :class:`~btdnet.predict.scene.SceneResult` (``record``: the JSON line; ``files``).
        """
        from btdnet.predict.scene.pipeline import SceneOptions, predict_scene

        options = SceneOptions(
            tile=tile,
            overlap=overlap,
            gsd=gsd,
            save_probability=save_probability,
            resume=resume,
            batch_size=batch_size,
            presence_threshold=presence_threshold,
            **({} if vectors is None else {"vectors": vectors}),
            **({} if stretch is None else {"stretch": stretch}),
            bands=bands,
            **(limits or {}),
        )
        return predict_scene(
            self,
            image,
            text,
            out_dir,
            name=name,
            options=options,
            progress=progress,
            on_tiles=on_tiles,
        )
