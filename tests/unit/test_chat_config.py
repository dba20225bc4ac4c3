"""Configuration parsing (pure)."""

from __future__ import annotations

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
           "TRUST_X_FORWARDED_FOR": "yes", "WEB_DIST_DIR": "/srv/ui", "MAX_BODY_BYTES": "2048",
           "POSTGRES_QUERY_TIMEOUT_SECONDS": "1.5"}
    config = Config.from_env(env)
    assert config.http_host == "127.0.0.1"
    assert config.http_port == 9000
    assert config.postgres_password == "p w'd"
    assert config.redis_db == 3
    assert config.otel_endpoint == "http://j:4318"
    assert config.log_level == "DEBUG"
    assert config.trust_forwarded_for is True
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
])
def test_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        Config.from_env(env)
    assert message in str(e.value)


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
