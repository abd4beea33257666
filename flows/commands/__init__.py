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
    runner,
    schedule,
    server,
    stack,
    stages,
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
    server,
    runner,
    stack,
    stages,
]
