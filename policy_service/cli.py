"""The ``policy-service`` command line."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from policy_service import create_app
from policy_service.catalogue import catalogue, catalogue_text
from policy_service.errors import DomainError, Invalid
from policy_service.logging import get_logger, safe_traceback
from rulesets import ruleset_names
from rulesets.vocabulary import Decision


def _fail(message: str) -> None:
    click.secho(message, fg="red", err=True)
    sys.exit(1)


def reports_errors(command: Callable[..., Any] | None = None, *,
                   writes: bool = True) -> Any:
    """Turn domain errors into a readable message and exit status 1, never a traceback.

    ``writes=False`` for read-only commands: their messages do not promise nothing was written.
    """
    after = " Nothing was written." if writes else ""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from policy_service.extensions import db

            try:
                return command(*args, **kwargs)
            except Invalid as exc:
                db.session.rollback()
                click.secho(f"{exc.detail}.{after}", fg="red", err=True)
                for line in exc.lines():
                    click.echo(f"  {line}", err=True)
                sys.exit(1)
            except DomainError as exc:
                db.session.rollback()
                _fail(f"Error: {exc.detail}")
            except (OSError, SQLAlchemyError) as exc:
                db.session.rollback()
                _fail(f"Error: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            except Exception as exc:  # noqa: BLE001 - a user sees a message, the log keeps it
                db.session.rollback()
                get_logger("cli").error("command_failed", error=type(exc).__name__,
                                        stack=safe_traceback(exc))
                _fail(f"Unexpected error ({type(exc).__name__}){';' if writes else '.'}"
                      f"{' nothing was written.' if writes else ''} See the log.")

        return wrapper

    return decorate(command) if command is not None else decorate


def create_cli_app(web: bool = False) -> Flask:
    """The app for one command: its report is the output, so only warnings and errors are
    logged (on stderr). ``serve`` builds its own app per worker, which logs every request.

    Only the commands that show or serve the web app (``WEB_COMMANDS``) and the command list
    build its API and admin pages; the others start in about half the time without them.
    """
    return create_app({"LOG_LEVEL": os.environ.get("POLICY_LOG_LEVEL", "WARNING")}, web=web)


# Flask's own, and flask-smorest's ``openapi`` (which the API registers).
WEB_COMMANDS = frozenset({"run", "shell", "routes", "openapi"})


class CommandGroup(FlaskGroup):
    """Flask's command group, building for each command only as much app as it needs."""

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """Choose the app this command builds, then find the command as Flask does."""
        ctx.ensure_object(ScriptInfo).create_app = functools.partial(
            create_cli_app, web=name in WEB_COMMANDS)
        return super().get_command(ctx, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command, the web app's included (``--help``)."""
        ctx.ensure_object(ScriptInfo).create_app = functools.partial(create_cli_app, web=True)
        return super().list_commands(ctx)


@click.group(cls=CommandGroup, create_app=create_cli_app, add_default_commands=True,
             add_version_option=False)
def main() -> None:
    """Payer policies, prior authorizations and eligibility checks for biologic infusions."""


commands = click.Group("policy-service")


def register_commands(app: Flask) -> None:
    """Attach every ``policy-service`` command to ``app.cli``."""
    for command in commands.commands.values():
        app.cli.add_command(command)


@commands.command("init")
@with_appcontext
@reports_errors
def init_command() -> None:
    """Create or migrate the database at DATABASE_URL."""
    from policy_service.database import migrate_database

    url = migrate_database()
    click.echo(f"Database ready at {url}")


@commands.command("create-user")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(["admin", "coordinator", "scheduler",
                                                         "biller"]))
@click.option("--password", help="Sign-in password for the admin UI (at least 10 characters).")
@with_appcontext
@reports_errors
def create_user_command(email: str, role: str, password: str | None) -> None:
    """Create a user with a role."""
    from policy_service.auth import create_user
    from policy_service.extensions import db

    user = create_user(email, role, password)
    db.session.commit()
    click.echo(f"Created {user.email} ({role}).")
    if password is None:
        click.echo(f"{user.email} has no password, so cannot sign in to the admin until one is "
                   f"set with 'policy-service users change_password {user.email}'. "
                   "API tokens still work.")


