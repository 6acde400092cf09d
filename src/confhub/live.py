"""Live values: a key's resolved value that stays current while the process runs.

``cfg.live("models", "claude-opus", model=Settings, env="production")`` returns a
:class:`Live` whose ``value`` is a plain attribute, replaced (never mutated) when a change
commits, so reading ``live.value.max_tokens`` costs what reading any attribute costs and a
reader never sees half an update.

How it never misses a change: it reads the tenant's revision R first, then resolves the key
(a state at R or later), then watches everything after R. A change after R triggers a fresh
resolve, so whatever the interleaving, the last resolve sees the latest state.

A value the model refuses is not applied: ``value`` keeps the last good one, ``error`` says
why and the ``on_error`` callbacks hear of it.

Staged rollouts (DESIGN.md section 8): when the tenant has an identity and the value it
resolves holds a staged value of a running rollout, the live value reports on it: ``applied``
once the model accepted it and every ``on_change`` callback returned, ``failed`` when the model
refused it or a callback raised. ``report_health(ok=False, reason=...)`` adds the app's own
verdict. A staged value refused at start is reported and waited out (the rollout rolls back
by itself) for up to ``STAGED_WAIT`` seconds before the refusal is raised.

A remote live value also keeps its last good value in a small cache file, and starts from it
(with a warning) when the server cannot be reached, catching up once it can.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from .errors import ConfhubError, Gone, InvalidValue, NotFound, Unavailable
from .model import BASE_ENV, Change, Resolved, thaw

__all__ = ["Live"]

logger = logging.getLogger("confhub.live")

T = TypeVar("T")
STAGED_WAIT = 5.0
MISSING: Any = object()
"""No default: a missing key is an error."""


class _Handle(Protocol):
    on_end: Callable[[ConfhubError], object] | None

    @property
    def error(self) -> ConfhubError | None: ...

    def stop(self) -> None: ...


class _Source(Protocol):
    """What a live value needs of a tenant (embedded and remote tenants both have it)."""

    name: str

    @property
    def revision(self) -> int: ...

    def resolve(self, namespace: str, key: str, *, env: str = BASE_ENV) -> Resolved: ...

    def watch(self, callback: Callable[[Change], object], namespace: str | None = None,
              key: str | None = None, env: str | None = None,
              since: int | None = None) -> Any: ...

    @property
    def identity(self) -> Any: ...

    def report(self, rollout_id: str, status: str, reason: str | None = None) -> None: ...


class Live(Generic[T]):
    """The current resolved value of one key in one env, typed by ``model`` when given."""

    def __init__(self, source: _Source, namespace: str, key: str, *, env: str = BASE_ENV,
                 model: Callable[..., T] | None = None, default: Any = MISSING,
                 cache_file: str | os.PathLike[str] | None = None) -> None:
        self.namespace = namespace
        self.key = key
        self.env = env
        self.error: Exception | None = None
        self.revision = 0
        self.rollouts: tuple[str, ...] = ()  # rollouts whose staged values ``value`` holds
        self._resolved_rollouts: tuple[str, ...] = ()
        self._reported: set[tuple[str, str]] = set()
        self._source = source
        self._model = model
        self._default = default
        self._cache_file = Path(cache_file) if cache_file is not None else None
        self._on_change: list[Callable[[T, T], object]] = []
        self._on_error: list[Callable[[Exception], object]] = []
        self._lock = threading.Lock()
        self._relisting = threading.Lock()
        self._closed = False
        self.value: T = self._first_value()
        self._handle: _Handle = self._subscribe()

    def __repr__(self) -> str:
        return (f"<confhub.Live {self._source.name}/{self.namespace}/{self.key} env={self.env}"
                f" revision={self.revision}>")

    # ---------------------------------------------------------------- public

    def on_change(self, callback: Callable[[T, T], object]) -> Callable[[T, T], object]:
        """Call ``callback(old, new)`` after each change of the value (usable as decorator)."""
        self._on_change.append(callback)
        return callback

    def on_error(self, callback: Callable[[Exception], object]
                 ) -> Callable[[Exception], object]:
        """Call ``callback(error)`` when a new value is refused by the model."""
        self._on_error.append(callback)
        return callback

    def refresh(self) -> T:
        """Resolve now (normally unnecessary: changes arrive by themselves)."""
        self._apply(self._resolve())
        return self.value

    def report_health(self, ok: bool = True, reason: str | None = None) -> list[str]:
        """Tell the rollouts whose staged values this value holds how the app is doing
        (``ok=False`` counts as a failure in their health gate); returns their ids."""
        status = "healthy" if ok else "unhealthy"
        for rollout_id in self.rollouts:
            self._report(rollout_id, status, reason, once=False)
        return list(self.rollouts)

    def _report(self, rollout_id: str, status: str, reason: str | None, *,
                once: bool = True) -> None:
        if once and (rollout_id, status) in self._reported:
            return
        self._reported.add((rollout_id, status))
        try:
            self._source.report(rollout_id, status, reason)
        except ConfhubError as exc:  # a finished rollout, an unreachable server: not ours
            logger.info("could not report %s on rollout %s: %s", status, rollout_id, exc)

    def close(self) -> None:
        self._closed = True
        self._handle.stop()

    def __enter__(self) -> Live[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- internals

    def _first_value(self) -> T:
        try:
            self.revision = self._source.revision
            raw = self._resolve()
        except Unavailable as exc:
            cached = self._read_cache()
            if cached is None:
                raise
            self.revision, raw = cached
            warnings.warn(f"confhub unreachable ({exc}); {self.namespace}/{self.key} starts "
                          f"from its cached value of revision {self.revision} and will catch "
                          "up when the server is back", UserWarning, stacklevel=4)
        value = self._first_typed(raw)  # a value the model refuses at start is an error
        self._write_cache(raw)
        return value

    def _subscribe(self) -> _Handle:
        """Watch from ``revision``; when retention removed that history (Gone), re-list:
        resolve the current value at the current revision and watch from there."""
        while True:
            try:
                handle: _Handle = self._source.watch(self._changed, self.namespace, self.key,
                                                     since=self.revision)
            except Gone as exc:
                self._relist(exc)
                continue
            handle.on_end = lambda error, ended=handle: self._ended(ended, error)
            if isinstance(handle.error, Gone):  # ended before on_end was set
                handle.stop()
                self._relist(handle.error)
                continue
            return handle

    def _ended(self, handle: _Handle, error: ConfhubError) -> None:
        """The watch ended by itself: carry on after a Gone (re-list), else stay ended."""
        if not isinstance(error, Gone):
            return
        with self._relisting:
            if self._closed or handle is not self._handle:
                return  # closed, or already replaced
            self._relist(error)
            self._handle = self._subscribe()

    def _relist(self, error: Gone) -> None:
        revision = self._source.revision
        logger.info("history of %s/%s before revision %s was removed (%s); re-listing at "
                    "revision %d", self.namespace, self.key,
                    error.compacted_revision, error.message, revision)
        self.revision = revision
        try:
            raw = self._resolve()
        except ConfhubError as exc:
            logger.warning("could not re-list %s/%s: %s", self.namespace, self.key, exc)
            return
        self._apply(raw, revision)
    def _first_typed(self, raw: Any) -> T:
        """The first value; a refused staged value is reported, then waited out."""
        deadline = time.monotonic() + STAGED_WAIT
        while True:
            staged = self._resolved_rollouts
            try:
                value = self._typed(raw)
            except InvalidValue as exc:
                if not staged or time.monotonic() > deadline:
                    raise
                for rollout_id in staged:
                    self._report(rollout_id, "failed", str(exc))
                time.sleep(0.1)
                self.revision = self._source.revision
                raw = self._resolve()
                continue
            self.rollouts = staged
            for rollout_id in staged:
                self._report(rollout_id, "applied", None)
            return value

    def _resolve(self) -> Any:
        try:
            resolved = self._source.resolve(self.namespace, self.key, env=self.env)
        except NotFound:
            if self._default is MISSING:
                raise
            self._resolved_rollouts = ()
            return self._default
        self._resolved_rollouts = tuple(resolved.rollouts)
        return thaw(resolved.value)

    def _typed(self, raw: Any) -> T:
        if self._model is None:
            return raw  # type: ignore[no-any-return]
        validate = getattr(self._model, "model_validate", None)
        try:
            return validate(raw) if validate is not None else self._model(raw)
        except Exception as exc:  # pydantic.ValidationError and any model's own error
            raise InvalidValue(f"{self.namespace}/{self.key} (env {self.env}) does not fit "
                               f"{getattr(self._model, '__name__', self._model)}: {exc}",
                               namespace=self.namespace, key=self.key) from exc

    def _changed(self, change: Change) -> None:
        if change.env not in (BASE_ENV, self.env):
            return
        try:
            raw = self._resolve()
        except NotFound:
            logger.warning("%s/%s was deleted; live value keeps its last value",
                           self.namespace, self.key)
            return
        except ConfhubError as exc:
            logger.warning("could not refresh %s/%s: %s", self.namespace, self.key, exc)
            return
        self._apply(raw, change.revision)

    def _apply(self, raw: Any, revision: int | None = None) -> None:
        staged = self._resolved_rollouts
        with self._lock:
            try:
                new = self._typed(raw)
            except InvalidValue as exc:
                self.error = exc
                logger.warning("refused a new value: %s", exc)
                for on_error in list(self._on_error):
                    _safely(on_error, exc)
                for rollout_id in staged:
                    self._report(rollout_id, "failed", str(exc))
                return
            old, self.value, self.error = self.value, new, None
            self.rollouts = staged
            if revision is not None:
                self.revision = max(self.revision, revision)
            self._write_cache(raw)
        failures = []
        if old != new:
            for callback in list(self._on_change):
                problem = _safely(callback, old, new)
                if problem is not None:
                    failures.append(problem)
        for rollout_id in staged:
            if failures:
                self._report(rollout_id, "failed", "; ".join(failures))
            else:
                self._report(rollout_id, "applied", None)

    def _read_cache(self) -> tuple[int, Any] | None:
        if self._cache_file is None:
            return None
        try:
            data = json.loads(self._cache_file.read_text("utf-8"))
            return int(data["revision"]), data["value"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_cache(self, raw: Any) -> None:
        """Write atomically (temp file + rename) so a crash never leaves half a file."""
        if self._cache_file is None:
            return
        try:
            self._cache_file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._cache_file.parent, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"revision": self.revision, "value": raw}, out)
            os.replace(tmp, self._cache_file)
        except (OSError, TypeError, ValueError) as exc:
            logger.warning("could not write the live cache file %s: %s", self._cache_file, exc)


def default_cache_file(url: str, tenant: str, namespace: str, key: str, env: str) -> Path:
    """Where a remote live value keeps its last good value (``$CONFHUB_CACHE_DIR`` or
    ``~/.cache/confhub``), one file per server, tenant, key and env."""
    root = Path(os.environ.get("CONFHUB_CACHE_DIR")
                or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "confhub")
    digest = hashlib.sha256(f"{url}\n{tenant}\n{env}".encode()).hexdigest()[:16]
    return root / "live" / digest / f"{namespace}.{key}.json"


def _safely(callback: Callable[..., object], *args: Any) -> str | None:
    """Run a callback; what went wrong (for the rollout's health gate), or None."""
    try:
        callback(*args)
    except Exception as exc:
        logger.exception("live value callback %r failed", callback)
        name = getattr(callback, "__qualname__", repr(callback))
        return f"on_change callback {name} raised {type(exc).__name__}: {exc}"
    return None
