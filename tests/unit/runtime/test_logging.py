"""Log lines never carry a stream token from a URL."""

import logging

import pytest

from helpdesk_runtime.logging import configure_logging


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
