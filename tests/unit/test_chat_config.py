"""Configuration parsing (pure)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import fields
from pathlib import Path

import pytest

from chat_service.config import DEFAULT_WEB_DIST, Config, ConfigError


def test_defaults_match_the_original() -> None:
    config = Config.from_env({})
    assert config.http_port == 8080
    assert (config.postgres_host, config.postgres_port, config.postgres_db, config.postgres_user,
            config.postgres_password) == ("postgres", 5432, "chat", "chat", "chat")
    assert (config.redis_host, config.redis_port, config.redis_password, config.redis_db) == \
        ("redis", 6379, "", 0)
    assert config.otel_endpoint is None
    assert config.session_ttl == 86400
    assert config.web_dist_dir == DEFAULT_WEB_DIST


def test_every_field_is_read_from_its_variable() -> None:
    env = {"HTTP_HOST": "127.0.0.1", "HTTP_PORT": "9000", "POSTGRES_HOST": "db",
           "POSTGRES_PORT": "6543", "POSTGRES_DB": "x", "POSTGRES_USER": "u",
           "POSTGRES_PASSWORD": "p w'd", "REDIS_HOST": "r", "REDIS_PORT": "7000",
           "REDIS_PASSWORD": "rp", "REDIS_DB": "3", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://j:4318/",
           "OTEL_SERVICE_NAME": "svc", "LOG_LEVEL": "debug", "SESSION_TTL_SECONDS": "60",
           "TRUSTED_PROXY_CIDRS": "10.42.0.0/16, fd00::/8,192.0.2.7",
           "WEB_DIST_DIR": "/srv/ui", "MAX_BODY_BYTES": "2048", "METRICS_PORT": "9100",
           "POSTGRES_QUERY_TIMEOUT_SECONDS": "1.5"}
    config = Config.from_env(env)
    assert config.http_host == "127.0.0.1"
    assert config.http_port == 9000
    assert config.postgres_password == "p w'd"
    assert config.redis_db == 3
    assert config.otel_endpoint == "http://j:4318"
    assert config.log_level == "DEBUG"
    assert config.trusted_proxies == (ipaddress.ip_network("10.42.0.0/16"),
                                      ipaddress.ip_network("fd00::/8"),
                                      ipaddress.ip_network("192.0.2.7/32"))
    assert config.metrics_port == 9100
    assert config.web_dist_dir == Path("/srv/ui")
    assert config.max_body_bytes == 2048
    assert "statement_timeout=1500" in config.postgres_dsn
    assert "password='p w\\'d'" in config.postgres_dsn


def test_secrets_not_in_repr() -> None:
    config = Config.from_env({"POSTGRES_PASSWORD": "s3cret-pg", "REDIS_PASSWORD": "s3cret-r"})
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize(("env", "message"), [
    ({"HTTP_PORT": "abc"}, "HTTP_PORT must be an integer 1-65535, got 'abc'"),
    ({"HTTP_PORT": "0"}, "HTTP_PORT must be an integer 1-65535, got '0'"),
    ({"REDIS_PORT": "1.5"}, "REDIS_PORT must be an integer 1-65535, got '1.5'"),
    ({"SESSION_TTL_SECONDS": "0"}, "SESSION_TTL_SECONDS must be an integer"),
    ({"POSTGRES_CONNECT_TIMEOUT_SECONDS": "inf"}, "POSTGRES_CONNECT_TIMEOUT_SECONDS must be"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "grpc://x"}, "OTEL_EXPORTER_OTLP_ENDPOINT must be an http"),
    ({"POSTGRES_POOL_MIN": "5", "POSTGRES_POOL_MAX": "2"}, "POSTGRES_POOL_MIN (5) must not"),
    ({"TRUSTED_PROXY_CIDRS": "10.42.0.1/16"}, "TRUSTED_PROXY_CIDRS must be comma-separated CIDR"),
    ({"TRUSTED_PROXY_CIDRS": "ingress"}, "('ingress' is not one)"),
    ({"TRUST_X_FORWARDED_FOR": "true"}, "TRUST_X_FORWARDED_FOR is no longer read"),
    ({"METRICS_PORT": "8080"}, "METRICS_PORT (8080) must differ from HTTP_PORT"),
    ({"SSE_REPLAY_MAX_BYTES": "100"}, "SSE_REPLAY_MAX_BYTES must be an integer 65536-"),
])
def test_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        Config.from_env(env)
    assert message in str(e.value)


def test_forwarded_for_stays_off_unless_proxies_are_named() -> None:
    assert Config.from_env({}).trusted_proxies == ()
    assert Config.from_env({"TRUST_X_FORWARDED_FOR": "false"}).trusted_proxies == ()


def test_replays_leave_requests_a_connection() -> None:
    assert Config.from_env({}).replay_connections == 2
    assert Config.from_env({"POSTGRES_POOL_MAX": "2", "SSE_REPLAY_CONNECTIONS": "5"}
                           ).replay_connections == 1
    assert Config.from_env({"POSTGRES_POOL_MAX": "1", "POSTGRES_POOL_MIN": "1"}
                           ).replay_connections == 1


def test_config_is_frozen() -> None:
    config = Config.from_env({})
    with pytest.raises(AttributeError):
        config.http_port = 1  # type: ignore[misc]


def test_every_variable_is_documented() -> None:
    # Each field's docstring starts with its variable name; docs/chat-service.md lists them all.
    source = (Path(__file__).resolve().parents[2] / "chat_service" / "config.py").read_text()
    variables = re.findall(r'"""([A-Z][A-Z0-9_]+): ', source)
    assert len(variables) == len(fields(Config))
    docs = (Path(__file__).resolve().parents[2] / "docs" / "chat-service.md").read_text()
    missing = [v for v in variables if f"`{v}`" not in docs]
    assert missing == []
