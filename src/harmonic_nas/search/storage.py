"""Where the study lives: an Optuna RDB storage (SQLite in the run directory, or PostgreSQL for
several machines) and the recovery of interrupted candidates.

Recovery: every trial records the host and pid of its worker. At start, and while waiting, a worker
fails the RUNNING trials of dead local processes at once; trials of other machines are failed by
Optuna's heartbeat once stale. Either way :class:`RetryInterrupted` enqueues a copy of the genome
(same params, same NSGA-II generation) as a WAITING trial, which the next ``ask`` picks up.
Completed trials are committed by Optuna's ``tell`` and never touched again.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import optuna
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.trial import TrialState
from sqlalchemy.pool import NullPool

from harmonic_nas.errors import HarmonicError
from harmonic_nas.utils.credentials import redact, scrub, with_password

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig
from harmonic_nas.search.attrs import (
    ATTR_CONFIG_HASH,
    ATTR_CONFIG_IDENTITY,
    ATTR_FAIL,
    ATTR_INTERRUPTED,
    ATTR_WORKER,
    SYS_RETRY_HISTORY,
)
from harmonic_nas.search.identity import differing_keys
from harmonic_nas.utils.io import write_error

logger = logging.getLogger(__name__)


MAX_RETRY = 3


class StorageError(HarmonicError):
    """The study storage cannot be opened, or holds a study of another config."""


class NotAStudyError(StorageError):
    """A database opened read-only holds no (complete) Optuna study storage: ``empty``, no table
    at all; ``partial``, some of Optuna's (another process may be creating them this instant)."""

    def __init__(self, message: str, *, empty: bool, partial: bool) -> None:
        super().__init__(message)
        self.empty = empty
        self.partial = partial


def default_storage_url(cfg: ExperimentConfig) -> str:
    """``sqlite:///<run>/study.db`` (absolute path, so workers in other cwds open the same file)."""
    return f"sqlite:///{(cfg.run_path / 'study.db').resolve()}"


#: Placeholder for the run directory in stored storage URLs (so a moved or copied run works).
RUN_PLACEHOLDER = "{run}"


