"""Options every command shares, and the one place that opens the store.

Every command takes the same target options (``--url``/``--token`` or ``--db``), ``--tenant`` and
``--json``; writes also take ``--reason``/``--author``/``--metadata``. They are declared once here
as ``Annotated`` aliases. The target block (tenant, json, url, token, db) is added to a command by
:func:`target_options`, so a command's own signature lists only what is its own; a command that
needs one of them in its body (or a different ``--tenant``) declares it and the decorator leaves
that one alone. Two switches drop part of the block: ``tenant=False`` for a command without a
tenant, ``remote=False`` for one that works on a database only (``--db``, no ``--url``/``--token``).
:func:`with_options` does the same for another block shared by several commands (the rollout
strategy options of ``rollout start`` and ``apply --rollout``).

:func:`session` reads those options from the running command, opens the target, hands out the
:class:`Context` and turns every ``ConfhubError`` into its documented exit code, so commands never
deal with targets or exit codes themselves.
"""

from __future__ import annotations

import functools
import getpass
import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, overload

import typer

import confhub
from confhub.audit import Actor, acting_as

from ..errors import ConfhubError, InvalidRequest, NotFound
from ..model import DEFAULT_TENANT
from .output import Output

__all__ = [
    "DEFAULT_DB",
    "AuthorOpt",
    "Command",
    "Context",
    "DbOpt",
    "EnvOpt",
    "ExpectedVersionOpt",
    "JsonOpt",
    "MetadataOpt",
    "OptionBlock",
    "ReasonOpt",
    "TenantOpt",
    "TokenOpt",
    "UrlOpt",
    "WriteMeta",
    "db_target",
    "is_remote",
    "session",
    "split_address",
    "target",
    "target_options",
    "with_options",
]

_TARGET = "Target"
_WRITE = "Change record"

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url", envvar="CONFHUB_URL", metavar="URL", rich_help_panel=_TARGET,
        help="confhub server to talk to (e.g. http://127.0.0.1:8011) instead of a database.",
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="CONFHUB_TOKEN", metavar="TOKEN", rich_help_panel=_TARGET,
        help="Bearer token for --url.", show_default=False,
    ),
]
DbOpt = Annotated[
    str,
    typer.Option(
        "--db", envvar="CONFHUB_DB", metavar="PATH|DSN", rich_help_panel=_TARGET,
        help="Local database: a SQLite file path, sqlite:///PATH or postgresql://DSN.",
    ),
]
AddressArg = Annotated[str, typer.Argument(metavar="NAMESPACE/KEY", help="Where the key lives.",
                                           show_default=False)]
TenantOpt = Annotated[
    str,
    typer.Option("--tenant", "-t", envvar="CONFHUB_TENANT", metavar="TENANT",
                 rich_help_panel=_TARGET, help="Tenant to work in."),
]
EnvOpt = Annotated[
    str,
    typer.Option("--env", "-e", metavar="ENV", help="Environment layer (base, production, ...)."),
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print stable JSON for scripts instead of tables."),
]
ReasonOpt = Annotated[
    str | None,
    typer.Option("--reason", "-r", metavar="TEXT", rich_help_panel=_WRITE,
                 help="Why this change is made (kept in history and audit)."),
]
AuthorOpt = Annotated[
    str | None,
    typer.Option("--author", envvar="CONFHUB_AUTHOR", metavar="NAME", rich_help_panel=_WRITE,
                 help="Who makes the change \\[default: your OS user name]."),
]
MetadataOpt = Annotated[
    list[str] | None,
    typer.Option("--metadata", "-m", metavar="KEY=VALUE", rich_help_panel=_WRITE,
                 help="Free-form metadata for the change record; repeat for more."),
]
ExpectedVersionOpt = Annotated[
    int | None,
    typer.Option("--expected-version", "--if-version", metavar="N", min=0,
                 help="Compare-and-set: fail with exit 4 unless the current version is N "
                      "(0 = must not exist)."),
]

DEFAULT_DB = "./confhub.db"

