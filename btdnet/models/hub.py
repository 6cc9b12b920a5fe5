"""Models on the Hugging Face Hub: a repo id wherever a model folder is accepted, and upload.

:func:`resolve_model_source` turns a loader's argument into a local folder. An existing path
is used as it is. Anything else that has the form of a Hub repo id (``name`` or
``owner/name``) is fetched with ``huggingface_hub.snapshot_download`` (only ``config.json`` and
``model.safetensors``) with the caller's ``revision``, ``token`` and ``cache_dir``, as
``from_pretrained`` takes them in huggingface_hub and transformers. Files stay in the Hugging
Face cache (``HF_HOME`` / ``HF_HUB_CACHE``, or ``cache_dir``); under ``HF_HUB_OFFLINE=1`` the
cache is read without any network access. The older ``owner/name@revision`` form is still read
(as ``revision=``) with a FutureWarning. Every failure is one :class:`CheckpointError` line
naming the source.

:func:`push_to_hub` uploads a saved model folder with a generated model card (``README.md``,
see :mod:`btdnet.models.model_card`).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from btdnet.errors import one_line
from btdnet.models.model_card import model_card
from btdnet.models.serialization import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    read_model_config,
)

# Hub repo ids: an optional owner, a name (letters, digits, '-', '_', '.'), at most 96 chars.
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*(?:@[\w./-]+)?$")
CARD_NAME = "README.md"


def looks_like_repo_id(source: str) -> bool:
    """``owner/name``, ``name`` or ``owner/name@revision``, without '..' or '--' runs."""
    name = source.split("@", 1)[0]
    return (
        bool(_REPO_ID.match(source))
        and len(name) <= 96
        and ".." not in name
        and "--" not in name
        and not name.endswith((".", "-"))
    )


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


@dataclass(frozen=True)
class HubOptions:
    """Where and as whom a Hub repo is fetched: huggingface_hub's ``revision`` (branch, tag or
    commit; default ``main``), ``token`` (default: the one of ``hf auth login`` / ``HF_TOKEN``)
    and ``cache_dir`` (default: the Hugging Face cache)."""

    revision: str | None = None
    token: str | bool | None = None
    cache_dir: str | Path | None = None

    def given(self) -> bool:
        """True when any option is set (they apply to a repo id, never to a folder)."""
        return any(value is not None for value in (self.revision, self.token, self.cache_dir))


def download_model(
    repo_id: str,
    revision: str | None = None,
    *,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
) -> Path:
    """The local snapshot folder of a Hub model repo (from the cache when it is there)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = repo_id + (f"@{revision}" if revision else "")
    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            token=token,
            cache_dir=None if cache_dir is None else str(cache_dir),
            allow_patterns=[CONFIG_NAME, WEIGHTS_NAME],
        )
    except LocalEntryNotFoundError as error:
        reason = (
            "HF_HUB_OFFLINE is set and it is not in the Hugging Face cache"
            if _offline()
            else "it is not in the Hugging Face cache and the Hub cannot be reached"
        )
        raise CheckpointError(f"{where}: no such folder, and as a Hub repo id: {reason}") from error
    except (RepositoryNotFoundError, GatedRepoError) as error:
        raise CheckpointError(
            f"{where}: no such folder, and no model repo of that name on the Hugging Face Hub "
            "(or it is private or gated: log in with `hf auth login`)"
        ) from error
    except RevisionNotFoundError as error:
        raise CheckpointError(f"{where}: the Hub repo has no revision {revision!r}") from error
    except (HfHubHTTPError, OSError) as error:
        detail = one_line(str(error), first=True)
        raise CheckpointError(
            f"{where}: cannot download from the Hub ({type(error).__name__}: {detail})"
        ) from error
    return Path(folder)


