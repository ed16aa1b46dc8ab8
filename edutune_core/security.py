"""Access control for serving EduTune beyond this computer, and checks on untrusted names.

EduTune listens on 127.0.0.1 unless the administrator sets another
``server.address``. On any other address a password is required: either
``EDUTUNE_PASSWORD`` (plain text, at least ``MIN_PASSWORD_LENGTH`` characters) or
``EDUTUNE_PASSWORD_FILE``, a file holding one line made by ``python -m edutune_core.security``.
Passwords are compared as salted scrypt hashes with ``hmac.compare_digest``, and failed
logins lock the browser session out for a growing time. A server-wide limit also applies,
because opening a new tab starts a new session.

For a server where each teacher has their own runs and uploads, the administrator
writes a users file instead (``EDUTUNE_USERS_FILE``): one ``name:hash`` line per user,
added with ``python -m edutune_core.security add-user NAME FILE``. It wins over the
shared password.

Run ``python -m edutune_core.security`` to print the hash line for a password file.
"""

from __future__ import annotations

import base64
import functools
import getpass
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
import sys
import threading
import time
import unicodedata
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from edutune_core.i18n import EduTuneError

logger = logging.getLogger(__name__)

PASSWORD_ENV = "EDUTUNE_PASSWORD"
PASSWORD_FILE_ENV = "EDUTUNE_PASSWORD_FILE"
USERS_FILE_ENV = "EDUTUNE_USERS_FILE"
MIN_PASSWORD_LENGTH = 8
MAX_USER_NAME_LENGTH = 64

# Access modes returned by ``access_mode``: open to anyone, one shared password, a
# password per user name, or no pages at all.
OPEN, LOGIN, USERS, REFUSE = "open", "login", "users", "refuse"

# scrypt settings: 16 MiB of memory and about 0.1 s per check (measured on the 2-core
# machine the tests ran on), which makes guessing slow without making a teacher wait.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_HASH_PREFIX = "scrypt"


class SecurityError(EduTuneError):
    """A password setting or an untrusted name that EduTune cannot accept."""


@dataclass(frozen=True)
class PasswordHash:
    """A salted scrypt hash and its cost settings, stored as one text line."""

    salt: bytes
    digest: bytes
    n: int = _SCRYPT_N
    r: int = _SCRYPT_R
    p: int = _SCRYPT_P

    def to_text(self) -> str:
        """Return ``scrypt$n$r$p$salt$digest`` with base64 salt and digest."""
        salt = base64.b64encode(self.salt).decode("ascii")
        digest = base64.b64encode(self.digest).decode("ascii")
        return f"{_HASH_PREFIX}${self.n}${self.r}${self.p}${salt}${digest}"

    @classmethod
    def from_text(cls, text: str) -> PasswordHash:
        """Parse a line written by ``to_text``.

        Raises:
            ValueError: The line is not a hash in that format.
        """
        parts = text.strip().split("$")
        if len(parts) != 6 or parts[0] != _HASH_PREFIX:
            raise ValueError("expected scrypt$n$r$p$salt$digest")
        n, r, p = (int(part) for part in parts[1:4])
        if n < 2 or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 16:
            raise ValueError("scrypt settings out of range")
        salt, digest = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
        if len(salt) < 16 or len(digest) < 32:
            raise ValueError("salt or digest too short")
        return cls(salt=salt, digest=digest, n=n, r=r, p=p)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length,
                          maxmem=256 * n * r + 2**20)


def hash_password(password: str) -> PasswordHash:
    """Hash ``password`` with a new random salt."""
    salt = secrets.token_bytes(16)
    return PasswordHash(salt=salt, digest=_scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, 32))


def verify_password(password: str, stored: PasswordHash) -> bool:
    """Return True when ``password`` matches ``stored``, comparing in constant time."""
    candidate = _scrypt(password, stored.salt, stored.n, stored.r, stored.p, len(stored.digest))
    return hmac.compare_digest(candidate, stored.digest)


def is_loopback(address: str | None) -> bool:
    """Return True when ``address`` (Streamlit's ``server.address``) serves this computer only.

    An empty address makes Streamlit listen on every interface, so it is not loopback.
    """
    if not address:
        return False
    address = address.strip().strip("[]")
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=4)
def _hash_of_environment_password(password: str) -> PasswordHash:
    # Hashed once per process and value, so each login costs one scrypt check, not two.
    return hash_password(password)


def configured_password(environ: dict[str, str] | None = None) -> PasswordHash | None:
    """Return the administrator's password hash, or None when no password is set.

    ``EDUTUNE_PASSWORD_FILE`` wins over ``EDUTUNE_PASSWORD`` when both are set.

    Raises:
        SecurityError: The password file cannot be read or contains no valid hash, or the
            password is shorter than ``MIN_PASSWORD_LENGTH``.
    """
    environ = os.environ if environ is None else environ
    file_name = environ.get(PASSWORD_FILE_ENV, "").strip()
    if file_name:
        return _read_password_file(Path(file_name).expanduser())
    password = environ.get(PASSWORD_ENV, "")
    if not password:
        return None
    if len(password) < MIN_PASSWORD_LENGTH:
        raise SecurityError("security.password_too_short", variable=PASSWORD_ENV, minimum=MIN_PASSWORD_LENGTH)
    return _hash_of_environment_password(password)


