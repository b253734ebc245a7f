"""The one `websem` command line. Sub-commands live next to the step they drive and are
imported lazily, so `websem --help` stays fast and a missing heavy dependency (torch,
optimum) only affects the command that needs it."""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "export": "websem.export.command:export_cmd",
    "build": "websem.build.command:build_cmd",
    "query": "websem.web.query_cli:query_cmd",
    "serve": "websem.web.serve:serve_cmd",
    "demo": "websem.demo.command:demo_cmd",
}

HELP = {
    "export": "Export a sentence-transformers model to ONNX, quantize it and gate its quality.",
    "build": "Build a static search bundle from a folder of pages or a corpus.jsonl.",
    "query": "Search a bundle on the CPU (the reference the browser must match).",
    "serve": "Serve a bundle on 127.0.0.1 with correct MIME types (and COOP/COEP).",
    "demo": "Build and serve the demo: Python stdlib docs, fully offline.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        module = importlib.import_module(module_name)
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Do not import every sub-command just to print --help.
        with formatter.section("Commands"):
            formatter.write_dl([(name, HELP[name]) for name in sorted(COMMANDS)])


@click.group(cls=LazyGroup)
@click.version_option(package_name="websem")
def main() -> None:
    """websem: semantic search that runs entirely in the browser or at the edge."""


if __name__ == "__main__":
    main()
