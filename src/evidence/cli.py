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
import os
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

    sub = add("ingest", cmd_ingest, "push scanner output files as evidence")
    sub.add_argument("--kind", required=True, help="collector kind: trivy, grype, sarif, gitleaks")
    sub.add_argument(
        "--source",
        default="",
        metavar="NAME",
        help="record under this source (default ingest-<kind>); a configured one keeps its options",
    )
    sub.add_argument("files", nargs="+", metavar="FILE", help="scanner output files")

    add("verify", cmd_verify, "check the ledger, the store and the index")

    add("doctor", cmd_doctor, "check config, database, store and keys")

    sub = add("assess", cmd_assess, "evaluate every check and record the control findings")
    sub.add_argument("--as-of", metavar="TIME", help="judge as known at TIME (default now)")

    sub = add("status", cmd_status, "control status table (judged at --as-of, default now)")
    sub.add_argument(
        "--framework", action="append", default=[], metavar="F", help="soc2, iso27001 or gdpr"
    )
    sub.add_argument("--as-of", metavar="TIME", help="as known at TIME; a bare date means its end")
    sub.add_argument(
        "--fail-on",
        metavar="STATUS[,STATUS]",
        default="",
        help="exit 1 when a control has one of these statuses ('any' = anything not satisfied)",
    )
    sub.add_argument("--recorded", action="store_true", help="answer from stored findings only")

    exc = commands.add_parser("exceptions", help="risk acceptances: add, list, revoke")
    exc_commands = exc.add_subparsers(
        dest="exceptions_command", metavar="ACTION", parser_class=_Parser
    )
    ex_add = exc_commands.add_parser("add", help="record an approved, expiring exception")
    ex_add.add_argument("--check", required=True, help="check id")
    ex_add.add_argument("--subject", required=True, help="subject pattern (* and ? match)")
    ex_add.add_argument("--reason", required=True)
    ex_add.add_argument("--owner", required=True, help="who owns the accepted risk")
    ex_add.add_argument("--approver", required=True)
    ex_add.add_argument("--ticket", required=True)
    ex_add.add_argument("--starts", help="start (default now); a bare date is its start")
    ex_add.add_argument("--expires", required=True, help="expiry; a bare date expires at its start")
    ex_add.add_argument("--by", default="", help="who records it (default: the OS user)")
    ex_add.add_argument("--json", action="store_true", help="print one JSON document")
    ex_add.set_defaults(handler=cmd_exceptions_add)
    ex_list = exc_commands.add_parser("list", help="list exceptions")
    ex_list.add_argument("--check", default="", help="only this check")
    ex_list.add_argument("--active", action="store_true", help="only those in force now")
    ex_list.add_argument("--json", action="store_true", help="print one JSON document")
    ex_list.set_defaults(handler=cmd_exceptions_list)
    ex_rev = exc_commands.add_parser("revoke", help="revoke an exception (kept, stamped)")
    ex_rev.add_argument("id")
    ex_rev.add_argument("--reason", required=True)
    ex_rev.add_argument("--by", default="", help="who revokes it (default: the OS user)")
    ex_rev.add_argument("--json", action="store_true", help="print one JSON document")
    ex_rev.set_defaults(handler=cmd_exceptions_revoke)

    privacy = commands.add_parser("privacy", help="the pseudonym lookup of personal data")
    privacy_commands = privacy.add_subparsers(
        dest="privacy_command", metavar="ACTION", parser_class=_Parser
    )
    forget = privacy_commands.add_parser(
        "forget", help="erasure: delete the lookup rows of an identity (evidence is unchanged)"
    )
    forget.add_argument(
        "identities",
        nargs="+",
        metavar="IDENTITY",
        help="user principal name, e-mail address, display name, or pseudonym (name all of a "
        "person's: UPN and display name are pseudonymized separately)",
    )
    forget.add_argument("--json", action="store_true", help="print one JSON document")
    forget.set_defaults(handler=cmd_privacy_forget)
    show = privacy_commands.add_parser(
        "lookup", help="the identity behind pseudonyms, where still known"
    )
    show.add_argument("pseudonyms", nargs="+", metavar="PSEUDONYM")
    show.add_argument("--json", action="store_true", help="print one JSON document")
    show.set_defaults(handler=cmd_privacy_lookup)

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
    except BrokenPipeError:  # `evidence status | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush is quiet
        return 0


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
    from evidence.services.assess import load_controls, reassess
    from evidence.services.collect import iter_sources, run_source
    from evidence.services.runtime import open_runtime

    stop_on_signals()  # SIGTERM/SIGINT: the run is recorded failed, exit 3
    settings = _settings(args)
    library = load_controls(settings)  # a broken catalog stops us before collecting
    rt = open_runtime(settings)
    try:
        sources = list(iter_sources(rt, args.source))
        if not sources:
            raise UsageError("no sources to collect", remedy="add [[sources]] to the config")
        results = [run_source(rt, source) for source in sources]
        assessment = reassess(rt, library)
    finally:
        rt.close()
    if args.json:
        _print_json({"runs": [r.to_json() for r in results], "assessment": _summary(assessment)})
    else:
        for r in results:
            stored = "stored" if r.stored else f"NOT STORED YET ({r.store_error})"
            print(f"{r.source}: {r.status}, {r.records} records, {r.pages} pages, {stored}")
            changes = f"+{r.observations_added} -{r.observations_closed}"
            print(f"  envelope {r.envelope}; observations {changes}")
            for err in r.errors:
                where = f"[{err['scope']}] " if err.get("scope") else ""
                print(f"  error {where}{err['code']}: {err['message']}")
        _print_summary(assessment)
    incomplete = any(r.status != "complete" or not r.stored for r in results)
    return 3 if incomplete else 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from evidence.services.ingest import ingest_files
    from evidence.services.runtime import open_runtime

    rt = open_runtime(_settings(args))
    try:
        result = ingest_files(rt, args.kind, [Path(f) for f in args.files], args.source)
    finally:
        rt.close()
    if args.json:
        _print_json({"runs": [result.to_json()]})
    else:
        stored = "stored" if result.stored else f"NOT STORED YET ({result.store_error})"
        print(f"{result.source}: {result.status}, {result.records} records, {stored}")
        print(f"  envelope {result.envelope}; observations +{result.observations_added}")
        for err in result.errors:
            where = f"[{err['scope']}] " if err.get("scope") else ""
            print(f"  error {where}{err['code']}: {err['message']}")
    return 0 if result.status == "complete" and result.stored else 3


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


