"""KAFKA_SECURITY_PROTOCOL and the settings after it become one security object, given to
FastStream's broker and translated by FastStream for our own aiokafka clients alike."""

import ssl
from typing import Any

import certifi
import pytest
from pydantic import ValidationError

from helpdesk_runtime.kafka import client_options, kafka_security
from helpdesk_runtime.settings import ServiceSettings


def _settings(**values: Any) -> ServiceSettings:
    return ServiceSettings(service_name="svc", **values)


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    assert kafka_security(_settings()) is None
    assert client_options(None) == {}


def test_scram_over_tls_with_the_clusters_ca() -> None:
    certificate = certifi.where()  # any file of PEM certificates loads as the CA here
    settings = _settings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_username="sla",
        kafka_sasl_password="s3cret", kafka_ssl_cafile=certificate,
    )  # fmt: skip
    options = client_options(kafka_security(settings))
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("sla", "s3cret")
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
def test_other_sasl_mechanisms_without_tls(mechanism: str) -> None:
    settings = _settings(
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="sla", kafka_sasl_password="s3cret",
    )  # fmt: skip
    options = client_options(kafka_security(settings))
    assert (options["security_protocol"], options["sasl_mechanism"]) == (
        "SASL_PLAINTEXT", mechanism,
    )  # fmt: skip


def test_tls_alone() -> None:
    options = client_options(kafka_security(_settings(kafka_security_protocol="SSL")))
    assert options["security_protocol"] == "SSL"
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_sasl_without_credentials_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        _settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="sla")
    with pytest.raises(ValidationError, match="kafka_security_protocol"):
        _settings(kafka_security_protocol="SASL")


def test_a_missing_ca_file_is_named_at_start_up() -> None:
    settings = _settings(kafka_security_protocol="SSL", kafka_ssl_cafile="/nowhere/ca.crt")
    with pytest.raises(ValueError, match=r"KAFKA_SSL_CAFILE=/nowhere/ca\.crt: no such file"):
        kafka_security(settings)
