"""Load untrusted pickle files without letting them run code.

A pickle can only run code through globals: ``GLOBAL``/``STACK_GLOBAL`` opcodes resolved by
``Unpickler.find_class`` (the callable a ``__reduce__`` names, a class to instantiate) and
persistent ids resolved by ``persistent_load``. :class:`RestrictedUnpickler` refuses both, so
only what the pickle protocol builds by itself gets through: lists, dicts, tuples, str, bytes
(protocol 3+), int, float, bool, None, and sets (protocol 4+). That is all the referring
expression indexes (``refs(unc).p``) hold.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from btdnet.data.errors import DatasetError, UnsafePickleError


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global and every persistent id.

    ``source`` names the file in the error messages.
    """

    def __init__(self, stream: io.BufferedIOBase, source: str) -> None:
        # Python 2 pickles store text as byte strings; the referring indexes are UTF-8 text.
        super().__init__(stream, encoding="utf-8", errors="strict")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        """Refuse: a global is how a pickle reaches code (``os.system``, ``builtins.eval``...)."""
        raise UnsafePickleError(
            f"{self.source}: refused to load global '{module}.{name}'; this file is not a plain "
            "pickle of lists, dicts and scalars, so it was not loaded (nothing in it was run)"
        )

    def persistent_load(self, pid: Any) -> Any:
        """Refuse persistent ids (they too resolve to arbitrary objects)."""
        raise UnsafePickleError(
            f"{self.source}: refused persistent id {pid!r}; only plain pickles are loaded"
        )


def safe_load_pickle(path: str | Path) -> Any:
    """Load a pickle that may only hold plain containers and scalars.

    Raises :class:`UnsafePickleError` when the file asks for any global (nothing is imported or
    called), and :class:`DatasetError` when the file is missing or is not a valid pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    data = path.read_bytes()
    try:
        return RestrictedUnpickler(io.BytesIO(data), str(path)).load()
    except UnsafePickleError:
        raise
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: a text field is not UTF-8 ({exc})") from exc
    except Exception as exc:  # any other failure of the opcode machine means a broken file
        raise DatasetError(f"{path}: not a valid pickle ({type(exc).__name__}: {exc})") from exc
