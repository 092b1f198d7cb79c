"""MkDocs hook: the `sfe` reference on cli.md, generated from the argparse parser.

``cli_markdown(parser)`` writes one section per subcommand: its help line, its usage, and a
table of its arguments (flags or positional name with choices, default, help text), so the
page cannot drift from ``sfe <command> --help``.
"""

from __future__ import annotations

import argparse
import html

CLI_PAGE = "cli.md"


def _cell(text) -> str:
    return html.escape(str(text)).replace("|", "\\|").replace("\n", " ")


def _default(action) -> str:
    if action.default in (None, argparse.SUPPRESS) or isinstance(action, (argparse._StoreTrueAction,
                                                                          argparse._StoreFalseAction)):
        return ""
    value = action.default
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return f"`{_cell(value)}`"


def _argument_rows(parser) -> list[str]:
    formatter = parser._get_formatter()
    rows = ["| argument | default | description |", "|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest}`"
        if action.choices:
            name += " (" + ", ".join(f"`{c}`" for c in action.choices) + ")"
        description = formatter._expand_help(action) if action.help else ""
        rows.append(f"| {name} | {_default(action)} | {_cell(description)} |")
    return rows


def cli_markdown(parser: argparse.ArgumentParser) -> str:
    """Markdown for every subcommand of ``parser``."""
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {choice.dest: choice.help for choice in sub._choices_actions}
    parts = []
    for name, command in sub.choices.items():
        usage = command.format_usage().strip().removeprefix("usage: ")
        parts += [f"## `{parser.prog} {name}`", "", _cell(helps.get(name) or ""), "",
                  "```text", usage, "```", "", *_argument_rows(command), ""]
    return "\n".join(parts)


def on_page_markdown(markdown, page, **kwargs):
    if page.file.src_uri != CLI_PAGE:
        return markdown
    from strategic_feedback_env.experiments.cli import build_parser

    return markdown.rstrip("\n") + "\n\n" + cli_markdown(build_parser())