def cmd_privacy_forget(args: argparse.Namespace) -> int:
    from evidence.services.privacy import forget
    from evidence.services.runtime import open_runtime

    rt = open_runtime(_settings(args), require_key=False)
    try:
        gone = sorted({p for identity in args.identities for p in forget(rt, identity).pseudonyms})
    finally:
        rt.close()
    if args.json:
        _print_json({"forgotten": len(gone), "pseudonyms": gone})
    elif gone:
        print(f"forgot {len(gone)} lookup row(s): {', '.join(gone)}")
        print("stored evidence is unchanged and still verifies; it now shows pseudonyms only")
    else:
        print("no lookup row for these identities (nothing to forget)")
    return 0


def cmd_privacy_lookup(args: argparse.Namespace) -> int:
    from evidence.services.privacy import lookup
    from evidence.services.runtime import open_runtime

    rt = open_runtime(_settings(args), require_key=False)
    try:
        with rt.engine.connect() as conn:
            names = lookup(conn, args.pseudonyms)
    finally:
        rt.close()
    if args.json:
        _print_json({"identities": {p: names.get(p) for p in args.pseudonyms}})
    else:
        for p in args.pseudonyms:
            print(f"{p}: {names.get(p, '(not known: forgotten or never recorded)')}")
    return 0


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
        if result.assessment is not None:
            print("  control status on the SAMPLE DATA (not-assessed: the sample lacks it):")
            _print_summary(result.assessment)
            for fw in result.assessment.frameworks:
                for c in fw.controls:
                    if c.status != "not-assessed":
                        print(f"    {fw.id} {c.id}: {c.status}")
        for name, where in result.outputs.items():
            print(f"  {name}: {where}")
        config = result.workdir / "config.toml"
        print(f"  try: evidence --config {config} verify")
        print(f"       evidence --config {config} status --framework soc2")
    ok = result.verification is not None and result.verification.ok
    return 0 if ok and all(r.status == "complete" for r in result.runs) else 3


