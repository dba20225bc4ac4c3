"""HTTP handlers: thin functions that read input, call the layers below, shape the reply.

`auth` (register, login, logout), `messages` (list, create, delete), `events`
(Server-Sent Events), `system` (probes, metrics, OpenAPI, the web UI).
"""
