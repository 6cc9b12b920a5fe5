"""Where the ISPRS files are, as the official archives unpack (datasets/README.md lists them).

The label archives (Vaihingen ``..._ground_truth_COMPLETE.zip`` and its ``_eroded_`` twin,
Potsdam ``5_Labels_all.zip`` and ``5_Labels_all_noBoundary.zip``) hold bare ``.tif`` files and no
folder. Unzipped "into one folder" they land at the root beside ``top/`` or ``2_Ortho_RGB/``; many
unzip tools instead create a folder named after the archive; tidy users make the documented
folders. Each file kind has an ordered list of accepted folders (relative to the root, ``"."``
the root itself): documented folders first, so when several hold the same tile the documented
one is used, and the check says which folders were used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

FILE_KINDS = ("image", "label", "eroded_label")
POTSDAM_IMAGE_DIRS = {"RGB": "2_Ortho_RGB", "IRRG": "3_Ortho_IRRG"}
VAIHINGEN_IMAGE_ARCHIVE = "ISPRS_semantic_labeling_Vaihingen"
VAIHINGEN_FOLDERS: dict[str, tuple[str, ...]] = {
    "image": ("top", f"{VAIHINGEN_IMAGE_ARCHIVE}/top"),
    "label": (
        "ground_truth",
        "gts_for_participants",  # training tiles only, from the image archive
        f"{VAIHINGEN_IMAGE_ARCHIVE}/gts_for_participants",
        ".",
        "ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE",
    ),
    "eroded_label": (
        "ground_truth_eroded",
        ".",
        "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE",
    ),
}
POTSDAM_LABEL_FOLDERS: dict[str, tuple[str, ...]] = {
    "label": ("5_Labels_all", ".", "5_Labels_all/5_Labels_all"),
    "eroded_label": (
        "5_Labels_all_noBoundary",
        ".",
        "5_Labels_all_noBoundary/5_Labels_all_noBoundary",
    ),
}
NEAR_MISS_DEPTH = 3  # folder levels under the root searched for a misplaced file


def accepted_folders(dataset: str, kind: str, image_mode: str) -> tuple[str, ...]:
    """The folders (relative to the root, in order of preference) that may hold ``kind``."""
    if kind not in FILE_KINDS:
        raise ValueError(f"unknown ISPRS file kind {kind!r}; expected one of {FILE_KINDS}")
    if dataset == "vaihingen":
        return VAIHINGEN_FOLDERS[kind]
    if dataset == "potsdam":
        if kind == "image":
            folder = POTSDAM_IMAGE_DIRS[image_mode]
            return (folder, f"{folder}/{folder}")  # the zip holds the folder; some tools nest it
        return POTSDAM_LABEL_FOLDERS[kind]
    raise ValueError(f"unknown ISPRS dataset {dataset!r}")


def _display(folder: str) -> str:
    return "the root" if folder == "." else f"{folder}/"


@dataclass
class IsprsLayout:
    """Finds the files of one ISPRS dataset under ``root`` in any accepted layout.

    Args:
        dataset: "vaihingen" or "potsdam".
        root: the folder the archives were unpacked into.
        image_mode: Potsdam "RGB" or "IRRG" (Vaihingen: "IRRG").
    """

    dataset: str
    root: Path
    image_mode: str
    _names: dict[str, list[Path]] | None = field(default=None, repr=False)

    def folders(self, kind: str) -> tuple[str, ...]:
        return accepted_folders(self.dataset, kind, self.image_mode)

    def candidates(self, kind: str, filename: str) -> list[Path]:
        """Every accepted location of ``filename``, preferred first (they need not exist)."""
        return [self.root / folder / filename for folder in self.folders(kind)]

    def locate(self, kind: str, filename: str) -> tuple[Path, list[Path]]:
        """(path to use, other accepted locations that hold the same file).

        The path is the first accepted location holding the file, else the documented one
        (the first), so a message about a missing file names where it should be.
        """
        present = [path for path in self.candidates(kind, filename) if path.is_file()]
        if not present:
            return self.candidates(kind, filename)[0], []
        return present[0], present[1:]

    def folder_of(self, path: Path) -> str:
        """``path``'s folder relative to the root, as listed in the accepted folders."""
        relative = path.parent.relative_to(self.root).as_posix()
        return relative or "."

    def image_folder(self) -> Path:
        """The first accepted image folder that exists (else the documented one)."""
        folders = [self.root / folder for folder in self.folders("image")]
        return next((folder for folder in folders if folder.is_dir()), folders[0])

    def _walk(self) -> Iterator[Path]:
        for directory, subdirs, files in os.walk(self.root):
            depth = len(Path(directory).relative_to(self.root).parts)
            subdirs[:] = (
                [d for d in subdirs if not d.startswith(".")] if depth < NEAR_MISS_DEPTH else []
            )
            for name in files:
                yield Path(directory) / name

    def near_misses(self, filename: str) -> list[Path]:
        """Files named ``filename`` under the root outside every accepted folder."""
        if self._names is None:
            self._names = {}
            for path in self._walk():
                self._names.setdefault(path.name, []).append(path)
        accepted = {
            (self.root / folder).resolve() for kind in FILE_KINDS for folder in self.folders(kind)
        }
        found = self._names.get(filename, [])
        return sorted(path for path in found if path.parent.resolve() not in accepted)

    def missing_detail(self, kind: str, filename: str) -> str:
        """'<kind> file not found; looked in ...; near miss ...' for a file no folder holds."""
        looked = ", ".join(_display(folder) for folder in self.folders(kind))
        text = f"{kind.replace('_', ' ')} file {filename} not found; looked in {looked}"
        misses = self.near_misses(filename)
        if misses:
            shown = ", ".join(str(path) for path in misses[:3])
            text += f"; a file of that name is at {shown} (move it into one of those folders)"
        return text


__all__ = ["FILE_KINDS", "POTSDAM_IMAGE_DIRS", "IsprsLayout", "accepted_folders"]