# ---- assessment ------------------------------------------------------------------------
def _summary(assessment: Any) -> dict[str, Any]:
    return {
        "as_of": assessment.to_json()["as_of"],
        "library": assessment.library.digest,
        "recorded": assessment.recorded,
        "frameworks": {fw.id: fw.counts() for fw in assessment.frameworks},
    }


def _print_summary(assessment: Any) -> None:
    for fw in assessment.frameworks:
        counts = ", ".join(f"{n} {status}" for status, n in fw.counts().items() if n)
        print(f"  {fw.id} ({fw.version}): {counts}")


def _as_of(args: argparse.Namespace) -> Any:
    from evidence.services.assess import parse_time

    return parse_time(args.as_of) if args.as_of else None


def cmd_assess(args: argparse.Namespace) -> int:
    from evidence.services.assess import assess, load_controls
    from evidence.services.runtime import open_runtime

    settings = _settings(args)
    library = load_controls(settings)
    rt = open_runtime(settings, require_key=False)
    try:
        assessment = assess(rt, as_of=_as_of(args), library=library)
    finally:
        rt.close()
    if args.json:
        _print_json({**assessment.to_json(detail=True), "recorded": assessment.recorded})
        return 0
    print(f"assessed as of {assessment.to_json()['as_of']} with library {library.digest}")
    _print_summary(assessment)
    print(f"  {assessment.recorded} finding(s) recorded (controls whose result changed)")
    return 0


_FAIL_ON = {"satisfied", "not-satisfied", "not-assessed", "stale", "error"}


def _fail_on(text: str) -> set[str]:
    if not text:
        return set()
    wanted = {w.strip() for w in text.split(",") if w.strip()}
    if "any" in wanted:
        return _FAIL_ON - {"satisfied"}
    unknown = wanted - _FAIL_ON
    if unknown:
        raise UsageError(f"--fail-on: unknown status {', '.join(sorted(unknown))}")
    return wanted


def cmd_status(args: argparse.Namespace) -> int:
    from evidence.services.assess import load_controls, status
    from evidence.services.runtime import open_runtime

    fail_on = _fail_on(args.fail_on)
    settings = _settings(args)
    library = load_controls(settings)
    rt = open_runtime(settings, require_key=False)
    try:
        if args.recorded:
            return _status_recorded(rt, args, library, fail_on)
        assessment = status(
            rt, as_of=_as_of(args), library=library, frameworks=args.framework or None
        )
    finally:
        rt.close()
    document = assessment.to_json()
    if args.json:
        _print_json(document)
    else:
        print(f"control status as of {document['as_of']}")
        for fw in assessment.frameworks:
            counts = ", ".join(f"{n} {st}" for st, n in fw.counts().items() if n)
            print(f"\n{fw.id} ({fw.version}): {counts}")
            print(f"  {'control':<14} {'status':<14} {'checks':>6} {'failing':>8} {'excepted':>9}")
            for c in fw.controls:
                failing = sum(len(r.failing) for r, _ in c.checks)
                excepted = sum(len(r.excepted) for r, _ in c.checks)
                print(f"  {c.id:<14} {c.status:<14} {len(c.checks):>6} {failing:>8} {excepted:>9}")
                for result, _via in c.checks:
                    if result.status in ("not-satisfied", "error", "stale"):
                        names = sorted(result.failing)
                        more = f" (+{len(names) - 3})" if len(names) > 3 else ""
                        shown = ", ".join(names[:3]) + more
                        why = shown or "; ".join(result.reasons)[:160]
                        print(f"      {result.check_id}: {result.status}: {why}")
    hit = {c.status for fw in assessment.frameworks for c in fw.controls} & fail_on
    return 1 if hit else 0


