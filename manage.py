#!/usr/bin/env python
"""Django's command-line utility for Gatehouse."""
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    from config.startup import settings_or_exit

    settings_or_exit(sys.argv)  # a refusing setting: one line on stderr, exit status 1

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