# The target block, in the order ``--help`` lists it: name -> (annotation, default).
# ``remote=False`` leaves out _REMOTE_ONLY.
_TARGET_OPTIONS: dict[str, tuple[Any, Any]] = {
    "tenant": (TenantOpt, DEFAULT_TENANT),
    "json": (JsonOpt, False),
    "url": (UrlOpt, None),
    "token": (TokenOpt, None),
    "db": (DbOpt, DEFAULT_DB),
}
_REMOTE_ONLY = frozenset({"url", "token"})
Command = Callable[..., None]
OptionBlock = Mapping[str, tuple[Any, Any]]  # parameter name -> (annotation, default)


def with_options(block: OptionBlock, *, after: str | None = None
                 ) -> Callable[[Command], Command]:
    """Give a command the options of ``block`` without listing them in its signature: right
    after its parameter ``after`` (at the end when None), in the block's order.

    Typer reads ``__signature__``, so the options show in ``--help`` like declared ones; the
    command reads their values from ``cmd.params``. Options the command declares itself are
    left as they are and passed to it.
    """
    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        own = list(signature.parameters.values())
        added = {name: spec for name, spec in block.items() if name not in signature.parameters}
        kind = (inspect.Parameter.KEYWORD_ONLY
                if any(p.kind == p.KEYWORD_ONLY for p in own)
                else inspect.Parameter.POSITIONAL_OR_KEYWORD)
        extra = [inspect.Parameter(name, kind, annotation=annotation, default=default)
                 for name, (annotation, default) in added.items()]
        at = len(own) if after is None else [p.name for p in own].index(after) + 1

        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> None:
            for name in added:
                kwargs.pop(name, None)
            command(*args, **kwargs)

        parameters = [*own[:at], *extra, *own[at:]]
        run.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=parameters)
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        return run

    return decorate


@overload
def target_options(command: Command, *, tenant: bool = True, remote: bool = True
                   ) -> Command: ...


@overload
def target_options(command: None = None, *, tenant: bool = True, remote: bool = True
                   ) -> Callable[[Command], Command]: ...


def target_options(command: Command | None = None, *, tenant: bool = True, remote: bool = True
                   ) -> Command | Callable[[Command], Command]:
    """Give ``command`` the shared target options (``--tenant`` unless ``tenant=False``,
    ``--json``, ``--url`` and ``--token`` unless ``remote=False``, ``--db``) without listing
    them in its signature.

    Typer reads ``__signature__``, so the options show in ``--help`` like declared ones;
    :func:`session` reads their values from the click context. Options the command declares
    itself are left as they are and passed to it. ``remote=False`` is for commands that
    must reach the database itself (``backup``: no single token should copy every tenant).
    """
    decorate = with_options({name: spec for name, spec in _TARGET_OPTIONS.items()
                             if (tenant or name != "tenant")
                             and (remote or name not in _REMOTE_ONLY)})
    return decorate(command) if command is not None else decorate


def db_target(db: str) -> str:
    """The ``confhub.open`` target for ``--db``: URLs pass through, a bare path becomes sqlite.

    ``sqlite:///`` + an absolute path gives four slashes, the SQLAlchemy convention the store
    parses; a relative path keeps three.
    """
    if "://" in db:
        return db
    return "sqlite:///" + db


def is_remote(hub: Any) -> bool:
    """Is ``hub`` a server reached over HTTP (``--url``) rather than a local database?"""
    from ..remote import RemoteHub

    return isinstance(hub, RemoteHub)


def split_address(address: str) -> tuple[str, str]:
    """``NAMESPACE/KEY`` -> (namespace, key); anything else is a usage error (exit 2)."""
    namespace, sep, key = address.partition("/")
    if not sep or not namespace or not key or "/" in key:
        raise InvalidRequest(
            f"address {address!r} is not NAMESPACE/KEY (for example models/claude-opus)",
            address=address,
        )
    return namespace, key


@dataclass(frozen=True)
class WriteMeta:
    """The change record a write carries: reason, author and metadata, ready as keyword args."""

    reason: str | None
    author: str | None
    metadata: dict[str, Any]

    @classmethod
    def parse(cls, reason: str | None, author: str | None, metadata: list[str] | None) -> WriteMeta:
        """Parse repeated ``KEY=VALUE`` options; the author defaults to the OS user, as git does."""
        pairs: dict[str, Any] = {}
        for item in metadata or []:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise InvalidRequest(f"--metadata {item!r} is not KEY=VALUE", metadata=item)
            pairs[name] = value
        return cls(reason=reason, author=author or _os_user(), metadata=pairs)

    def kwargs(self) -> dict[str, Any]:
        return {"reason": self.reason, "author": self.author, "metadata": self.metadata}


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return None