@commands.command("create-token")
@click.argument("email")
@with_appcontext
@reports_errors
def create_token_command(email: str) -> None:
    """Print a new API token for the user, alone on the last line."""
    from policy_service.auth import create_token, find_user
    from policy_service.extensions import db

    token = create_token(find_user(email))
    db.session.commit()
    click.echo(f"API token for {email} (shown once; send it as 'Authorization: Bearer <token>'):")
    click.echo(token)


@commands.command("rules")
@click.option("--ruleset", "names", multiple=True, type=click.Choice(ruleset_names()),
              help="Only this ruleset (repeatable); default: all.")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def rules_command(names: tuple[str, ...], output: str) -> None:
    """Print the rules catalogue: every finding, when and why it fires, and its cases."""
    if output == "json":
        click.echo(json.dumps([
            {"ruleset": ruleset.name, "title": ruleset.title,
             "rules": [entry.as_dict() for entry in entries]}
            for ruleset, entries in catalogue(list(names) or None)], indent=2))
    else:
        click.echo(catalogue_text(list(names) or None))


@commands.command("revoke-token")
@click.argument("token_or_prefix")
@with_appcontext
@reports_errors
def revoke_token_command(token_or_prefix: str) -> None:
    """Revoke an API token, given whole or by its 10-character prefix."""
    from policy_service.auth import revoke_token
    from policy_service.extensions import db

    count = revoke_token(token_or_prefix)
    db.session.commit()
    if not count:
        _fail(f"No live token matches {token_or_prefix!r}.")
    click.echo(f"Revoked {count} token(s).")


@commands.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
def serve_command(host: str, port: int, workers: int) -> None:
    """Run the service under gunicorn (sync workers: the rules engine is not thread-safe)."""
    from policy_service.wsgi_server import run_gunicorn

    run_gunicorn(host=host, port=port, workers=workers,
                 on_ready=lambda: click.echo(_serving_line(host, port)))


def _serving_line(host: str, port: int) -> str:
    return (f"Serving on http://{host}:{port}/ with gunicorn (Ctrl-C to stop; "
            "--port and --host choose another address).")


def password_box(email: str, password: str, sign_in_url: str) -> str:
    """The first admin's one-time password, boxed so it stands out from the server's output,
    with how to set a new one if it is lost."""
    lines = [
        f"Sign in at {sign_in_url}",
        f"  e-mail:   {email}",
        f"  password: {password}",
        "This password is shown once. Change it after signing in (Change password), or set a",
        "new one from the command line:",
        f"  policy-service users change_password {email} --password 'NEW PASSWORD'",
    ]
    width = max(len(line) for line in lines)
    rule = "+" + "-" * (width + 2) + "+"
    return "\n".join([rule, *(f"| {line.ljust(width)} |" for line in lines), rule])


def _print_summary(summary: dict[str, dict[str, int]]) -> None:
    """Print an import summary as a table, or "No changes." when nothing was written."""
    from policy_service.services.bundle import has_changes

    click.echo(f"{'kind':<16}{'created':>9}{'updated':>9}{'unchanged':>11}")
    for kind, counts in summary.items():
        click.echo(f"{kind:<16}{counts['created']:>9}{counts['updated']:>9}"
                   f"{counts['unchanged']:>11}")
    if not has_changes(summary):
        click.echo("No changes.")


@commands.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "actor", metavar="EMAIL",
              help="Record the changes as made by this user (default: system).")
@with_appcontext
@reports_errors
def import_command(file: Path, actor: str | None) -> None:
    """Load a policy bundle (JSON or YAML): all or nothing, idempotent by natural keys."""
    from policy_service.auth import Permission, find_user, has_permission
    from policy_service.errors import Forbidden
    from policy_service.extensions import db
    from policy_service.services.bundle import import_bundle, read_bundle_file

    if actor:
        user = find_user(actor)
        if not has_permission(user, Permission.EDIT_POLICY_DATA):
            raise Forbidden(f"{actor} may not edit policy data.")
        actor = user.email
    summary = import_bundle(read_bundle_file(file), actor or "system")
    db.session.commit()
    click.echo(f"Imported {file}.")
    _print_summary(summary)


