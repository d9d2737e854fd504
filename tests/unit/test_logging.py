"""The one log schema: JSON lines with the context fields, level and file from the settings,
daily rotation with a retention count."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from genhub.common import logging as glog
from genhub.common.settings import InfraSettings

SCHEMA = {
    "timestamp",
    "severity",
    "service",
    "logger",
    "message",
    "request_id",
    "task_id",
    "provider",
    "model",
    "error_class",
}


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, restored (handlers, level) after the test reconfigures it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def test_every_line_carries_the_schema_fields(
    root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    glog.configure_logging("dispatcher-demo", "INFO")
    log = logging.getLogger("genhub.test")
    token = glog.request_id.set("req-1")
    try:
        with glog.bind_task("task-1", "demo", "demo-image"):
            try:
                raise TimeoutError("provider took too long")
            except TimeoutError:
                log.exception("call failed", extra={"attempt": 2})
        log.info("after the task")
    finally:
        glog.request_id.reset(token)
    failed, after = lines(capsys)
    assert failed.keys() >= SCHEMA
    assert failed["service"] == "dispatcher-demo"
    assert failed["severity"] == "ERROR"
    assert failed["task_id"] == "task-1"
    assert failed["provider"] == "demo"
    assert failed["model"] == "demo-image"
    assert failed["error_class"] == "TimeoutError"
    assert failed["attempt"] == 2
    assert str(failed["timestamp"]).endswith("Z")
    # The task binding ends with its block; the request id stays.
    assert after["request_id"] == "req-1"
    assert "task_id" not in after and "provider" not in after


def test_level_comes_from_the_settings(
    root_logger: logging.Logger,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GENHUB_LOG_LEVEL", "warning")
    settings = InfraSettings()
    assert settings.log_level == "WARNING"
    glog.configure_logging("gateway", settings.log_level)
    logging.getLogger("genhub.test").info("hidden")
    logging.getLogger("genhub.test").warning("shown")
    assert [line["message"] for line in lines(capsys)] == ["shown"]


def test_an_unknown_level_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match="'LOUD' is not one of"):
        InfraSettings(log_level="LOUD")


def test_file_output_rotates_daily_and_keeps_the_retention(
    root_logger: logging.Logger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "logs" / "gateway.log"
    glog.configure_logging("gateway", "INFO", file=str(path), retention_days=2)
    rotating = [
        h for h in root_logger.handlers if isinstance(h, logging.handlers.TimedRotatingFileHandler)
    ]
    assert len(rotating) == 1
    handler = rotating[0]
    assert (handler.when, handler.backupCount, handler.utc) == ("MIDNIGHT", 2, True)
    logging.getLogger("genhub.test").info("to both")
    assert json.loads(path.read_text().splitlines()[0])["message"] == "to both"
    assert lines(capsys)[0]["message"] == "to both"
    # Three earlier days already rotated: rolling over keeps only the newest two backups.
    day = 24 * 3600
    for age in (3, 4, 5):
        old = path.with_name(
            f"gateway.log.{time.strftime('%Y-%m-%d', time.gmtime(time.time() - age * day))}"
        )
        old.write_text("{}\n")
        os.utime(old, (time.time() - age * day,) * 2)
    handler.doRollover()
    backups = sorted(p.name for p in path.parent.iterdir() if p.name != "gateway.log")
    assert len(backups) == 2
    assert path.exists()