def split_revision(source: str, revision: str | None) -> tuple[str, str | None]:
    """``(repo_id, revision)`` of a repo id that may end in the older ``@revision`` form: read
    as ``revision=`` with a FutureWarning; refused when it contradicts ``revision``."""
    repo_id, at, suffix = source.partition("@")
    if not at:
        return source, revision
    if revision is not None and revision != suffix:
        raise CheckpointError(
            f"{source}: revision {suffix!r} in the id and revision={revision!r}; give one "
            "(revision=, or --revision on the command line)"
        )
    warnings.warn(
        f"{source}: the 'owner/name@revision' form is read as revision={suffix!r}; pass "
        f"{repo_id!r} with revision={suffix!r} instead (the @ form will go)",
        FutureWarning,
        stacklevel=3,
    )
    return repo_id, suffix or None


def resolve_model_source(
    source: str | Path,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
) -> Path:
    """A local model folder for ``source``: the path itself, or a Hub repo's snapshot fetched
    with ``revision``, ``token`` and ``cache_dir`` (:class:`HubOptions`).

    A :class:`~pathlib.Path`, an existing path, or a string that is not shaped like a repo id
    is returned as a path (the loader then reports what is wrong with it); the Hub options are
    refused for it, since a folder has no revision.
    """
    options = HubOptions(revision, token, cache_dir)
    if isinstance(source, Path) or Path(source).exists() or not looks_like_repo_id(source):
        if options.given():
            raise CheckpointError(
                f"{source}: a local folder; revision=, token= and cache_dir= apply to a "
                "Hugging Face Hub repo id"
            )
        return Path(source)
    repo_id, revision = split_revision(source, revision)
    return download_model(repo_id, revision, token=token, cache_dir=cache_dir)


def stage_upload(
    model_dir: str | Path,
    repo_id: str,
    target: str | Path,
    *,
    run_dir: str | Path | None = None,
    license_id: str = "apache-2.0",
    code_url: str | None = None,
) -> Path:
    """Write what :func:`push_to_hub` uploads into the empty or new folder ``target``:
    ``config.json``, ``model.safetensors`` and the generated ``README.md``."""
    source = Path(model_dir)
    read_model_config(source)  # one line naming the folder when it is not a model folder
    if not (source / WEIGHTS_NAME).is_file():
        raise CheckpointError(f"{source}: no {WEIGHTS_NAME} (the model weights) in the folder")
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise CheckpointError(f"{target}: not empty; give a new or empty folder")
    target.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        shutil.copyfile(source / name, target / name)
    card = model_card(source, repo_id, run_dir=run_dir, license_id=license_id, code_url=code_url)
    (target / CARD_NAME).write_text(card, encoding="utf-8")
    return target


def push_to_hub(
    model_dir: str | Path,
    repo_id: str,
    *,
    run_dir: str | Path | None = None,
    license_id: str = "apache-2.0",
    code_url: str | None = None,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload btdnet model",
    api: Any = None,
) -> str:
    """Create ``repo_id`` (if needed) and upload config.json, model.safetensors and README.md.

    Args:
        model_dir: a folder written by ``save_pretrained`` (BTDNet or BiCoR-Seg).
        run_dir: the training run's output folder, for the card's data, recipe and metrics.
        code_url: the toolkit's source URL for the card (default: the package metadata's).
        api: a ``huggingface_hub.HfApi`` (default: a new one with ``token``).

    Returns:
        The URL of the commit.
    """
    if not looks_like_repo_id(repo_id) or "@" in repo_id:
        raise ValueError(f"{repo_id!r} is not a Hub repo id such as 'user/btdnet-rrsisd'")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="btdnet-hub-") as folder:
        staged = stage_upload(
            model_dir,
            repo_id,
            Path(folder) / "upload",
            run_dir=run_dir,
            license_id=license_id,
            code_url=code_url,
        )
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=staged,
            repo_type="model",
            commit_message=commit_message,
        )
    return str(getattr(commit, "commit_url", commit))


def push_model_to_hub(model: Any, repo_id: str, **kwargs: Any) -> str:
    """Save a built model (anything with ``save_pretrained``) and :func:`push_to_hub` it."""
    with tempfile.TemporaryDirectory(prefix="btdnet-save-") as folder:
        model.save_pretrained(folder)
        return push_to_hub(folder, repo_id, **kwargs)
