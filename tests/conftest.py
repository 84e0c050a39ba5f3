"""Fixtures build on each other: database → app → client; account → token → authed client.

Every test that uses ``settings`` (and so ``app``, ``client`` and the people) runs twice: on
SQLite and on a real PostgreSQL server started for the session. ``-m "not postgres"`` runs the
SQLite half only.
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from townsquare.accounts.models import Account
from townsquare.accounts.service import NewAccount, create_account
from townsquare.app import create_app
from townsquare.config import Settings
from townsquare.db.migrate import upgrade
from townsquare.oauth.scopes import TOP_LEVEL
from townsquare.state import state_of

from .postgres_server import PostgresServer, TableReset

BACKENDS = ("sqlite", "postgres")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("settings") == "postgres":
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """argon2id at its lowest cost for the in-process tests.

    The algorithm and every code path stay the same; only the work factor drops, from over a
    second of CPU per hash on a busy machine to a fraction of a millisecond. The servers the
    acceptance tests start keep the real cost.
    """
    from argon2 import PasswordHasher

    from townsquare.accounts import passwords

    cheap = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", cheap)
        patch.setattr(passwords, "_DECOY", cheap.hash("decoy password that matches nothing"))
        yield


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite database, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "townsquare.sqlite3"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session; failing to start fails the tests that need it."""

    def interrupt(_signum: int, _frame: object) -> None:
        # pytest tears fixtures down after an interrupt, so a terminated run stops its server.
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def postgres_tables(postgres_server: PostgresServer) -> Iterator[TableReset]:
    """One migrated database; each test starts from empty tables (TRUNCATE is the fast reset)."""
    import asyncio

    url = asyncio.run(postgres_server.create_database("townsquare_test"))
    upgrade(url)
    reset = TableReset(postgres_server, "townsquare_test")
    yield reset
    reset.close()


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "postgres":
        tables: TableReset = request.getfixturevalue("postgres_tables")
        tables.reset()
        database_url = tables.server.url(tables.database)
    else:
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copy(template, tmp_path / "townsquare.sqlite3")
        database_url = ""
    return Settings(
        data_dir=tmp_path,
        domain="testserver",
        secret_key="test-secret",
        database_url=database_url,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, migrate=False)
    # Generous start-up and shutdown deadlines: a busy two-core machine can be slow to start.
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@dataclass
class Person:
    """A registered account with a full-scope token, and a client that sends it."""

    account: Account
    token: str
    client: httpx.AsyncClient

    @property
    def id(self) -> str:
        return str(self.account.id)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


PersonFactory = Callable[..., Awaitable[Person]]


@pytest.fixture
async def make_person(app: FastAPI) -> AsyncIterator[PersonFactory]:
    from townsquare.oauth.service import issue_token, register_app

    clients: list[httpx.AsyncClient] = []
    db = state_of(app).db

    async def factory(
        username: str,
        *,
        locked: bool = False,
        role: str = "user",
        scopes: tuple[str, ...] = TOP_LEVEL,
    ) -> Person:
        async with db.write() as session:
            account = await create_account(
                session,
                NewAccount(
                    username=username,
                    email=f"{username}@example.test",
                    password="correct horse battery",
                ),
                role=role,
            )
            account.locked = locked
            oauth_app = await register_app(
                session, "tests", ["urn:ietf:wg:oauth:2.0:oob"], list(TOP_LEVEL)
            )
            issued = await issue_token(
                session, app_id=oauth_app.id, account_id=account.id, scopes=list(scopes)
            )
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {issued.access_token}"},
        )
        clients.append(http)
        return Person(account=account, token=issued.access_token, client=http)

    yield factory
    for http in clients:
        await http.aclose()


@pytest.fixture
async def alice(make_person: PersonFactory) -> Person:
    return await make_person("alice")


@pytest.fixture
async def bob(make_person: PersonFactory) -> Person:
    return await make_person("bob")


@pytest.fixture
async def carol(make_person: PersonFactory) -> Person:
    return await make_person("carol")


@pytest.fixture
def media_dir(settings: Settings) -> Iterator[Path]:
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    yield settings.media_dir
