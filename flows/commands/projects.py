"""dlfolio projects: list the catalog."""


def register(sub) -> None:
    p = sub.add_parser("projects", help="list every project in the catalog")
    p.set_defaults(func=main)


def main(args) -> int:
    from components.projects import PROJECTS

    width = max(map(len, PROJECTS))
    for name, project in sorted(PROJECTS.items()):
        print(f"{name:<{width}}  {project.summary}")
    return 0