@commands.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@with_appcontext
@reports_errors
def export_command(file: Path) -> None:
    """Write the whole policy set as a bundle (YAML if FILE ends .yaml/.yml, else JSON)."""
    from policy_service.services.bundle import dump_bundle_text, export_bundle

    bundle = export_bundle()
    file.write_text(dump_bundle_text(bundle, file.name), encoding="utf-8")
    counts = ", ".join(f"{len(records)} {kind}" for kind, records in bundle.items())
    click.echo(f"Exported {counts} to {file}.")


@commands.command("seed")
@click.option("--path", "directory", type=click.Path(exists=True, file_okay=False,
                                                     path_type=Path),
              help="Folder of bundle files (default: the seed_data/ shipped with the service).")
@with_appcontext
@reports_errors
def seed_command(directory: Path | None) -> None:
    """Load the reference data bundles (every *.yaml/*.json in seed_data/) as one import."""
    from policy_service.extensions import db
    from policy_service.services.bundle import bundle_files, import_files, seed_directory
    from policy_service.services.reason_codes import (
        REASON_CODE_FILE,
        load_reason_codes,
        read_reason_code_file,
    )

    directory = directory or seed_directory()
    files = bundle_files(directory) if directory.is_dir() else []
    if not files:
        _fail(f"No bundle files (*.yaml, *.yml, *.json) in {directory}.")
    summary = import_files(files, "system")
    reason_file = directory / REASON_CODE_FILE
    if reason_file.is_file():
        summary["reason_codes"] = load_reason_codes(read_reason_code_file(reason_file))
        files.append(reason_file)
    db.session.commit()
    click.echo(f"Seeded from {', '.join(f.name for f in files)}.")
    _print_summary(summary)


@commands.command("check-claims")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: one record per claim, as the contract gives it.")
@with_appcontext
@reports_errors(writes=False)
def check_claims_command(file: Path, output_format: str) -> None:
    """Check every claim of an X12 837P file and print the findings per claim and line."""
    from policy_service.services.x12 import check_837, summary_line

    try:
        text = file.read_text(encoding="ascii")
    except UnicodeDecodeError as exc:
        raise Invalid({"file": [f"Not an X12 file: byte {exc.start} is not ASCII."]},
                      detail="Not an X12 file") from None
    outcomes = check_837(text)
    if output_format == "json":
        click.echo(json.dumps([outcome.record() for outcome in outcomes], indent=2,
                              default=str))
        return
    for outcome in outcomes:
        _print_claim_outcome(outcome)
    click.echo(summary_line(outcomes))


def _print_claim_outcome(outcome: Any) -> None:
    """One claim of an 837P file: status, findings and expected lines, or why not checked."""
    if outcome.result is None:
        click.secho(f"Claim {outcome.read.reference}: not checked", fg="red")
        for reason in outcome.reasons:
            click.echo(f"  {reason}")
        return
    result = outcome.result
    colour = "green" if result["status"] == "clean" else "yellow"
    click.secho(f"Claim {outcome.read.reference}: {result['status']}", fg=colour)
    for finding in result["findings"]:
        where = "claim" if finding["line"] is None else f"line {finding['line'] + 1}"
        click.echo(f"  [{finding['severity']}] {finding['code']} ({where}): "
                   f"{finding['message']}")
    expected = ", ".join(
        "{}{} x{}".format(line["code"], "".join(f"-{m}" for m in line["modifiers"]),
                          line["units"])
        for line in result["expected_lines"])
    click.echo(f"  expected lines: {expected or 'none'}")


@commands.command("import-remittance")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "actor", metavar="EMAIL",
              help="Record the use and denials as imported by this user (default: system).")
