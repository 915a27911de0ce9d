"""Database sessions that keep the idle timeout without writing the session row on every request.

``SESSION_SAVE_EVERY_REQUEST`` makes each request push the expiry forward (the idle timeout). With the
stock database engine that is an ``UPDATE`` of the session row on every page, read-only pages included.
This engine skips that write while the stored expiry is less than ``REFRESH_AFTER_SECONDS`` old: an
idle session still ends ``SESSION_COOKIE_AGE`` (or its own ``set_expiry``) after the last request, give
or take that minute. A modified session (login, verification, ``cycle_key``, a message) is always
saved, exactly as before.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils import timezone

REFRESH_AFTER_SECONDS = 60


class SessionStore(DatabaseSessionStore):
    _stored_expiry: datetime | None = None

    def _get_session_from_db(self) -> Any:
        row = super()._get_session_from_db()
        self._stored_expiry = row.expire_date if row is not None else None
        return row

    def _recently_refreshed(self) -> bool:
        if self._stored_expiry is None:
            return False
        age = self.get_expiry_age()
        return self._stored_expiry >= timezone.now() + timedelta(seconds=age - REFRESH_AFTER_SECONDS)

    def save(self, must_create: bool = False) -> None:
        if not must_create and not self.modified and self.session_key is not None:
            self._get_session()  # reads the row (and its stored expiry) when nothing did yet
            if self.session_key is not None and self._recently_refreshed():
                return
        super().save(must_create=must_create)
        self._stored_expiry = None
