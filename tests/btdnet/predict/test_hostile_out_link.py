"""btdnet-predict with an --out that is a symbolic link to a folder elsewhere: refused in one
line with exit 2 before the model loads, and nothing is written into the link's target."""

from __future__ import annotations

import numpy as np
from PIL import Image

from btdnet.predict.cli import main


def test_an_out_folder_that_is_a_link_is_refused(tmp_path, capsys) -> None:
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    elsewhere, out = tmp_path / "elsewhere", tmp_path / "out"
    elsewhere.mkdir()
    out.symlink_to(elsewhere, target_is_directory=True)
    argv = ["--checkpoint", str(tmp_path / "no-model"), "--image", str(tmp_path / "a.png")]
    assert main([*argv, "--text", "the ship", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"btdnet-predict: error: {out}: is a symbolic link; refusing to write into it "
        "(remove the link)"
    ]  # the checkpoint (absent) was not reached: the folder is checked first
    assert list(elsewhere.iterdir()) == []