@with_appcontext
@reports_errors
def import_remittance_command(file: Path, actor: str | None) -> None:
    """Import an X12 835: outcomes, authorization use and denials; all or nothing."""
    from policy_service.auth import Permission, find_user, has_permission
    from policy_service.database import run_serialized
    from policy_service.errors import Forbidden
    from policy_service.services.remittance import import_remittance

    if actor:
        user = find_user(actor)
        if not has_permission(user, Permission.IMPORT_REMITTANCES):
            raise Forbidden(f"{actor} may not import remittances.")
        actor = user.email
    try:
        text = file.read_text(encoding="ascii")
    except UnicodeDecodeError as exc:
        raise Invalid({"file": [f"Not an X12 file: byte {exc.start} is not ASCII."]}) from None
    results = run_serialized(lambda: import_remittance(text, actor or "system"))
    for result in results:
        if result["already_imported"]:
            click.echo(f"Payment {result['trace_number']} from {result['payer']} was imported "
                       f"on {result['imported_at']:%Y-%m-%d} by {result['imported_by']}; "
                       "nothing changed.")
            continue
        click.echo(f"Payment {result['trace_number']} from {result['payer']}: "
                   f"{result['total_paid']} paid, {len(result['claims'])} claim(s).")
        for claim in result["claims"]:
            use = ""
            if claim["units_recorded"] or claim["visits_recorded"]:
                verb = "gave back" if claim["usage_voided"] else "used"
                use = (f", {verb} {abs(claim['units_recorded'])} unit(s) and "
                       f"{abs(claim['visits_recorded'])} visit(s) of {claim['authorization']}")
            click.echo(f"  {claim['claim_reference']}: {claim['outcome']} "
                       f"({claim['paid']} of {claim['charged']}){use}")
            for denial in claim["denials"]:
                prevent = ", ".join(denial["preventable_by"]) or "nothing we check"
                click.echo(f"    denial {denial['group']}-{denial['carc']}"
                           f"{' ' + '/'.join(denial['rarcs']) if denial['rarcs'] else ''} "
                           f"{denial['amount']}: {denial['description']} "
                           f"(appeal by {denial['appeal_due'] or 'n/a'}; "
                           f"caught by {prevent})")
            if claim["usage_problem"]:
                click.secho(f"    use not recorded: {claim['usage_problem']}", fg="yellow")


TABLE_COLUMNS = ("row", "patient_id", "date_of_service", "hcpcs", "decision", "codes", "billing")
DECISION_COLOURS = {Decision.ELIGIBLE: "green", Decision.NEEDS_AUTHORIZATION: "yellow",
                    Decision.NEEDS_INFORMATION: "yellow", Decision.NOT_ELIGIBLE: "red",
                    "error": "red"}


def _print_table(results: list[dict[str, Any]]) -> None:
    widths = {c: max([len(c)] + [len(str(r[c])) for r in results]) for c in TABLE_COLUMNS}
    click.echo("  ".join(c.ljust(widths[c]) for c in TABLE_COLUMNS))
    for result in results:
        cells = [str(result[c]).ljust(widths[c]) for c in TABLE_COLUMNS]
        cells[4] = click.style(cells[4], fg=DECISION_COLOURS.get(result["decision"]))
        click.echo("  ".join(cells))


def _write_results(results: list[dict[str, Any]], out: Path) -> None:
    """Write the results as JSON, or as CSV the way the schedule page's download does (cells
    safe for a spreadsheet; a patient not on file said so in words)."""
    import json

    from policy_service.services.schedule import patients_not_on_file, results_csv

    if out.suffix.lower() == ".json":
        out.write_text(json.dumps(results, indent=2) + "\n")
        return
    out.write_text(results_csv(results, patients_not_on_file(results)), newline="")


# A schedule this long is checked in one process per core: forking costs about 0.1 s, a
# 500-row chunk about 0.5 s.
PARALLEL_CHECK_ROWS = 2_000


def checker_processes(rows: int) -> int:
    """How many processes ``check`` uses for a schedule of ``rows`` rows."""
    return (os.cpu_count() or 1) if rows >= PARALLEL_CHECK_ROWS else 1


@commands.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also write the results as CSV (or JSON if the name ends .json).")
@click.option("--store", is_flag=True,
              help="Keep every row as an appointment (by its appointment_id), all or none.")
