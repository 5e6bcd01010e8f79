"""`jackalope serve` as a real process: start, serve, clean shutdown, and the start-up errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ServeProcess, http_json, run_serve, start_serve


def get(url: str) -> object:
    return http_json(url)


def test_serve_prints_listeners_and_answers(serve: type[ServeProcess]) -> None:
    server = serve()
    assert server.urls["http"].startswith("http://127.0.0.1:")
    assert get(server.urls["http"] + "/api/health") == {"status": "ok"}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_clean_shutdown_on_signal_keeps_data(tmp_path: Path, sig: signal.Signals) -> None:
    data = tmp_path / "data"
    server = start_serve(data)
    url = server.urls["http"]
    http_json(url + "/api/kafka/topics/events", "PUT", {})
    records = {"records": [{"value": "one"}, {"value": "two"}]}
    http_json(url + "/api/kafka/topics/events/records", "POST", records)
    server.proc.send_signal(sig)
    assert server.proc.wait(20) == 0
    assert (data / "logs" / "topic%2Fevents%2F0" / "clean-shutdown").exists()
    again = start_serve(data)
    try:
        records = get(again.urls["http"] + "/api/kafka/topics/events/partitions/0/records?offset=0")
        assert [r["value"] for r in records["records"]] == ["one", "two"]  # type: ignore[index]
    finally:
        assert again.stop() == 0


def test_port_taken_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_serve("--data-dir", str(tmp_path / "d"), "--http-port", str(port))
    assert result.returncode != 0
    assert f"jackalope: error: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_locked_data_dir_is_refused(serve: type[ServeProcess], tmp_path: Path) -> None:
    first = serve(data_dir=tmp_path / "shared")
    result = run_serve("--data-dir", str(tmp_path / "shared"), "--http-port", "0")
    assert result.returncode != 0
    assert f"locked by another Jackalope process (pid {first.proc.pid})" in result.stderr
    assert "Traceback" not in result.stderr
    assert get(first.urls["http"] + "/api/health") == {"status": "ok"}  # the first one is unharmed


def test_unusable_data_dir_is_refused(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    result = run_serve("--data-dir", str(not_a_dir / "data"), "--http-port", "0")
    assert result.returncode != 0
    assert "jackalope: error: cannot create data directory" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_data_dir_is_refused(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    result = run_serve("--data-dir", str(ro), "--http-port", "0")
    assert result.returncode != 0
    assert "is not writable" in result.stderr


def test_damaged_producer_ids_file_is_a_one_line_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "producer-ids").write_text("not a number")
    result = run_serve("--data-dir", str(data), "--http-port", "0", "--amqp-port", "-1", "--kafka-port", "0")
    assert result.returncode == 1
    assert "producer-ids is damaged" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_is_a_usage_error(tmp_path: Path) -> None:
    result = run_serve("--data-dir", str(tmp_path), "--durability", "sometimes")
    assert result.returncode == 2
    assert "durability must be always, interval or never" in result.stderr


def test_help_documents_every_setting() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jackalope", "serve", "--help"], capture_output=True, text=True, timeout=30
    )
    from jackalope.settings import FIELDS

    # click folds the help to the terminal's width and breaks words longer than a line
    unfolded = "".join(line.strip() for line in result.stdout.splitlines())
    for name in FIELDS:
        assert "--" + name.replace("_", "-") in result.stdout
        assert "JACKALOPE_" + name.upper() in unfolded


def test_json_logs(serve: type[ServeProcess]) -> None:
    server = serve("--log-format", "json")
    started = [line for line in server.output if line.startswith("{")]
    entry = json.loads(started[0])
    assert entry["msg"] == "jackalope started"
    assert entry["level"] == "info"
    assert entry["http"] == server.urls["http"]