@dataclass
class Context:
    """What a command works with: the open hub, the chosen tenant and the output."""

    hub: Any
    tenant_name: str
    out: Output

    @cached_property
    def tenant(self) -> Any:
        """The ``Tenant`` (or remote tenant) named by ``--tenant``, made once per command."""
        return self.hub.tenant(self.tenant_name)


def target(cmd: typer.Context) -> tuple[str, str | None]:
    """The ``confhub.open`` target and token chosen by a command's options.

    ``--url`` (or ``CONFHUB_URL``) names a server and normally wins over ``--db``; but a
    ``--db`` typed on the command line beats a ``CONFHUB_URL`` inherited from the environment,
    so ``confhub get x --db local.db`` never silently talks to a server instead. Both typed is
    a usage error.
    """
    params = cmd.params
    url, db = params.get("url"), params.get("db") or DEFAULT_DB
    if url:
        typed_db = _typed(cmd, "db")
        if typed_db and _typed(cmd, "url"):
            raise InvalidRequest("give --url or --db, not both")
        if not typed_db:
            return check_url(url), params.get("token")
    return db_target(db), None


def check_url(url: str) -> str:
    """A server URL must say its scheme: ``127.0.0.1:8011`` alone would otherwise be taken
    for a file name, and a new SQLite database of that name created."""
    if not url.startswith(("http://", "https://")):
        raise InvalidRequest(f"--url {url!r} has no scheme; write it as http://{url} (or "
                             "https://...)", url=url)
    return url


# Commands that only read: on a SQLite file that does not exist they refuse instead of
# creating an empty database (a typo in --db would otherwise read nothing and say so calmly).
READ_ONLY = frozenset({"get", "ls", "list", "show", "history", "diff", "changes", "export",
                       "watch", "audit", "stats", "health", "validate", "plan", "drift"})


def _missing_sqlite(where: str) -> str | None:
    """The path of a SQLite target whose file does not exist (None otherwise)."""
    if not where.startswith("sqlite:///"):
        return None
    path = where[len("sqlite:///"):]  # sqlite:////abs/file -> /abs/file
    return None if not path or os.path.exists(path) else path


def exit_code_of(error: ConfhubError) -> int:
    """The error's exit code, except that a missing master key is the setup's fault, not a
    usage error: the command was right, the machine lacks a key (1, not 2)."""
    if error.details.get("reason") == "no_master_key":
        return 1
    return error.exit_code


def _typed(cmd: typer.Context, name: str) -> bool:
    source = cmd.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


@contextmanager
def session(cmd: typer.Context) -> Iterator[Context]:
    """Open the target, yield a :class:`Context`, close it, and map errors to exit codes.

    Reads the shared options (``--url``, ``--token``, ``--db``, ``--tenant``, ``--json``) from
    the command's parameters, so each command declares them once in its signature (that is
    what ``--help`` shows) and they are interpreted here, in one place.

    A ``ConfhubError`` (raised by the store, the remote client or our own input parsing) is
    printed once - as the JSON error body on stderr with ``--json`` - and ends the process with
    the error's ``exit_code``; Ctrl-C ends with 130 like any shell tool.
    """
    json = bool(cmd.params.get("json"))
    tenant = cmd.params.get("tenant") or DEFAULT_TENANT
    out = Output(json=json, command=cmd.info_name)
    hub = None
    try:
        where, token = target(cmd)
        missing = _missing_sqlite(where) if cmd.info_name in READ_ONLY else None
        if missing is not None:
            raise NotFound(f"no database at {os.path.abspath(missing)} (nothing was created); "
                           "check --db / CONFHUB_DB, or write something first", path=missing)
        hub = confhub.open(where, token=token)
        # On a local database the audit log names the OS user (a server names the token).
        with acting_as(Actor(name=None if token else f"local:{_os_user() or 'unknown'}",
                             client="cli")):
            yield Context(hub=hub, tenant_name=tenant, out=out)
    except ConfhubError as error:
        out.error(error)
        raise typer.Exit(exit_code_of(error)) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    finally:
        if hub is not None:
            hub.close()

