"""The ``relance`` console command: Django's management commands under one name.

``relance run``, ``relance demo``, ``relance simulate``, ``relance engine tick``, ``relance audit verify``
and every Django command (``relance migrate``, ``relance createsuperuser`` …).
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relance.config.settings")
    from django.core.management import execute_from_command_line  # noqa: PLC0415 - after settings

    execute_from_command_line(["relance", *sys.argv[1:]])


if __name__ == "__main__":
    main()
