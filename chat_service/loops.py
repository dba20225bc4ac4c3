"""The event loop `serve` runs on: uvloop, mended for aiopg's failed connections.

uvloop's loop costs each callback, timer and socket operation less than asyncio's
(measured in docs/performance.md). One interaction with aiopg needs mending: when a
PostgreSQL connection attempt fails, libpq closes its socket while aiopg still has it
registered for reading and writing, and uvloop keeps a closed poll handle under that
descriptor number. The next socket given the same number (the retry's, typically) then
cannot be registered: "unable to perform operation on <UVPoll closed=True>; the handler
is closed", and the service would stop instead of waiting for PostgreSQL. `Loop` drops
such a stale handle and registers again. Pure glue; no I/O of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVarTuple

import uvloop

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

log = logging.getLogger(__name__)
_Ts = TypeVarTuple("_Ts")


class Loop(uvloop.Loop):
    """uvloop's loop, which forgets a closed poll handle left for a reused descriptor."""

    def add_reader(self, fd: FileDescriptorLike, callback: Callable[[*_Ts], object],
                   *args: *_Ts) -> None:
        """Watch `fd` for reading (see the module's note on stale handles)."""
        try:
            super().add_reader(fd, callback, *args)
        except RuntimeError as e:
            self._forget_closed_handle(fd, e)
            super().add_reader(fd, callback, *args)

    def add_writer(self, fd: FileDescriptorLike, callback: Callable[[*_Ts], object],
                   *args: *_Ts) -> None:
        """Watch `fd` for writing (see the module's note on stale handles)."""
        try:
            super().add_writer(fd, callback, *args)
        except RuntimeError as e:
            self._forget_closed_handle(fd, e)
            super().add_writer(fd, callback, *args)

    def _forget_closed_handle(self, fd: FileDescriptorLike, error: RuntimeError) -> None:
        if "handler is closed" not in str(error):
            raise error
        log.debug("dropping a closed poll handle left for descriptor %s", fd)
        # A closed handle is inactive: removing it as a reader drops it from the loop.
        self.remove_reader(fd)
        self.remove_writer(fd)


def new_loop() -> Loop:
    """A new event loop for the server (`asyncio.Runner(loop_factory=new_loop)`)."""
    return Loop()
