"""The segmint demo shop: ``segmint demo`` (what ``make demo`` runs).

A small Starlette shop (fashion, cosmetics, electronics) with ``SegmintMiddleware`` in front,
the config ``examples/segmint.toml`` and a database seeded with synthetic order history, so
that every segment of the config has members. A persona switcher shows the same page giving
each kind of shopper a different widget, and a panel says which segment and campaign chose it.
The database is the config's own store, so ``segmint explain examples/segmint.toml ...``
reads what the shop shows; ``run_demo`` prints that command for each persona.

    seed_demo_database("examples/segmint.toml", "/tmp/demo.db")
    app = build_demo_app("examples/segmint.toml", db_path="/tmp/demo.db")   # any ASGI server
    run_demo(port=8000)                                                     # uvicorn, prints the URL
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shlex
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from segmint.engine.clock import Clock, as_utc, system_clock
from segmint.engine.errors import ConfigError, SegmintError
from segmint.engine.stores import ProfileStore, open_store

from .experiments import experiment_history
from .history import Pools
from .personas import PERSONAS, Persona
from .seed import SeedReport, count_orders, generate_history, read_seed_meta, write_history
from .switcher import landing_page

__all__ = ["build_demo_app", "seed_demo_database", "run_demo", "DemoApp", "SeedReport", "PERSONAS",
           "Persona", "default_config_path", "demo_database_path", "explain_commands"]

#: A demo database seeded longer ago than this is re-seeded: its "days ago" have drifted.
RESEED_AFTER = timedelta(days=1)

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def default_config_path() -> Path:
    """``examples/segmint.toml`` of the source tree, else of the current directory."""
    candidates = [Path(__file__).resolve().parents[2] / "examples" / "segmint.toml",
                  Path.cwd() / "examples" / "segmint.toml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError("no demo config found; pass --config PATH",
                      file=" or ".join(str(c) for c in candidates))


def _open_runtime(config_path: str | os.PathLike[str], store: ProfileStore, clock: Clock, *,
                  watch: bool) -> Any:
    from segmint.engine.runtime import Segmint

    return Segmint.from_config(Path(config_path), clock=clock, store=store, watch=watch)


def seed_demo_database(
    config_path: str | os.PathLike[str],
    db_path: str | os.PathLike[str],
    *,
    now: datetime | None = None,
    seed: int = 42,
) -> SeedReport:
    """(Re)build the demo database at ``db_path`` from the config's catalog; deterministic.

    The history is the synthetic shoppers' (``generate_history``) and the config's A/B tests'
    (``experiment_history``: exposures, clicks and orders with a true effect).

    Returns counts and the size of every segment of the config at ``now``. Refuses to
    overwrite a file that is not a demo database (``StoreError``).
    """
    from segmint.engine.config import load_compiled

    now = as_utc(now) if now is not None else system_clock()
    compiled = load_compiled(Path(config_path))
    events, archetypes = generate_history(compiled.catalog, now, seed)
    tests = experiment_history(compiled.campaigns, Pools(compiled.catalog), now, seed)
    stored = write_history(db_path, sorted([*events, *tests], key=lambda e: e.at or now), now, seed=seed)
    store = open_store(str(db_path), clock=lambda: now)
    try:
        runtime = _open_runtime(config_path, store, lambda: now, watch=False)
        try:
            sizes = dict.fromkeys(runtime.state.segments, 0)
            customers = visitors = 0
            for profile in store.iter_profiles():
                if profile.customer_id:
                    customers += 1
                else:
                    visitors += 1
                for name, member in runtime.segments(profile, now).items():
                    sizes[name] += member
        finally:
            runtime.close()
    finally:
        store.close()
    return SeedReport(db_path=str(db_path), now=now, seed=seed, customers=customers, visitors=visitors,
                      orders=count_orders(events) + count_orders(tests), events=stored, archetypes=dict(archetypes),
                      segment_sizes=sizes)


class DemoApp:
    """The demo's ASGI app; ``runtime`` and ``store`` are exposed for tests and scripts."""

    def __init__(self, asgi: ASGIApp, runtime: Any, store: ProfileStore) -> None:
        self._asgi = asgi
        self.runtime = runtime
        self.store = store

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        await self._asgi(scope, receive, send)

    def close(self) -> None:
        """Stop the runtime (flushes queued events) and close the database."""
        self.runtime.close()
        self.store.close()


def _login_secret(runtime: Any) -> bytes:
    # Derived from the config's secret, so demo logins survive a restart of the server.
    secret = runtime.config.identity.secret
    if not secret:
        return secrets.token_bytes(32)
    return hmac.new(secret.encode(), b"segmint-demo-login", hashlib.sha256).digest()


