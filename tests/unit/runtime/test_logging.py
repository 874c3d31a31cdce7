"""Log lines never carry a stream token from a URL."""

import json
import logging

import pytest

from helpdesk_runtime.logging import (
    FailureStreak,
    broker_outage,
    configure_logging,
    get_logger,
)


@pytest.fixture(autouse=True)
def no_outage_open(capsys: pytest.CaptureFixture[str]) -> None:
    """The outage filter is process-wide: a real client in an earlier test of the same run
    may have left one open, which would hold back the lines these tests expect."""
    broker_outage.end()
    capsys.readouterr()


def test_an_access_line_with_a_stream_token_is_logged_without_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("tests", "INFO", "json")
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/1.1" %d',
        "127.0.0.1:5000", "GET", "/v1/stream?access_token=eyJhbGciOi.secret.sig&after=7", 200,
    )  # fmt: skip
    line = capsys.readouterr().err
    assert "secret" not in line
    assert "access_token=[redacted]&after=7" in line


def test_no_line_carries_an_email_address_or_a_search(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("tests", "INFO", "json")
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/1.1" %d', "127.0.0.1:5000", "GET",
        "/v1/customers?q=Maria%20Jensen&limit=5", 200,
    )  # fmt: skip
    get_logger("helpdesk.tests").warning(
        "message dead-lettered", reason="email 'maria.jensen@example.com' belongs to 'cus-1'"
    )
    try:
        raise ValueError("input_value='anna@example.org'")
    except ValueError:
        get_logger("helpdesk.tests").exception("failed")
    lines = capsys.readouterr().err
    for personal in ("Maria", "maria.jensen@example.com", "anna@example.org"):
        assert personal not in lines
    assert "q=[redacted]&limit=5" in lines
    assert "email '[email]' belongs to 'cus-1'" in lines


def test_a_broker_outage_is_logged_once_with_its_duration_when_it_ends(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("tests", "INFO", "json")
    client, app = logging.getLogger("aiokafka"), logging.getLogger("helpdesk.tests")
    client.warning("Heartbeat failed for group g: rebalancing")  # not an outage: kept
    for _ in range(500):  # the client's reconnect loop
        client.error("Unable connect to node with id 1: [Errno 111] Connect call failed")
        logging.getLogger("aiokafka.consumer.fetcher").error("Failed fetch messages from 1")
    app.warning("our own lines are never held back")
    broker_outage.end()
    broker_outage.end()  # only once
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == [
        "Heartbeat failed for group g: rebalancing",
        "kafka unreachable: Unable connect to node with id 1: [Errno 111] Connect call failed",
        "our own lines are never held back",
        "kafka reachable again",
    ]
    assert lines[-1]["log_lines_held_back"] == 999
    assert lines[-1]["outage_s"] >= 0
    assert not broker_outage.in_outage


def test_partition_leaders_elected_after_a_restart_are_one_outage_not_a_line_each(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("tests", "INFO", "json")
    producer = logging.getLogger("aiokafka.producer.sender")
    for partition in range(24):
        producer.warning(
            "Got error produce response on topic-partition TopicPartition(topic='t', "
            "partition=%d), retrying. Error: <class 'aiokafka.errors.NotLeaderForPartitionError'>",
            partition,
        )
    broker_outage.end()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert len(lines) == 2
    assert lines[0]["event"].startswith("kafka unreachable: Got error produce response")
    assert lines[1]["log_lines_held_back"] == 23


def test_a_failure_streak_is_logged_when_it_starts_now_and_then_and_when_it_ends(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("tests", "INFO", "json")
    streak = FailureStreak("outbox relay", every_s=3600)
    for _ in range(1000):
        streak.failed(OSError("connection refused"))
    streak.succeeded()
    streak.succeeded()  # nothing to say: it was not failing
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == [
        "outbox relay failing",
        "outbox relay working again",
    ]
    assert lines[0]["error"] == "OSError: connection refused"
    assert lines[1]["failed_attempts"] == 1000