def _read_password_file(path: Path) -> PasswordHash:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SecurityError("security.password_file_unreadable", path=str(path),
                            reason=getattr(error, "strerror", None) or type(error).__name__) from error
    try:
        return PasswordHash.from_text(text)
    except ValueError as error:
        raise SecurityError("security.password_file_invalid", path=str(path)) from error


def check_user_name(name: str) -> str:
    """Return ``name`` trimmed, as a user name for the users file.

    Raises:
        SecurityError: The name is empty, longer than ``MAX_USER_NAME_LENGTH``, or
            contains a colon, a space or a control character.
    """
    name = unicodedata.normalize("NFC", name.strip())
    invalid = (not name or len(name) > MAX_USER_NAME_LENGTH or ":" in name
               or any(char.isspace() or unicodedata.category(char).startswith("C") for char in name))
    if invalid:
        raise SecurityError("security.user_name_invalid", name=clean_display_name(name, 80, fallback=""),
                            maximum=MAX_USER_NAME_LENGTH)
    return name


def read_users_file(path: Path) -> dict[str, PasswordHash]:
    """Read a users file: ``name:hash`` lines, blank lines and ``#`` comments.

    Raises:
        SecurityError: The file cannot be read, has no user, or a line is not a valid
            name and hash (the message gives the line number).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SecurityError("security.users_file_unreadable", path=str(path),
                            reason=getattr(error, "strerror", None) or type(error).__name__) from error
    users: dict[str, PasswordHash] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, hashed = line.partition(":")
        try:
            users[check_user_name(name)] = PasswordHash.from_text(hashed)
        except (ValueError, SecurityError) as error:
            raise SecurityError("security.users_file_invalid", path=str(path), line=number) from error
    if not users:
        raise SecurityError("security.users_file_empty", path=str(path))
    return users


def write_user(path: Path, name: str, stored: PasswordHash) -> None:
    """Add a user to a users file, or replace that user's password; other lines stay as they are."""
    name = check_user_name(name)
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept = [line for line in lines if line.strip().partition(":")[0].strip() != name]
    kept.append(f"{name}:{stored.to_text()}")
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text("\n".join(kept) + "\n", encoding="utf-8")
    temporary.chmod(0o600)
    temporary.replace(path)


def configured_users(environ: dict[str, str] | None = None) -> dict[str, PasswordHash] | None:
    """Return the users of ``EDUTUNE_USERS_FILE``, or None when it is not set.

    Raises:
        SecurityError: The file is invalid (see ``read_users_file``).
    """
    environ = os.environ if environ is None else environ
    file_name = environ.get(USERS_FILE_ENV, "").strip()
    if not file_name:
        return None
    return read_users_file(Path(file_name).expanduser())


def access_mode(address: str | None, environ: dict[str, str] | None = None
                ) -> tuple[str, PasswordHash | dict[str, PasswordHash] | None]:
    """Decide how pages are served.

    Returns ``(USERS, users)`` when a users file is set, ``(LOGIN, hash)`` when a shared
    password is set, else ``(OPEN, None)`` on a loopback address and ``(REFUSE, None)``
    on any other.

    Raises:
        SecurityError: The users file or the password setting is invalid.
    """
    users = configured_users(environ)
    if users is not None:
        return USERS, users
    stored = configured_password(environ)
    if stored is not None:
        return LOGIN, stored
    if is_loopback(address):
        return OPEN, None
    return REFUSE, None


