"""The restricted unpickler admits plain data and refuses every global without running it."""

from __future__ import annotations

import os
import pickle

import pytest

from btdnet.data.errors import DatasetError, UnsafePickleError
from btdnet.data.safe_pickle import safe_load_pickle


class _RunsShell:
    """Unpickling this with the standard pickle module would run ``touch <marker>``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_refs_round_trip_every_protocol(tmp_path, protocol):
    refs = [
        {
            "ref_id": 7,
            "sentences": [{"raw": "the ship ", "tokens": ["the", "ship"], "sent_id": 3}],
            "split": "train",
            "bbox": (1.5, 2.0, 30.25, 40.0),
            "flag": True,
            "none": None,
            "big": 2**70,
        }
    ]
    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps(refs, protocol=protocol))
    assert safe_load_pickle(path) == refs


def test_bytes_and_sets_in_modern_protocols(tmp_path):
    path = tmp_path / "plain.p"
    path.write_bytes(pickle.dumps({"b": b"\x00\xff", "s": {1, 2}, "f": frozenset({3})}, 4))
    assert safe_load_pickle(path) == {"b": b"\x00\xff", "s": {1, 2}, "f": frozenset({3})}


def test_python2_byte_strings_decode_as_utf8(tmp_path):
    path = tmp_path / "py2.p"
    # protocol 2 SHORT_BINSTRING (a Python 2 str) holding "café" in UTF-8
    path.write_bytes(b"\x80\x02U\x05caf\xc3\xa9q\x00.")
    assert safe_load_pickle(path) == "café"


def test_reduce_to_os_system_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps([{"ref_id": 1}, _RunsShell(str(marker))], protocol=2))
    with pytest.raises(UnsafePickleError) as info:
        safe_load_pickle(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert f"'{os.system.__module__}.system'" in message  # posix.system on Linux
    assert not marker.exists()
    assert isinstance(info.value, DatasetError)


@pytest.mark.parametrize(
    ("payload", "refused"),
    [
        (b"cbuiltins\neval\n(S'1+1'\ntR.", "builtins.eval"),  # protocol 0 GLOBAL + REDUCE
        (b"\x80\x04\x8c\x08builtins\x8c\x04exec\x93.", "builtins.exec"),  # STACK_GLOBAL
        (b"\x80\x02cbuiltins\nset\n]\x85R.", "builtins.set"),  # even harmless globals
    ],
)
def test_any_global_is_refused_by_name(tmp_path, payload, refused):
    path = tmp_path / "evil.p"
    path.write_bytes(payload)
    with pytest.raises(UnsafePickleError, match=f"refused to load global '{refused}'"):
        safe_load_pickle(path)


def test_persistent_ids_are_refused(tmp_path):
    path = tmp_path / "persistent.p"
    path.write_bytes(b"Pfile:/etc/passwd\n.")
    with pytest.raises(UnsafePickleError, match="persistent id"):
        safe_load_pickle(path)


def test_truncated_pickle_is_a_dataset_error_naming_the_file(tmp_path):
    path = tmp_path / "cut.p"
    path.write_bytes(pickle.dumps([{"ref_id": 1, "split": "train"}], protocol=4)[:-6])
    with pytest.raises(DatasetError, match="not a valid pickle") as info:
        safe_load_pickle(path)
    assert not isinstance(info.value, UnsafePickleError)
    assert str(path) in str(info.value)


def test_missing_pickle_names_the_file(tmp_path):
    path = tmp_path / "rrsisd" / "refs(unc).p"
    with pytest.raises(DatasetError, match="file not found"):
        safe_load_pickle(path)


class _Getattr:
    """Pickles as ``getattr(obj, name)``: a global that looks harmless."""

    def __init__(self, obj, name: str) -> None:
        self.obj, self.name = obj, name

    def __call__(self, *args):  # pickle requires the reduce callable to be callable
        raise NotImplementedError

    def __reduce__(self):
        return (getattr, (self.obj, self.name))


class _Call:
    """Pickles as ``function(*args)`` where ``function`` is itself rebuilt from the pickle."""

    def __init__(self, function, args: tuple) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return (self.function, self.args)


def _eval_through_getattr(marker) -> bytes:
    """``getattr(getattr(getattr, '__self__'), 'eval')("open(marker, 'w').write('x')")``: the
    only global named in the file is ``builtins.getattr``; ``getattr.__self__`` is the builtins
    module, so an unpickler that lets getattr through has let eval through."""
    builtins_module = _Getattr(getattr, "__self__")
    evaluate = _Getattr(builtins_module, "eval")
    code = f"open({str(marker)!r}, 'w').write('x')"
    return pickle.dumps(_Call(evaluate, (code,)), protocol=4)


def test_getattr_is_refused_because_it_reaches_eval(tmp_path):
    marker = tmp_path / "pwned"
    payload = _eval_through_getattr(marker)
    # the payload is real: the standard unpickler writes the file
    pickle.loads(payload)
    assert marker.read_text() == "x"
    marker.unlink()
    path = tmp_path / "refs(unc).p"
    path.write_bytes(payload)
    with pytest.raises(UnsafePickleError, match=r"refused to load global 'builtins\.getattr'"):
        safe_load_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "name", ["getattr", "__import__", "open", "compile", "globals", "vars", "breakpoint"]
)
def test_builtins_that_reach_code_or_files_are_refused(tmp_path, name):
    path = tmp_path / "evil.p"
    path.write_bytes(f"cbuiltins\n{name}\n.".encode())  # protocol 0: push the global, stop
    with pytest.raises(UnsafePickleError, match=f"'builtins.{name}'"):
        safe_load_pickle(path)
