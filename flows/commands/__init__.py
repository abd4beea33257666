"""CLI subcommands: one module each, with ``register(subparsers)``. Add a module here to add a command."""

from flows.commands import (
    check,
    data,
    label,
    models,
    projects,
    promote,
    results,
    run,
    schedule,
    server,
    stages,
    study,
    sweep,
    sync,
    ui,
)

MODULES = [
    projects,
    data,
    check,
    run,
    promote,
    models,
    sync,
    results,
    schedule,
    ui,
    label,
    sweep,
    study,
    server,
    stages,
]
