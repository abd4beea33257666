"""dlfolio check: validate params.yaml."""


def register(sub) -> None:
    p = sub.add_parser("check", help="validate params.yaml against every project's settings schema")
    p.add_argument("--params", default="params.yaml", help="parameters file (default: %(default)s)")
    p.set_defaults(func=main)


def main(args) -> int:
    from components.projects import settings_schemas
    from components.settings import load_all_settings

    settings = load_all_settings(args.params, settings_schemas())
    print(f"{args.params}: {len(settings)} project section(s) valid: {', '.join(settings)}")
    return 0
