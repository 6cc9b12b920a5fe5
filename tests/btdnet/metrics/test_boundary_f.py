"""Boundary F-score (DAVIS's F): boundaries, matching within a disk, and hand-counted cases."""

from __future__ import annotations

import pytest
import torch

from btdnet.metrics.boundary import boundary_counts, boundary_f, mask_boundary, tolerance_pixels


def _square(top: int, left: int, side: int = 4, size: int = 10) -> torch.Tensor:
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[top : top + side, left : left + side] = True
    return mask


def test_the_boundary_is_the_ring_of_pixels_with_a_neighbour_outside():
    ring = mask_boundary(_square(2, 2))
    assert ring.sum() == 12  # a 4x4 square: its 12 outer pixels, not the 2x2 inside
    assert not ring[3:5, 3:5].any() and ring[2, 2:6].all() and ring[2:6, 5].all()
    # the image's edge is not a boundary: a mask filling the image has none
    assert mask_boundary(torch.ones(5, 7, dtype=torch.bool)).sum() == 0
    # a mask on the left edge has no boundary along that edge
    assert mask_boundary(_square(2, 0))[3:5, 0].sum() == 0
    assert mask_boundary(_square(2, 6))[3:5, 9].sum() == 0  # nor along the right edge
    assert mask_boundary(_square(2, 6)).sum() == 10


def test_a_shift_of_two_pixels_matches_two_thirds_at_radius_one():
    # Hand count: the squares at columns 2-5 and 4-7; of each 12-pixel ring, the 4 pixels
    # farther than one step from the other ring are unmatched (two corners and the two
    # pixels of the far side), so P = R = 8/12.
    counts = boundary_counts(_square(2, 2), _square(2, 4), radius=1)
    assert counts.tolist() == [[8, 12, 8, 12]]
    assert boundary_f(8, 12, 8, 12) == pytest.approx(2 / 3)
    # within two pixels every pixel matches
    assert boundary_counts(_square(2, 2), _square(2, 4), radius=2).tolist() == [[12, 12, 12, 12]]


def test_the_radius_is_a_disk_not_a_square():
    # (2,2) and (3,3) are diagonal neighbours: distance sqrt 2 > 1
    a = torch.zeros(7, 7, dtype=torch.bool)
    b = torch.zeros(7, 7, dtype=torch.bool)
    a[2, 2] = True
    b[3, 3] = True
    assert boundary_counts(a, b, radius=1).tolist() == [[0, 1, 0, 1]]
    assert boundary_counts(a, b, radius=2).tolist() == [[1, 1, 1, 1]]


def test_precision_and_recall_differ_when_one_outline_is_longer():
    # prediction: a 4x4 square; truth: the same square plus a far 2x2 square
    truth = _square(1, 1, size=12)
    truth[8:10, 8:10] = True
    counts = boundary_counts(_square(1, 1, size=12), truth, radius=1)
    assert counts.tolist() == [[12, 12, 12, 16]]  # P = 1, R = 12/16
    assert boundary_f(12, 12, 12, 16) == pytest.approx(2 * 0.75 / 1.75)


def test_empty_masks():
    empty = torch.zeros(6, 6, dtype=torch.bool)
    assert boundary_f(*boundary_counts(empty, empty)[0].tolist()) == 1.0
    assert boundary_f(*boundary_counts(empty, _square(1, 1, size=6))[0].tolist()) == 0.0
    assert boundary_f(*boundary_counts(_square(1, 1, size=6), empty)[0].tolist()) == 0.0


def test_batches_and_the_davis_radius():
    pred = torch.stack([_square(2, 2), _square(2, 2)])
    gt = torch.stack([_square(2, 2), _square(2, 4)])
    assert boundary_counts(pred, gt, radius=1).tolist() == [[12, 12, 12, 12], [8, 12, 8, 12]]
    assert tolerance_pixels(480, 480) == 6 and tolerance_pixels(320, 320) == 4
    with pytest.raises(ValueError, match="shapes differ"):
        boundary_counts(pred, gt[:, :7])
