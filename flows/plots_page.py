"""The page `dvc plots show` renders into, with Vega, Vega-Lite and Vega-Embed inline, so it draws offline.

DVC's own page loads the three scripts from a CDN, so offline every Vega plot on it stays blank. `make setup`
installs the versions that page asks for with npm into ``.vega/`` and runs this module, which writes
``.vega/template.html``; ``.dvc/config`` (``plots.html_template``) points `dvc plots show` at it.

    python -m flows.plots_page [.vega]
"""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPTS = ("vega/build/vega.min.js", "vega-lite/build/vega-lite.min.js", "vega-embed/build/vega-embed.min.js")
# DVC's template with its {scripts} placeholder left out: that is where DVC puts the CDN <script> tags.
PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC plots</title>
    %s
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def write_template(vega_dir: Path) -> Path:
    """Write ``vega_dir/template.html`` from the scripts npm installed under ``vega_dir/node_modules``."""
    modules = vega_dir / "node_modules"
    missing = [s for s in SCRIPTS if not (modules / s).is_file()]
    if missing:
        raise SystemExit(f"{modules}: {', '.join(missing)} missing; `make setup` installs them with npm")
    # "</script" cannot occur inside an inline script; the minified builds have none, and this keeps it so.
    inline = "\n    ".join(
        "<script>" + (modules / s).read_text(encoding="utf-8").replace("</script", "<\\/script") + "</script>"
        for s in SCRIPTS
    )
    out = vega_dir / "template.html"
    out.write_text(PAGE % inline, encoding="utf-8")
    return out


if __name__ == "__main__":
    print(f"wrote {write_template(Path(sys.argv[1] if len(sys.argv) > 1 else '.vega'))}")
