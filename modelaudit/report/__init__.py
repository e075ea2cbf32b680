"""One module per output format. Each takes the Report and returns text; none decides anything."""

FORMATS = ("text", "concise", "json", "sarif", "github", "gitlab", "markdown", "html")


def render(report, fmt: str, *, show_info: bool = False, color: bool = False) -> str:
    """`show_info`: also show info findings where a format hides them (text, github, markdown folds
    them). Nothing that fails the run is ever hidden: with --fail-on info they are always shown."""
    import importlib

    module = importlib.import_module(f"modelaudit.report.{fmt}")
    show_info = show_info or report.settings.fail_on.value == "info"
    return module.render(report, show_info=show_info, color=color)
