"""The server tells clients a checkpoint's name, never its path on the server."""

from __future__ import annotations

import json

import pytest

from btdnet.serve.cli import public_checkpoint_name


def test_names_not_paths(tmp_path):
    run = tmp_path / "runs" / "rrsisd"
    (run / "checkpoints" / "best").mkdir(parents=True)
    (tmp_path / "my_model").mkdir()
    assert public_checkpoint_name(run / "checkpoints" / "best") == "rrsisd/best"
    assert public_checkpoint_name(str(tmp_path / "my_model")) == "my_model"
    assert public_checkpoint_name("someone/btdnet-tiny") == "someone/btdnet-tiny"  # a Hub id


def test_health_and_page_data_hold_no_server_path(checkpoint):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from btdnet.serve.app import create_app
    from btdnet.serve.cli import build_service

    service = build_service(str(checkpoint), device="cpu", amp="no", batch_size=2, max_queue=4)
    try:
        assert service.info["checkpoint"] == checkpoint.name
        with TestClient(create_app(service)) as client:
            health = client.get("/health")
        assert health.status_code == 200
        text = json.dumps(health.json())
        assert str(checkpoint) not in text and str(checkpoint.parent) not in text
        assert checkpoint.name in text
    finally:
        service.close()
