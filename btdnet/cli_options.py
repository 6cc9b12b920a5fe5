"""The options every command shares, defined once: ``--checkpoint``/``--revision``,
``--device``, ``--amp``, ``--threads``, ``--progress/--no-progress``, ``--num-workers`` and
``--seed``.

Each ``add_*`` function adds one option to an ``argparse`` parser (or argument group) with the
same spelling, choices, default and help in every command. Kept free of torch: a command's
``--help`` does not import anything heavy.
"""

from __future__ import annotations

import argparse

from btdnet.precision import MIXED_PRECISION_CHOICES, canonical_precision

DEVICE_HELP = "auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N or mps"
AMP_HELP = (
    "mixed precision: no (float32), bf16, fp16 or auto (bf16 where the device computes it "
    "natively, else no); the words of training's train.mixed_precision; none means no"
)

ParserLike = argparse.ArgumentParser | argparse._ArgumentGroup


def positive_int(text: str) -> int:
    """``argparse`` type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """``argparse`` type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def amp_word(text: str) -> str:
    """``argparse`` type: a mixed-precision word (``none`` is read as ``no``)."""
    try:
        return canonical_precision(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_checkpoint_options(parser: ParserLike, *, hub_note: str) -> None:
    """``--checkpoint DIR|REPO`` (required) and ``--revision`` of the commands that load a
    BTDNet; ``hub_note`` says how that command reaches the Hub (in parentheses after the id)."""
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="DIR|REPO",
        help="BTDNet checkpoint folder (model.safetensors + config.json), or a Hugging Face "
        f"Hub repo id such as user/btdnet-rrsisd ({hub_note})",
    )
    parser.add_argument(
        "--revision",
        default=None,
        help="with a Hub repo id: the branch, tag or commit to load (default: main)",
    )


def add_device_option(parser: ParserLike, *, default: str = "auto") -> None:
    """``--device``: where the model runs (resolved by ``btdnet.predict.predictor``)."""
    parser.add_argument(
        "--device", default=default, metavar="DEVICE", help=f"{DEVICE_HELP} (default: {default})"
    )


def add_amp_option(parser: ParserLike, *, default: str = "no") -> None:
    """``--amp``: one of ``auto|no|bf16|fp16`` (``btdnet.precision``); ``none`` means ``no``."""
    parser.add_argument(
        "--amp",
        default=default,
        type=amp_word,
        choices=MIXED_PRECISION_CHOICES,
        help=f"{AMP_HELP} (default: {default})",
    )


def add_threads_option(parser: ParserLike, *, default: int | None = None) -> None:
    """``--threads N``: torch's CPU threads (None: torch's own choice)."""
    shown = "torch's choice, one per core" if default is None else str(default)
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=default,
        metavar="N",
        help=f"torch CPU threads; 1 gives steady timings on a busy machine (default: {shown})",
    )


def add_progress_option(parser: ParserLike) -> None:
    """``--progress/--no-progress``: progress bars on stderr (on by default); ``args.progress``."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="progress bars on stderr (default: on)",
    )


def add_num_workers_option(parser: ParserLike, *, default: int = 2) -> None:
    """``--num-workers N``: data-loader worker processes (0: load in the main process)."""
    parser.add_argument(
        "--num-workers",
        type=non_negative_int,
        default=default,
        metavar="N",
        help=f"data-loader worker processes, 0 loads in the main process (default: {default})",
    )


def add_seed_option(parser: ParserLike, *, default: int | None = 0, help: str = "") -> None:
    """``--seed N``: the random seed (``help``: what the command does with it, and its
    default when that is not a number)."""
    parser.add_argument(
        "--seed",
        type=int,
        default=default,
        metavar="N",
        help=help or f"random seed (default: {default})",
    )


def set_threads(threads: int | None) -> None:
    """Apply ``--threads`` to torch (nothing when None)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
