"""One module per output format. Each takes the Report and returns text; none decides anything."""

FORMATS = ("text", "json", "sarif", "github", "gitlab", "markdown")


def render(report, fmt: str, *, show_info: bool = False, color: bool = False) -> str:
    import importlib

    module = importlib.import_module(f"modelaudit.report.{fmt}")
    return module.render(report, show_info=show_info, color=color)
