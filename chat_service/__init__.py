"""The chat service every chatenv environment runs.

An aiohttp application (`chat_service.app.create_app`) serving the JSON API under
`/api`, live updates as Server-Sent Events, health probes, Prometheus metrics and
the built web UI; plus the `migrate` and `admin` commands (`python -m chat_service`).
Storage is PostgreSQL (users, messages) and Redis (sessions, rate limits, pub/sub).

Importing the package does no I/O; resources are opened by the application's
cleanup contexts and closed with them.
"""