def portable_url(url: str, run: Path) -> str:
    """``url`` as stored in the run directory: a SQLite file inside ``run`` becomes
    ``sqlite:///{run}/<relative path>``; other URLs are redacted (no password is ever stored)."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :]).expanduser()
        try:
            rel = path.resolve().relative_to(Path(run).resolve())
        except (ValueError, OSError):
            return url
        return f"sqlite:///{RUN_PLACEHOLDER}/{rel.as_posix()}"
    return redact(url)


def resolve_url(stored: str, run: Path) -> str:
    """The inverse of :func:`portable_url` for the run directory where it now lives."""
    prefix = f"sqlite:///{RUN_PLACEHOLDER}/"
    if stored.startswith(prefix):
        return f"sqlite:///{(Path(run) / stored[len(prefix) :]).resolve()}"
    return stored


def open_storage(url: str, *, heartbeat_s: int = 30, read_only: bool = False) -> RDBStorage:
    """Open (and create the tables of) an RDB storage; one-line :class:`StorageError` if it fails.

    ``read_only`` (``status``, the identity check before a search): nothing is created, migrated
    or written. The URL must hold an Optuna study database already (checked with a plain
    connection first); SQLite is opened in read-only mode, PostgreSQL in read-only transactions,
    so that a reader cannot change the storage even by accident."""
    shown = redact(url)
    url = with_password(url, None)  # a saved copy's masked password: libpq's sources apply
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if not scheme.startswith(("sqlite", "postgresql", "postgres", "mysql")):
        raise StorageError(
            f"unsupported storage URL {shown!r}; use sqlite:///path/study.db or "
            "postgresql://user:password@host:port/database"
        )
    if scheme in ("postgres", "postgresql"):
        # the driver is named explicitly: whichever of psycopg 3 / psycopg2 is installed
        url = f"postgresql+{_pg_driver()}" + url[len(scheme) :]
    if scheme.startswith("sqlite") and url.split(":///", 1)[-1] in ("", ":memory:", url):
        raise StorageError(
            f"SQLite storage {shown!r} needs a file path (sqlite:///path/to/study.db): an "
            "in-memory study could be neither resumed nor shared"
        )
    connect_args: dict[str, Any] = {"connect_timeout": 10}
    try:
        if scheme.startswith("sqlite"):
            connect_args = {"timeout": 120}
            path = Path(url.split(":///", 1)[-1]).expanduser()
            if read_only:
                if not path.is_file():
                    raise StorageError(
                        f"no study database at {path}; start the search with "
                        "`harmonic-nas search CONFIG`"
                    )
                url = f"sqlite:///file:{quote(str(path.resolve()))}?mode=ro&uri=true"
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
        elif read_only and scheme.startswith("postgres"):
            connect_args["options"] = "-c default_transaction_read_only=on"
        if read_only:
            _check_study_tables(url, connect_args, shown)
        storage = _create_rdb(url, connect_args, heartbeat_s, create=not read_only)
        if scheme.startswith("sqlite") and not read_only:
            _tune_sqlite(storage)
        return storage
    except StorageError:
        raise
    except OSError as exc:  # the folder of a SQLite file cannot be made (disk full, ...)
        cause = write_error(exc.filename or shown, exc)
        raise StorageError(f"cannot open study storage {shown}: {cause}") from None
    except Exception as exc:  # sqlalchemy ArgumentError / OperationalError, missing driver, ...
        reason = scrub(" ".join(str(exc).split()), url)
        first = reason.split("[SQL:")[0].split("(Background on")[0].strip()
        raise StorageError(
            f"cannot open study storage {shown}: {exc.__class__.__name__}: {first[:200]}; "
            "check the URL, that the server is running and reachable, and the credentials "
            "(PGPASSWORD, ~/.pgpass or search.storage_password_env)"
        ) from None


def shown_url(url: str) -> str:
    """``url`` as a user wrote it: without a password, and a SQLite file opened read-only
    (``sqlite:///file:<path>?mode=ro&uri=true``) as its plain ``sqlite:///<path>``."""
    prefix = "sqlite:///file:"
    if url.startswith(prefix) and url.endswith("?mode=ro&uri=true"):
        return "sqlite:///" + unquote(url[len(prefix) : -len("?mode=ro&uri=true")])
    return redact(url)


#: the tables (and filled version rows) of an Optuna storage that opening it does not write
_STUDY_TABLES = ("studies", "trials", "version_info", "alembic_version")


def _check_study_tables(url: str, connect_args: dict[str, Any], shown: str) -> None:
    """Refuse, writing nothing, a database that is not an Optuna study storage (a foreign or an
    empty database): Optuna would create its tables (or its version rows) on opening it."""
    engine = sqlalchemy.create_engine(url, connect_args=connect_args, poolclass=NullPool)
    try:
        tables = set(sqlalchemy.inspect(engine).get_table_names())
        empty = not tables
        missing = [t for t in _STUDY_TABLES if t not in tables]
        if not missing:
            with engine.connect() as con:
                for table in ("version_info", "alembic_version"):
                    if con.execute(sqlalchemy.text(f"SELECT COUNT(*) FROM {table}")).scalar() == 0:
                        missing.append(f"{table} (empty)")
    finally:
        engine.dispose()
    if missing:
        raise NotAStudyError(
            f"{shown} is not a study database (it lacks the Optuna table(s) "
            f"{', '.join(missing[:4])}); nothing was changed: pass the storage the search used "
            "(--storage URL), or start the search with `harmonic-nas search CONFIG`",
            empty=empty,
            partial="studies" in tables,
        )


def _create_rdb(
    url: str, connect_args: dict[str, Any], heartbeat_s: int, *, create: bool = True
) -> RDBStorage:
    """``RDBStorage(url)``; when several processes create the tables of a new database at the same
    instant, the losers see an integrity error: they retry and find the tables made. ``create``
    false: the tables must exist (nothing is created)."""
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url,
                    engine_kwargs={"connect_args": connect_args, "pool_pre_ping": True},
                    heartbeat_interval=heartbeat_s,
                    grace_period=3 * heartbeat_s,
                    heartbeat_stale_trial_callback=RetryInterrupted(MAX_RETRY),
                    skip_table_creation=not create,
                )
        except sqlalchemy.exc.IntegrityError:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
        except sqlalchemy.exc.OperationalError as exc:
            if "already exists" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _pg_driver() -> str:
    """The installed PostgreSQL driver (psycopg 3, the ``postgres`` extra, else psycopg2)."""
    for module, driver in (("psycopg", "psycopg"), ("psycopg2", "psycopg2")):
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        return driver
    raise StorageError(
        "PostgreSQL storage needs a driver, and none is installed; install the extra: "
        "pip install 'harmonic-nas[postgres]'"
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _tune_sqlite(storage: RDBStorage) -> None:
    """WAL journal + ``synchronous=NORMAL``: a commit no longer waits for an fsync (Optuna commits
    once per parameter), yet a committed trial survives the crash or SIGKILL of any process; only
    an OS crash / power loss may drop the last commits. WAL also lets readers (``status``, the
    progress poller) run while a worker writes."""
    sqlalchemy.event.listen(storage.engine, "connect", _sqlite_pragmas)
    storage.engine.dispose()  # reconnect with the pragmas


def open_study(
    storage: RDBStorage,
    *,
    study_name: str,
    directions: list[str],
    sampler: optuna.samplers.BaseSampler,
    config_hash: str,
    attrs: dict[str, Any],
    create: bool = True,
    identity: dict[str, Any] | None = None,
    metric_names: list[str] | None = None,
    legacy_hash: str | None = None,
) -> optuna.Study:
    """Create the study or load it; refuse a study of the same name made with another config.

    ``identity`` (dotted keys, see :func:`config_identity`) is stored with a new study so that a
    refusal names the keys that differ. A study found with the same identity but other budget
    attributes (``budget``, ``population`` in ``attrs``) is extended: its attributes are updated.
    """
    try:
        existing = storage.get_study_id_from_name(study_name)
    except KeyError:
        existing = None
    stored = {ATTR_CONFIG_HASH: config_hash, **attrs}
    if identity is not None:
        stored[ATTR_CONFIG_IDENTITY] = identity
    if existing is None:
        if not create:
            raise StorageError(
                f"study '{study_name}' does not exist in {shown_url(storage.url)}; "
                "start it with `harmonic-nas search CONFIG`"
            )
        study = optuna.create_study(
            storage=storage,
            study_name=study_name,
            directions=[optuna.study.StudyDirection[d.upper()] for d in directions],
            sampler=sampler,
            load_if_exists=True,  # another worker may create it at the same instant
        )
        if ATTR_CONFIG_HASH not in study.user_attrs:
            for k, v in stored.items():
                study.set_user_attr(k, v)
    else:
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
    found = study.user_attrs.get(ATTR_CONFIG_HASH)
    if found != config_hash and legacy_hash is not None and found == legacy_hash:
        study.set_user_attr(ATTR_CONFIG_HASH, config_hash)  # made before budgets left the identity
        found = config_hash
        if identity is not None:
            study.set_user_attr(ATTR_CONFIG_IDENTITY, identity)
    if found != config_hash:
        raise _other_config(storage, study_name, study.user_attrs, config_hash, identity)
    if [d.name.lower() for d in study.directions] != directions:
        raise StorageError(
            f"study '{study_name}' optimises {[d.name.lower() for d in study.directions]}, "
            f"not {directions}; pass --study-name NEW_NAME"
        )
    for key in ("budget", "population"):
        if key in attrs and study.user_attrs.get(key) != attrs[key]:
            logger.info(
                "study '%s': %s %s -> %s (extended)",
                study_name,
                key,
                study.user_attrs.get(key),
                attrs[key],
            )
            study.set_user_attr(key, attrs[key])
    if metric_names and len(metric_names) == len(directions) and study.metric_names is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(metric_names)
    return study


def check_study_identity(
    storage: RDBStorage,
    study_name: str,
    *,
    config_hash: str,
    identity: dict[str, Any] | None = None,
    legacy_hash: str | None = None,
) -> None:
    """Refuse, writing nothing, a study ``study_name`` of ``storage`` made with another config
    (the refusal :func:`open_study` gives): so a caller decides before it does any work."""
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return
    attrs = storage.get_study_user_attrs(study_id)
    found = attrs.get(ATTR_CONFIG_HASH)
    if found is None or found == config_hash or (legacy_hash is not None and found == legacy_hash):
        return  # None: being created by another worker this instant (open_study decides)
    raise _other_config(storage, study_name, attrs, config_hash, identity)


def _other_config(
    storage: RDBStorage,
    study_name: str,
    attrs: dict[str, Any],
    config_hash: str,
    identity: dict[str, Any] | None,
) -> StorageError:
    """The one-line refusal of a study made with another config, naming the differing keys."""
    before = attrs.get(ATTR_CONFIG_IDENTITY)
    keys = differing_keys(before, identity) if isinstance(before, dict) and identity else []
    what = (
        f"(it differs in {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''})"
        if keys
        else f"(hash {attrs.get(ATTR_CONFIG_HASH)} != {config_hash})"
    )
    return StorageError(
        f"study '{study_name}' in {shown_url(storage.url)} was made with another config {what}; "
        "rerun with the original config to resume it (only search.generations and "
        "search.population may change, to extend it), or pass --study-name NEW_NAME to "
        "start a separate study"
    )


def worker_identity() -> dict[str, Any]:
    """Who runs a trial: used to fail the trials of dead local workers at once."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RetryInterrupted:
    """Enqueue a failed (interrupted) trial again: same params and NSGA-II generation, fresh attrs.

    Used as Optuna's ``heartbeat_stale_trial_callback`` and for dead local workers. At most
    ``max_retry`` retries per original trial.
    """

    def __init__(self, max_retry: int = MAX_RETRY) -> None:
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if not trial.params:
            return  # it never got a genome (it was waiting for a budget slot): nothing to retry
        history = [*trial.system_attrs.get(SYS_RETRY_HISTORY, []), trial.number]
        if len(history) > self.max_retry:
            logger.warning("trial %d interrupted %d times; not retried", trial.number, len(history))
            return
        system_attrs = {
            k: v
            for k, v in trial.system_attrs.items()
            if not k.startswith("constraints") and k not in ("failed_trial", SYS_RETRY_HISTORY)
        }
        system_attrs["failed_trial"] = history[0]
        system_attrs[SYS_RETRY_HISTORY] = history
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING,
                params=trial.params,
                distributions=trial.distributions,
                system_attrs=system_attrs,
            )
        )
        logger.info("trial %d interrupted; its genome is queued again", trial.number)


def recover_interrupted(study: optuna.Study, storage: RDBStorage) -> int:
    """Fail the RUNNING trials of dead local workers and retry every interrupted, unretried trial.

    Returns how many trials were failed here. Safe to call from several workers at once: only the
    worker whose state change succeeds retries a trial.
    """
    host = socket.gethostname()
    failed = 0
    retry = RetryInterrupted(MAX_RETRY)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        who = t.user_attrs.get(ATTR_WORKER) or {}
        if who.get("host") != host or _pid_alive(int(who.get("pid", -1))):
            continue
        try:
            storage.set_trial_user_attr(t._trial_id, ATTR_FAIL, "interrupted: worker process died")
            storage.set_trial_user_attr(t._trial_id, ATTR_INTERRUPTED, True)
            changed = storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        if changed:
            failed += 1
            retry(study, storage.get_trial(t._trial_id))
    # Trials interrupted by Ctrl-C (marked by the runner) that no WAITING/later trial retries yet.
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get(SYS_RETRY_HISTORY, [])}
    for t in trials:
        if (
            t.state == TrialState.FAIL
            and t.user_attrs.get(ATTR_INTERRUPTED)
            and t.number not in retried
            and t.params
        ):
            retry(study, t)
    return failed


def fail_stale(study: optuna.Study) -> None:
    """Optuna's heartbeat check (fails stale RUNNING trials of any machine and retries them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)
