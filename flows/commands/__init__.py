"""CLI subcommands: one module each, with ``register(subparsers)``. Add a module here to add a command."""

from . import check, data, projects, run

MODULES = [projects, data, check, run]
