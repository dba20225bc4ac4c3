"""Typed keys of the application's state (`app[KEY]`), shared by app, views and middlewares.

Declarations only; the values are created by `chat_service.app`'s cleanup contexts.
"""

from __future__ import annotations

from aiohttp import web
from opentelemetry.trace import Tracer

from chat_service.cache import LatestMessages
from chat_service.config import Config
from chat_service.database import Database
from chat_service.events import EventHub
from chat_service.metrics import Metrics
from chat_service.passwords import PasswordHasher
from chat_service.redis_store import RedisStore
from chat_service.replaying import Replayer
from chat_service.writing import MessageWriter

CONFIG = web.AppKey("config", Config)
METRICS = web.AppKey("metrics", Metrics)
TRACER = web.AppKey("tracer", Tracer)
DB = web.AppKey("db", Database)
REDIS = web.AppKey("redis", RedisStore)
HUB = web.AppKey("hub", EventHub)
HASHER = web.AppKey("hasher", PasswordHasher)
LATEST = web.AppKey("latest", LatestMessages)
WRITER = web.AppKey("writer", MessageWriter)
REPLAYER = web.AppKey("replayer", Replayer)
