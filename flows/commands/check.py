"""dlfolio check: validate params.yaml, and what each section asks of its project's code."""


def register(sub) -> None:
    p = sub.add_parser("check", help="validate params.yaml against every project's settings schema and capabilities")
    p.add_argument("--params", default="params.yaml", help="parameters file (default: %(default)s)")
    p.set_defaults(func=main)


def main(args) -> int:
    from components.projects import settings_schemas
    from components.settings import load_all_settings

    settings = load_all_settings(args.params, settings_schemas())
    print(f"{args.params}: {len(settings)} project section(s) valid: {', '.join(settings)}")
    # The optional stages each section turns on, all of them declared by its project (else the load failed).
    asked = {name: [f"{key} ({need})" for key, need, _ in s.requirements()] for name, s in settings.items()}
    for name, keys in asked.items():
        if keys:
            print(f"  {name}: {', '.join(keys)}")
    return 0
