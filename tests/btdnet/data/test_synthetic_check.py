"""The synthetic benchmark passes the RRSIS-D dataset check with no problem at all."""

from btdnet.data.check import check_referring_dataset, is_usable
from btdnet.data.synthetic import generate_synthetic_rrsisd


def test_synthetic_set_is_reported_clean(tmp_path):
    stats = generate_synthetic_rrsisd(
        tmp_path, train=5, val=2, test=3, size=96, seed=4, show_progress=False
    )
    report = check_referring_dataset("rrsisd", tmp_path, progress=False)
    assert report["problems"] == []
    assert is_usable(report)
    assert set(report["splits"]) == {"train", "val", "test"}
    assert [report["splits"][s]["images"] for s in ("train", "val", "test")] == [5, 2, 3]
    total = sum(split["samples"] for split in report["splits"].values())
    assert total == stats["samples"] > 0
