#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "allauth_project.settings")
    sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # bench/peers: what both peers share
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
