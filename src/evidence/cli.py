"""The command line: parse, load settings, call a service, print. Nothing else.

Exit codes: 0 success; 1 a problem was found; 2 bad usage or bad config;
3 incomplete (a run partial or failed, a verification that could not
complete or had nothing to check). ``--json`` prints exactly one JSON
document on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evidence import __version__
from evidence.config import Settings, find_config, load_settings
from evidence.errors import EvidenceError, UsageError

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 on its own; keep our format
        self.print_usage(sys.stderr)
        print(f"evidence: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="evidence",
        description="Collect compliance evidence, prove it, and map it to controls.",
    )
    parser.add_argument("--version", action="version", version=f"evidence {__version__}")
    parser.add_argument(
        "--config", help="config file (default ./config.toml, then $EVIDENCE_CONFIG)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def add(
        name: str, handler: Handler, help_text: str, json_flag: bool = True
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if json_flag:
            sub.add_argument("--json", action="store_true", help="print one JSON document")
        sub.set_defaults(handler=handler)
        return sub

    sub = add("init", cmd_init, "write a starter config, a signing key and a pseudonym key")
    sub.add_argument("--dir", default=".", help="folder to initialize (default: here)")

    sub = add("demo", cmd_demo, "run the whole flow on bundled sample data")
    sub.add_argument("--workdir", default="var/demo", help="work folder (default var/demo)")

    sub = add("collect", cmd_collect, "run sources once")
    sub.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="NAME",
        help="only this source (repeatable)",
    )

    add("verify", cmd_verify, "check the ledger, the store and the index")

    add("doctor", cmd_doctor, "check config, database, store and keys")

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", parser_class=_Parser)
    up = db_commands.add_parser("upgrade", help="apply migrations")
    up.add_argument("--json", action="store_true", help="print one JSON document")
    up.set_defaults(handler=cmd_db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except EvidenceError as exc:
        return _fail(args, exc)
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM where a command handles it
        print(f"evidence: interrupted{f' ({exc})' if str(exc) else ''}", file=sys.stderr)
        return 3


def _fail(args: argparse.Namespace, exc: EvidenceError) -> int:
    if getattr(args, "json", False):
        _print_json({"error": {"code": exc.code, "message": str(exc), "remedy": exc.remedy}})
    print(f"evidence: {exc}", file=sys.stderr)
    return exc.exit_code


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")


def _revision_text(before: str | None, after: str) -> str:
    was = "" if before == after else f" (was {before or 'empty'})"
    return f"database at revision {after}{was}"


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(find_config(args.config))


# ---- commands ------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    from evidence.config import load_settings as load
    from evidence.services import setup

    result = setup.init(Path(args.dir))
    settings = load(result.config)
    before, after = setup.db_upgrade(settings)
    if args.json:
        _print_json(
            {
                "config": str(result.config),
                "config_written": result.config_written,
                "signing_key": str(result.key),
                "signing_key_written": result.key_written,
                "pseudonym_key": str(result.pseudonym_key),
                "pseudonym_key_written": result.pseudonym_key_written,
                "database_revision": after,
            }
        )
        return 0
    for path, written in (
        (result.config, result.config_written),
        (result.key, result.key_written),
        (result.pseudonym_key, result.pseudonym_key_written),
    ):
        print(f"{'wrote' if written else 'kept existing'} {path}")
    print(_revision_text(before, after))
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from evidence.services import setup

    before, after = setup.db_upgrade(_settings(args))
    if args.json:
        _print_json({"before": before, "after": after})
    else:
        print(_revision_text(before, after))
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from evidence.services._signals import stop_on_signals
    from evidence.services.collect import iter_sources, run_source
    from evidence.services.runtime import open_runtime

    stop_on_signals()  # SIGTERM/SIGINT: the run is recorded failed, exit 3
    settings = _settings(args)
    rt = open_runtime(settings)
    try:
        sources = list(iter_sources(rt, args.source))
        if not sources:
            raise UsageError("no sources to collect", remedy="add [[sources]] to the config")
        results = [run_source(rt, source) for source in sources]
    finally:
        rt.close()
    if args.json:
        _print_json({"runs": [r.to_json() for r in results]})
    else:
        for r in results:
            stored = "stored" if r.stored else f"NOT STORED YET ({r.store_error})"
            print(f"{r.source}: {r.status}, {r.records} records, {r.pages} pages, {stored}")
            changes = f"+{r.observations_added} -{r.observations_closed}"
            print(f"  envelope {r.envelope}; observations {changes}")
            for err in r.errors:
                where = f"[{err['scope']}] " if err.get("scope") else ""
                print(f"  error {where}{err['code']}: {err['message']}")
    incomplete = any(r.status != "complete" or not r.stored for r in results)
    return 3 if incomplete else 0


def cmd_verify(args: argparse.Namespace) -> int:
    from evidence.services.runtime import open_runtime
    from evidence.services.verify import summarize, verify

    rt = open_runtime(_settings(args), require_key=False)
    try:
        report = verify(rt)
    finally:
        rt.close()
    if args.json:
        _print_json(report.to_json())
        return report.exit_code
    c = report.checked
    print(
        f"checked {c['entries']} ledger entries, {c['envelopes']} envelopes, "
        f"{c['contents']} contents "
        f"({c['records']} records, {c['bytes']} bytes), {c['checkpoints']} checkpoints; "
        f"{c['pending']} pending upload"
    )
    for p in report.problems:
        print(f"PROBLEM {p.kind}: {p.item}: {p.detail}")
    if report.problems:
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(summarize(report.problems).items()))
        print(f"FAILED: {len(report.problems)} problem(s): {counts}")
    if report.incomplete:
        print(f"INCOMPLETE: {report.incomplete}")
    elif report.nothing_checked and not report.problems:
        print("INCOMPLETE: nothing to check (no ledger entry in the store yet)")
    elif report.ok:
        print("OK: every artifact, entry and checkpoint verifies")
    return report.exit_code


def cmd_doctor(args: argparse.Namespace) -> int:
    from evidence.services import setup

    checks = setup.doctor(_settings(args))
    if args.json:
        _print_json({"ok": all(c.ok for c in checks), "checks": [c.__dict__ for c in checks]})
    else:
        for c in checks:
            print(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
    return 0 if all(c.ok for c in checks) else 2


def cmd_demo(args: argparse.Namespace) -> int:
    from evidence.services.demo import run_demo

    result = run_demo(Path(args.workdir))
    if args.json:
        _print_json(result.to_json())
    else:
        print(f"evidence demo: SAMPLE DATA in {result.workdir}")
        for r in result.runs:
            print(f"  collected {r.source}: {r.status}, {r.records} records, envelope {r.envelope}")
        report = result.verification
        if report is not None:
            verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
            print(f"  verify: {verdict} ({report.checked['entries']} ledger entries)")
        for name, where in result.outputs.items():
            print(f"  {name}: {where}")
        print(f"  try: evidence --config {result.workdir / 'config.toml'} verify")
    ok = result.verification is not None and result.verification.ok
    return 0 if ok and all(r.status == "complete" for r in result.runs) else 3


if __name__ == "__main__":
    sys.exit(main())