@with_appcontext
@reports_errors
def check_command(file: Path, out: Path | None, store: bool) -> None:
    """Check eligibility for every planned treatment in a CSV, XLSX or JSON schedule."""
    from collections import Counter

    from policy_service.audit import current_actor
    from policy_service.extensions import db
    from policy_service.services.schedule import (
        check_schedule,
        read_schedule_file,
        store_schedule,
        summarise_saved,
    )

    rows = read_schedule_file(file.read_bytes(), file.name)
    if store:
        saved = store_schedule(rows, current_actor())
        # Summarised before the commit, which expires every stored appointment.
        results = [summarise_saved(row, kept) for row, kept in zip(rows, saved, strict=True)]
        created = sum(1 for kept in saved if kept.created)
        db.session.commit()
        click.secho(f"Kept {len(saved)} appointment(s): {created} new, "
                    f"{len(saved) - created} replaced.", fg="green")
    else:
        with click.progressbar(length=len(rows), label="Checking", file=sys.stderr,
                               show_pos=True) as bar:
            results = check_schedule(rows, progress=bar.update,
                                     processes=checker_processes(len(rows)))
    _print_table(results)
    for result in results:
        if result["decision"] == "error":
            click.secho(f"Row {result['row']} not checked: {result['reasons']}", fg="red")
        elif result.get("documentation_missing"):
            click.secho(f"Row {result['row']} documentation: {result['documentation_missing']}",
                        fg="yellow")
    counts = Counter(r["decision"] for r in results)
    click.echo(", ".join(f"{n} {decision}" for decision, n in sorted(counts.items())))
    if out:
        _write_results(results, out)
        click.echo(f"Results written to {out}")


@commands.command("quickstart")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.pass_context
@with_appcontext
def quickstart_command(ctx: click.Context, host: str, port: int) -> None:
    """Create the database, load the seed data on first run, create the first admin, serve."""
    import secrets

    from sqlalchemy import select

    from policy_service.extensions import db
    from policy_service.models import Payer, User

    ctx.invoke(init_command)
    # Seed only an empty database: a second run must not reset what people changed since.
    if db.session.scalar(select(Payer.id).limit(1)) is None:
        ctx.invoke(seed_command, directory=None)
    box = None
    if db.session.scalar(select(User.id).limit(1)) is None:
        email = "admin@example.org"
        password = secrets.token_urlsafe(12)
        ctx.invoke(create_user_command, email=email, role="admin", password=password)
        box = password_box(email, password, f"http://{host}:{port}/login")
    # Close this process's connection before gunicorn forks: an open SQLite read would hold
    # a shared lock on the file and every write by the workers would wait for it.
    db.session.remove()
    db.engine.dispose()

    def announce() -> None:
        # Once the port is open, so the password is the last thing printed before requests.
        click.echo(_serving_line(host, port))
        if box is not None:
            click.secho(box, fg="green")

    from policy_service.wsgi_server import run_gunicorn

    run_gunicorn(host=host, port=port, workers=2, on_ready=announce)


@commands.command("digest")
@click.option("--owner", metavar="EMAIL", help="Only the items of authorizations this user owns.")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@with_appcontext
@reports_errors
def digest_command(owner: str | None, output: str) -> None:
    """The work queue's counts and record numbers, for a cron job or an e-mail (no patient
    details)."""
    import datetime as dt
    import json

    from policy_service.auth import find_user
    from policy_service.database import run_serialized
    from policy_service.services.worklist import counts, worklist

    if owner is not None:
        owner = find_user(owner).email
    today = dt.date.today()
    # Reading the schedule may refresh and store appointments' standing checks.
    items = run_serialized(lambda: worklist(today, owner=owner))
    if output == "json":
        click.echo(json.dumps({"date": today.isoformat(), "owner": owner,
                               "counts": counts(items),
                               "items": [item.as_dict() for item in items]}, indent=2))
        return
    click.echo(f"Work queue on {today.isoformat()}" + (f" for {owner}" if owner else "")
               + f": {len(items)} item(s).")
    for kind, count in counts(items).items():
        if count:
            click.echo(f"  {kind.replace('_', ' ')}: {count}")
    for item in items:
        records = ", ".join(r for r in (item.authorization, item.appointment) if r)
        click.echo(f"{item.due_on.isoformat()}  {item.kind:<34} {records}  {item.message}")
