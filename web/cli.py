"""`flask --app app <group> <command>`: thin wrappers that parse arguments and call core functions."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from catalog.importing import FORMATS as CATALOG_FORMATS
from catalog.importing import CatalogImportError, import_catalog
from channel.template_sync import TemplateSyncError, sync_templates
from core.inputs import InputError, parse_moment
from core.phones import mask_phone
from crm.users import UserError, create_user, issue_api_token, revoke_api_tokens, revoke_sessions, set_password
from models import User, demo, migrate, utcnow
from recovery.rebuild import rebuild
from recovery.tracker import note_interaction
from recovery.tick import run_tick
from shops import replay
from web.context import runtime


def _rt():
    return runtime()


db_cli = AppGroup("db", help="Database schema (Alembic).")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    migrate.upgrade(_rt().db.engine, revision)
    click.echo(f"database at {migrate.current_revision(_rt().db.engine)}")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ('base' empties the schema)."""
    migrate.downgrade(_rt().db.engine, revision)
    click.echo(f"database at {migrate.current_revision(_rt().db.engine)}")


@db_cli.command("current")
def db_current() -> None:
    click.echo(migrate.current_revision(_rt().db.engine) or "empty")


demo_cli = AppGroup("demo", help="Demo data.")


@demo_cli.command("seed")
def demo_seed() -> None:
    """Load the demo store; refuses a database holding non-demo data."""
    runtime = _rt()
    try:
        with runtime.db.transaction() as session:
            outcome = demo.seed(session)
    except demo.DemoRefused as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if outcome == "seeded":
        with runtime.db.session() as session:
            cart = demo.web_abandoner(session)
            if cart is not None:  # her recovery countdown starts now, as a shop's cart event would start it
                note_interaction(session, runtime, cart.customer_id, cart.updated_at)
    click.echo(f"demo data {outcome} (users' password: {demo.DEMO_PASSWORD})")


@demo_cli.command("replay")
@click.argument("platform", type=click.Choice(replay.PLATFORMS))
def demo_replay(platform: str) -> None:
    """Replay a recorded sequence of a shop platform's events into the demo store."""
    runtime = _rt()
    try:
        with runtime.db.session() as session:
            steps = replay.replay(session, runtime, platform, utcnow())
    except replay.ReplayRefused as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    for step in steps:
        who = mask_phone(step.phone) if step.phone else "-"
        click.echo(f"{step.kind:<20} {who:<18} {step.outcome}")
    if runtime.settings.shop_platform != platform:
        click.echo(f"note: SHOP_PLATFORM is {runtime.settings.shop_platform}; set SHOP_PLATFORM={platform} for this "
                   "platform's checkout links in the bot's carts", err=True)
    click.echo(f"{len(steps)} {platform} events replayed; the abandoned carts are due at the next recovery tick")


@demo_cli.command("is-empty", hidden=True)
def demo_is_empty() -> None:
    """Exit 0 when the database has no stores, users or products (used by `make run`)."""
    with _rt().db.session() as session:
        sys.exit(0 if demo.is_empty(session) else 1)


users_cli = AppGroup("users", help="Console and API users.")


@users_cli.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(["admin", "manager", "seller", "backoffice"]))
@click.option("--name", default=None)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(email: str, role: str, name: str | None, password_stdin: bool) -> None:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Senha", hide_input=True, confirmation_prompt=True)
    try:
        with _rt().db.transaction() as session:
            user = create_user(session, email=email, role=role, password=password, name=name)
            user_id = user.id
    except UserError as exc:
        click.echo(f"error: {exc.field}: {exc.message}", err=True)
        sys.exit(1)
    click.echo(f"user {user_id} created ({role})")


@users_cli.command("token")
@click.argument("email")
def users_token(email: str) -> None:
    """Print a new API token for EMAIL. It is stored hashed and cannot be shown again."""
    try:
        with _rt().db.transaction() as session:
            token = issue_api_token(session, email)
    except UserError as exc:
        click.echo(f"error: {exc.field}: {exc.message}", err=True)
        sys.exit(1)
    click.echo(token)