@dataclass
class LoginThrottle:
    """Failed logins of one browser session, with a lockout that doubles after each extra failure.

    Attributes:
        max_failures: Failures allowed before the first lockout.
        base_lockout: Seconds of the first lockout.
        max_lockout: Maximum lockout in seconds.
    """

    max_failures: int = 5
    base_lockout: float = 30.0
    max_lockout: float = 900.0
    failures: int = 0
    locked_until: float = 0.0

    def seconds_left(self, now: float | None = None) -> int:
        """Return the whole seconds until the next attempt is allowed; 0 when allowed now."""
        now = time.time() if now is None else now
        return max(0, int(self.locked_until - now + 0.999))

    def record_failure(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.failures += 1
        extra = self.failures - self.max_failures
        if extra >= 0:
            self.locked_until = now + min(self.max_lockout, self.base_lockout * 2**extra)

    def record_success(self) -> None:
        self.failures = 0
        self.locked_until = 0.0


@dataclass
class FailureWindow:
    """Failed logins of the whole server in a sliding time window; thread-safe.

    Attributes:
        limit: Failures allowed within ``window`` seconds before every session must wait.
        window: Length of the window in seconds.
    """

    limit: int = 30
    window: float = 300.0
    total: int = 0
    _times: deque = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record_failure(self, now: float | None = None) -> int:
        """Count one failure and return the number of failures since the server started."""
        now = time.time() if now is None else now
        with self._lock:
            self._times.append(now)
            self.total += 1
            return self.total

    def seconds_left(self, now: float | None = None) -> int:
        """Return the whole seconds until the server accepts login attempts again; 0 when it does."""
        now = time.time() if now is None else now
        with self._lock:
            while self._times and self._times[0] <= now - self.window:
                self._times.popleft()
            if len(self._times) < self.limit:
                return 0
            return max(1, int(self._times[-self.limit] + self.window - now + 0.999))


SERVER_FAILURES = FailureWindow()


def check_login(password: str, stored: PasswordHash, throttle: LoginThrottle,
                server: FailureWindow | None = None, now: float | None = None) -> bool:
    """Check one login attempt against ``stored``, counting failures; never logs the password.

    ``server`` defaults to ``SERVER_FAILURES``, the window shared by every session.

    Returns:
        True when the password matches.

    Raises:
        SecurityError: The session or the server is locked out after too many failures;
            no check was made.
    """
    server = SERVER_FAILURES if server is None else server
    wait = max(throttle.seconds_left(now), server.seconds_left(now))
    if wait:
        raise SecurityError("security.locked", seconds=wait)
    if verify_password(password, stored):
        throttle.record_success()
        logger.info("login succeeded")
        return True
    throttle.record_failure(now)
    total = server.record_failure(now)
    logger.warning("failed login: %d in this session, %d since the server started", throttle.failures, total)
    return False


# Checked against an unknown user name, so that a wrong name costs as long as a wrong
# password and the timing does not reveal which names exist.
_UNKNOWN_USER_HASH = PasswordHash(salt=b"\0" * 16, digest=b"\0" * 32)


def check_user_login(name: str, password: str, users: dict[str, PasswordHash], throttle: LoginThrottle,
                     server: FailureWindow | None = None, now: float | None = None) -> str | None:
    """Check a user name and password, counting failures like ``check_login``.

    Returns:
        The user name as written in the users file, or None when the name or the
        password is wrong.

    Raises:
        SecurityError: The session or the server is locked out; no check was made.
    """
    key = unicodedata.normalize("NFC", name.strip())
    stored = users.get(key, _UNKNOWN_USER_HASH)
    if check_login(password, stored, throttle, server, now) and key in users:
        logger.info("user %s signed in", key)
        return key
    return None


_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


def clean_display_name(text: object, max_length: int = 120, fallback: str = "run") -> str:
    """Return ``text`` as a one-line name: control characters removed, spaces collapsed, length capped."""
    normalized = unicodedata.normalize("NFC", str(text))
    visible = "".join(" " if unicodedata.category(char).startswith("C") else char for char in normalized)
    collapsed = " ".join(visible.split())[:max_length].strip()
    return collapsed or fallback


def safe_relative_path(name: str) -> PurePosixPath:
    """Check a path from an archive and return it as a relative POSIX path.

    Raises:
        SecurityError: The path is absolute, has a drive letter, a backslash, a NUL
            character, an empty part, or a ``.`` or ``..`` part.
    """
    path = PurePosixPath(name.rstrip("/"))
    unsafe = (not name or name.startswith("/") or "\\" in name or "\x00" in name or _WINDOWS_DRIVE.match(name)
              or any(part in ("", ".", "..") for part in name.rstrip("/").split("/")))
    if unsafe:
        raise SecurityError("security.unsafe_path", name=clean_display_name(name, 200, fallback="?"))
    return path


def is_inside(path: Path, folder: Path) -> bool:
    """Return True when ``path`` resolves to ``folder`` or a path below it, following links."""
    return path.resolve().is_relative_to(folder.resolve())


def _print_hash_line() -> int:
    password = _ask_new_password()
    if password is None:
        return 2
    print(hash_password(password).to_text())
    return 0


def _ask_new_password() -> str | None:
    password = getpass.getpass("New EduTune password: ")
    if len(password) < MIN_PASSWORD_LENGTH:
        print(f"The password needs at least {MIN_PASSWORD_LENGTH} characters.", file=sys.stderr)
        return None
    if getpass.getpass("Repeat it: ") != password:
        print("The two passwords differ; nothing was written.", file=sys.stderr)
        return None
    return password


def _add_user(arguments: list[str]) -> int:
    if len(arguments) != 2:
        print("usage: python -m edutune_core.security add-user NAME FILE", file=sys.stderr)
        return 2
    name, file_name = arguments
    try:
        name = check_user_name(name)
    except SecurityError as error:
        print(error.message("en"), file=sys.stderr)
        return 2
    password = _ask_new_password()
    if password is None:
        return 2
    write_user(Path(file_name).expanduser(), name, hash_password(password))
    print(f"Saved the password of {name} in {file_name}.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["add-user"]:
        sys.exit(_add_user(sys.argv[2:]))
    sys.exit(_print_hash_line())