def build_demo_app(
    config_path: str | os.PathLike[str],
    *,
    db_path: str | os.PathLike[str],
    clock: Clock | None = None,
    watch: bool = True,
) -> DemoApp:
    """The demo shop over an existing demo database (see ``seed_demo_database``).

    ``clock`` fixes "now" for decisions and recorded events (tests); ``watch`` hot-reloads
    the config and refreshes product statistics in the background.
    """
    from .app import wrap_shop

    clock = clock or system_clock
    store = open_store(str(db_path), clock=clock)
    try:
        runtime = _open_runtime(config_path, store, clock, watch=watch)
    except BaseException:
        store.close()
        raise
    return DemoApp(wrap_shop(runtime, login_secret=_login_secret(runtime)), runtime, store)


def demo_database_path(config_path: str | os.PathLike[str]) -> Path:
    """The SQLite file of the config's store: where the demo seeds, and what the CLI reads."""
    from segmint.engine.config import load_config

    config = load_config(Path(config_path), validate=False)
    location = config.store_location
    if config.store.url or location == ":memory:":
        raise ConfigError(f"the demo seeds a SQLite file, and this config's store is {location!r}; "
                          "pass --db PATH", path="$.store", file=str(config_path))
    return Path(location)


def _shown(path: Path) -> str:
    # Relative to where the command runs when it is under it, so the printed line stays short.
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def explain_commands(config_path: str | os.PathLike[str], catalog: Any,
                     program: str = "segmint") -> list[tuple[Persona, str]]:
    """For each persona, the ``segmint explain`` command that shows why it gets its widget.

    ``program`` is how to call the CLI from the current directory (``.venv/bin/segmint``).
    A new visitor has no stored events: any visitor id not seen before shows its decision.
    """
    base = [program, "explain", _shown(Path(config_path))]
    commands = []
    for persona in PERSONAS:
        who = (["--customer", persona.customer_id] if persona.customer_id
               else ["--visitor", persona.visitor_id or f"{persona.key}-0"])
        page = landing_page(persona, catalog)
        where = ["--slot", persona.slot] + (["--path", page] if page != "/" else [])
        commands.append((persona, shlex.join(base + who + where)))
    return commands


def _needs_seeding(db_path: Path, now: datetime) -> bool:
    stamp = read_seed_meta(db_path)
    if stamp is None:
        return True
    try:
        seeded_at = datetime.fromisoformat(stamp["now"])
    except (KeyError, TypeError, ValueError):
        return True
    return now - seeded_at > RESEED_AFTER


def run_demo(
    host: str = "127.0.0.1",
    port: int = 8000,
    db_path: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    *,
    reseed: bool = False,
    out: TextIO | None = None,
    program: str = "segmint",
) -> None:
    """Seed the demo database if needed, print the URLs (the shop, and the report page with the
    token that signs in to it) and serve the shop with uvicorn.

    The database is the config's store unless ``db_path`` names another file. It is
    (re)seeded when it is missing, was seeded more than a day ago (its "days ago" have
    drifted), or ``reseed`` is set. ``program`` is how the printed commands call the CLI.
    """
    try:
        import uvicorn
    except ModuleNotFoundError:
        raise SegmintError('the demo shop is served by uvicorn, which is not installed: '
                           'pip install "segmint[serve]"') from None

    out = out or sys.stdout
    config_path = Path(config) if config else default_config_path()
    db = Path(db_path) if db_path is not None else demo_database_path(config_path)
    now = system_clock()
    if reseed or not db.exists() or _needs_seeding(db, now):
        print(f"Seeding the demo database {db} ...", file=out, flush=True)
        report = seed_demo_database(config_path, db, now=now)
        print(f"  {report.customers} customers, {report.visitors} anonymous visitors, "
              f"{report.orders} orders", file=out)
        for name, size in report.segment_sizes.items():
            print(f"  segment {name:<28} {size:>4} members", file=out)
    app = build_demo_app(config_path, db_path=db)
    if Path(app.runtime.config.store_location).resolve() == db.resolve():
        print("\nWhy each persona sees its widget (run in this directory):", file=out)
        for persona, command in explain_commands(config_path, app.runtime.catalog, program):
            print(f"  {persona.label + ':':<28} {command}", file=out)
    else:  # `segmint explain CONFIG` would read another database than the one served
        print(f"\nThe segmint commands read the config's store ({app.runtime.config.store_location}), "
              f"not {db}: run the demo without --db to ask them why each persona sees its widget.", file=out)
    url_host = f"[{host}]" if ":" in host else host
    print(f"\nsegmint demo shop: http://{url_host}:{port}/   (config {config_path}; Ctrl+C to stop)",
          file=out)
    api = app.runtime.config.api
    report = f"http://{url_host}:{port}{api.prefix.rstrip('/')}/report"
    if api.token:
        print(f"Campaign report:   {report}   (sign in with the API token {api.token!r}, [api] token of the "
              "config; two seeded A/B tests)", file=out, flush=True)
    else:
        print(f"Campaign report:   {report}   (set [api] token in the config to sign in)", file=out, flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        app.close()
