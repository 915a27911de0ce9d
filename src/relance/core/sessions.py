"""Database sessions that keep the idle timeout without writing the session row on every request.

``SESSION_SAVE_EVERY_REQUEST`` makes each request push the expiry forward (the idle timeout). With the
stock database engine that is an ``UPDATE`` of the session row on every page, read-only pages included.
This engine skips that write while the stored expiry is less than ``REFRESH_AFTER_SECONDS`` old: an
idle session still ends ``SESSION_COOKIE_AGE`` (or its own ``set_expiry``) after the last request, give
or take that minute. A modified session (login, verification, ``cycle_key``, a message) is always
saved, exactly as before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connection
from django.utils import timezone

REFRESH_AFTER_SECONDS = 60
_READ_SQL: dict[str, str] = {}


class SessionStore(DatabaseSessionStore):
    _stored_expiry: datetime | None = None

    def _get_session_from_db(self) -> Any:
        """The stock read (same filter: the key, not expired), as one fixed statement: the ORM would
        compile the same query on every request of a logged-in or verified visitor."""
        key = self.session_key
        if key is None or not self._validate_session_key(key):  # type: ignore[attr-defined]
            self._session_key = None
            return None
        model = self.model
        sql = _READ_SQL.get(connection.vendor)
        if sql is None:
            q = connection.ops.quote_name
            sql = _READ_SQL[connection.vendor] = (
                f"SELECT {q('session_data')}, {q('expire_date')} FROM {q(model._meta.db_table)} "  # noqa: S608
                f"WHERE {q('session_key')} = %s AND {q('expire_date')} > %s"
            )
        with connection.cursor() as cursor:
            cursor.execute(sql, [key, connection.ops.adapt_datetimefield_value(timezone.now())])
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            self._stored_expiry = None
            return None
        data, expiry = row
        if timezone.is_naive(expiry):  # SQLite keeps UTC without the zone
            expiry = timezone.make_aware(expiry, UTC)
        self._stored_expiry = expiry
        return model(session_key=key, session_data=data, expire_date=expiry)

    def _recently_refreshed(self) -> bool:
        if self._stored_expiry is None:
            return False
        age = self.get_expiry_age()
        return self._stored_expiry >= timezone.now() + timedelta(seconds=age - REFRESH_AFTER_SECONDS)

    def save(self, must_create: bool = False) -> None:
        if not must_create and not self.modified and self.session_key is not None:
            self._get_session()  # type: ignore[attr-defined]  # reads the row (and its stored expiry) when nothing did yet
            if self.session_key is not None and self._recently_refreshed():
                return
        super().save(must_create=must_create)
        self._stored_expiry = None