def _status_recorded(rt: Any, args: argparse.Namespace, library: Any, fail_on: set[str]) -> int:
    from datetime import UTC, datetime

    from evidence.services.assess import recorded_findings

    moment = _as_of(args) or datetime.now(UTC)
    found = recorded_findings(rt, as_of=moment)
    frameworks = args.framework or sorted(library.catalogs)
    as_of_text = moment.isoformat().replace("+00:00", "Z")
    document: dict[str, Any] = {"as_of": as_of_text, "frameworks": []}
    statuses = set()
    for fw in frameworks:
        if fw not in library.catalogs:
            raise UsageError(f"unknown framework {fw}")
        catalog = library.catalogs[fw]
        controls = []
        for control in catalog.controls:
            row = found.get((fw, control.id))
            st = row["status"] if row else "not-assessed"
            statuses.add(st)
            checks = [
                {k: c[k] for k in ("id", "status", "failing", "excepted", "evidence")}
                for c in (row["detail"]["checks"] if row else [])
            ]
            controls.append(
                {"id": control.id, "title": control.title, "status": st, "checks": checks}
            )
        document["frameworks"].append({"id": fw, "version": catalog.version, "controls": controls})
    if args.json:
        _print_json(document)
    else:
        print(f"recorded control status as of {document['as_of']}")
        for fw_doc in document["frameworks"]:
            print(f"\n{fw_doc['id']} ({fw_doc['version']})")
            for c in fw_doc["controls"]:
                print(f"  {c['id']:<14} {c['status']}")
    return 1 if statuses & fail_on else 0


def _who(by: str) -> str:
    import getpass

    if by:
        return by
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        raise UsageError("cannot tell who you are; pass --by") from None


def cmd_exceptions_add(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from evidence.services.assess import load_controls, parse_time
    from evidence.services.exceptions import NewException, add_exception
    from evidence.services.runtime import open_runtime

    settings = _settings(args)
    library = load_controls(settings)
    new = NewException(
        check_id=args.check,
        subject_pattern=args.subject,
        reason=args.reason,
        owner=args.owner,
        approver=args.approver,
        ticket=args.ticket,
        starts_at=parse_time(args.starts, bare_date="start") if args.starts else datetime.now(UTC),
        expires_at=parse_time(args.expires, bare_date="start"),
    )
    rt = open_runtime(settings, require_key=False)
    try:
        row = add_exception(rt, library, new, created_by=_who(args.by))
    finally:
        rt.close()
    if args.json:
        _print_json(row)
    else:
        print(f"exception {row['id']} for {row['check_id']} on {row['subject_pattern']!r}: "
              f"{row['starts_at']} to {row['expires_at']} ({row['state']})")
    return 0


def cmd_exceptions_list(args: argparse.Namespace) -> int:
    from evidence.services.exceptions import list_exceptions
    from evidence.services.runtime import open_runtime

    rt = open_runtime(_settings(args), require_key=False)
    try:
        rows = list_exceptions(rt, check_id=args.check or None, active_only=args.active)
    finally:
        rt.close()
    if args.json:
        _print_json({"exceptions": rows})
        return 0
    for r in rows:
        print(f"{r['id']} {r['state']:<8} {r['check_id']} {r['subject_pattern']!r} "
              f"until {r['expires_at']} owner {r['owner']} approver {r['approver']} "
              f"ticket {r['ticket']} (by {r['created_by']} at {r['created_at']})")
    if not rows:
        print("no exceptions")
    return 0


def cmd_exceptions_revoke(args: argparse.Namespace) -> int:
    from evidence.services.exceptions import revoke_exception
    from evidence.services.runtime import open_runtime

    rt = open_runtime(_settings(args), require_key=False)
    try:
        row = revoke_exception(rt, args.id, revoked_by=_who(args.by), reason=args.reason)
    finally:
        rt.close()
    if args.json:
        _print_json(row)
    else:
        print(f"exception {row['id']} revoked at {row['revoked_at']} by {row['revoked_by']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
