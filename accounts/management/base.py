"""What Gatehouse's commands share: one-line errors on stderr, a non-zero exit, the id last."""
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


def one_line(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
    return " ".join(exc.messages)


class GatehouseCommand(BaseCommand):
    """Turns ``ValidationError`` into a ``CommandError`` (exit 1, one line, no traceback).

    Bad arguments exit 2 with argparse's one-line ``prog: error: …`` (the usage block
    argparse prints first is left out; ``--help`` still shows it)."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.print_usage = lambda file=None: None
        return parser

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except ValidationError as exc:
            raise CommandError(one_line(exc)) from None
