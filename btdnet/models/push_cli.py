"""Upload a checkpoint folder to the Hugging Face Hub with a generated model card.

    python scripts/push_to_hub.py --checkpoint runs/rrsisd/checkpoints/best \\
        --repo-id user/btdnet-rrsisd --run-dir runs/rrsisd
    python scripts/push_to_hub.py --checkpoint ... --repo-id ... --dry-run staged/   # no upload

Uploads config.json, model.safetensors and README.md (model card: variant, encoders, training
data and config, best metrics with split and protocol, license, usage). Log in first with
`hf auth login` or set HF_TOKEN.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from btdnet.models.hub import looks_like_repo_id, push_to_hub, stage_upload
from btdnet.models.serialization import CheckpointError

# A license id as the Hub's card metadata takes it: apache-2.0, mit, cc-by-nc-4.0, openrail++.
LICENSE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]{0,63}$")


def check_arguments(args: argparse.Namespace) -> str | None:
    """A problem with the arguments (one line), or None. Runs before any card is built: the
    license and repo id go into the card's YAML front matter and into paths."""
    if not LICENSE_ID.match(args.license):
        return (
            f"--license {args.license!r}: not a license id (letters, digits, '.', '-', '+'; "
            "e.g. apache-2.0, mit, cc-by-4.0)"
        )
    if not looks_like_repo_id(args.repo_id) or "@" in args.repo_id:
        return f"--repo-id {args.repo_id!r}: not a Hub repo id such as 'user/btdnet-rrsisd'"
    folder = args.dry_run
    if folder is not None and folder.is_symlink():
        return f"--dry-run {folder}: is a symbolic link; give a new or empty folder"
    if folder is not None and folder.exists() and not folder.is_dir():
        return f"--dry-run {folder}: is a file, not a folder; give a new or empty folder"
    return None


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="model folder")
    parser.add_argument("--repo-id", required=True, help="e.g. user/btdnet-rrsisd")
    parser.add_argument("--run-dir", type=Path, help="training run folder (card's metrics)")
    parser.add_argument("--license", default="apache-2.0", help="license id for the card")
    parser.add_argument(
        "--code-url",
        help="the toolkit's source URL for the card (https://...; default: the "
        "installed package's Project-URL, else 'not recorded')",
    )
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--dry-run", type=Path, metavar="DIR", help="write the files, no upload")
    args = parser.parse_args(argv)
    problem = check_arguments(args)
    if problem is not None:
        print(f"{parser.prog}: error: {problem}", file=sys.stderr)
        return 2
    try:
        if args.dry_run is not None:
            stage_upload(
                args.checkpoint,
                args.repo_id,
                args.dry_run,
                run_dir=args.run_dir,
                license_id=args.license,
                code_url=args.code_url,
            )
            print(args.dry_run)
        else:
            print(
                push_to_hub(
                    args.checkpoint,
                    args.repo_id,
                    run_dir=args.run_dir,
                    license_id=args.license,
                    code_url=args.code_url,
                    private=args.private,
                )
            )
    except (CheckpointError, ValueError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