@users_cli.command("password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
def users_password(email: str, password_stdin: bool) -> None:
    """Set EMAIL's password (a reset by the operator); every session of that user ends."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Nova senha", hide_input=True, confirmation_prompt=True)
    try:
        with _rt().db.transaction() as session:
            set_password(session, _user(session, email), password, utcnow())
    except UserError as exc:
        click.echo(f"error: {exc.field}: {exc.message}", err=True)
        sys.exit(1)
    click.echo("password changed; the user's sessions were ended")


@users_cli.command("revoke")
@click.argument("email")
def users_revoke(email: str) -> None:
    """End every session of EMAIL and revoke their API tokens (a lost phone, a leaked token)."""
    try:
        with _rt().db.transaction() as session:
            user = _user(session, email)
            now = utcnow()
            sessions = revoke_sessions(session, user.id, now)
            tokens = revoke_api_tokens(session, user.id, now)
    except UserError as exc:
        click.echo(f"error: {exc.field}: {exc.message}", err=True)
        sys.exit(1)
    click.echo(f"{sessions} session(s) ended, {tokens} API token(s) revoked")


def _user(session, email: str):
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise UserError("email", "usuário não encontrado")
    return user


catalog_cli = AppGroup("catalog", help="Product catalog.")


@catalog_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "file_format", type=click.Choice(CATALOG_FORMATS), default="auto", show_default=True,
              help="Our CSV or JSON (one row per variant), or a Shopify or Nuvemshop product export; "
                   "auto tells them apart by extension and header.")
@click.option("--deactivate-missing", is_flag=True,
              help="Deactivate the variants of the file's products that the file does not list.")
def catalog_import(file: Path, file_format: str, deactivate_missing: bool) -> None:
    """Import FILE: every row or none; each problem printed as `FILE: line N: field: message`, exit 1."""
    try:
        with _rt().db.transaction() as session:
            report = import_catalog(session, file, format=file_format, deactivate_missing=deactivate_missing)
    except CatalogImportError as exc:
        shown = click.format_filename(file)
        for error in exc.errors:
            click.echo(f"{shown}: line {error.line}: {error.field}: {error.message}", err=True)
        click.echo(f"error: nothing imported ({len(exc.errors)} problem(s))", err=True)
        sys.exit(1)
    layout = " (today's format: one row per product)" if report.legacy else ""
    deactivated = f", {report.variants_deactivated} deactivated" if deactivate_missing else ""
    click.echo(f"imported {report.format}{layout}: {report.products_created} new, {report.products_updated} updated "
               f"and {report.products_unchanged} unchanged products; {report.variants_created} new, "
               f"{report.variants_updated} updated and {report.variants_unchanged} unchanged variants{deactivated}")


recovery_cli = AppGroup("recovery", help="The sales recoverer.")


@recovery_cli.command("tick")
@click.option("--now", "now_text", default=None, help="Evaluate due times as of this ISO-8601 instant.")
def recovery_tick(now_text: str | None) -> None:
    """Run one recovery tick synchronously and print a one-line JSON summary."""
    now = _parse_now(now_text)
    with _rt().db.session() as session:
        summary = run_tick(session, _rt(), now)
    click.echo(json.dumps(summary.as_json(), sort_keys=True))


@recovery_cli.command("rebuild")
def recovery_rebuild() -> None:
    """Refill the Redis tracker from the database (after Redis lost its data)."""
    with _rt().db.session() as session:
        summary = rebuild(session, _rt(), utcnow())
    click.echo(json.dumps(summary.as_json(), sort_keys=True))


bot_cli = AppGroup("bot", help="The shopping bot.")


@bot_cli.command("eval")
@click.option("--misses", default=15, show_default=True, help="Misclassified messages to list per set.")
@click.option("--verbose", is_flag=True, help="List every conversation step, not only the failing scripts.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line with the figures instead of the report.")
def bot_eval(misses: int, verbose: bool, as_json: bool) -> None:
    """Intent precision/recall/F1 on the held-out split and on the independent set, timing, and the scripted
    conversations (on a throw-away database: the store's own data is not touched)."""
    from bot.understanding import evaluate  # scikit-learn and the sandbox only when asked for

    if as_json:
        click.echo(json.dumps(evaluate.summary(), sort_keys=True))
        return
    for report in (evaluate.held_out(), evaluate.independent()):
        click.echo("\n".join(evaluate.format_classifier(report, misses=misses)))
    click.echo("timing: " + json.dumps(evaluate.timing()))
    for name, path in evaluate.CONVERSATION_SETS.items():
        if path.exists():
            click.echo("\n".join(evaluate.format_conversations(evaluate.conversations(path), verbose=verbose,
                                                                name=name)))


templates_cli = AppGroup("templates", help="WhatsApp message templates (Twilio Content API or Meta).")


@templates_cli.command("sync")
@click.option("--json", "as_json", is_flag=True, help="One JSON line with the counts instead of the sentence.")
def templates_sync(as_json: bool) -> None:
    """Fetch the provider's WhatsApp templates and store them (idempotent; those no longer listed become
    'removed'). Exit 1, writing nothing, when the provider cannot be read."""
    try:
        with _rt().db.transaction() as session:
            result = sync_templates(session, _rt().settings)
    except TemplateSyncError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(json.dumps(result.as_json(), sort_keys=True) if as_json else result.summary())


def _parse_now(text: str | None) -> datetime:
    if not text:
        return utcnow()
    try:
        return parse_moment(text, "--now")
    except InputError as exc:
        raise click.BadParameter(f"{exc.message} (got {text!r})", param_hint="--now") from None


def register_cli(app: Flask) -> None:
    for group in (db_cli, demo_cli, users_cli, catalog_cli, recovery_cli, bot_cli, templates_cli):
        app.cli.add_command(group)
