"""Ledger entries: what one line of ``ledger.json`` records, its hash and its signature.

An entry's hash is SHA-256 over a domain-separation prefix and the entry's
canonical JSON (the body: everything but hash and signature); the first entry
chains to :data:`GENESIS`. The signature (Ed25519) covers the hash. On disk an
entry is one line, the canonical JSON of ``{"body", "hash", "signature"}``,
so the body's bytes can be cut out of the line and hashed as they are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from policyledger_core.canonical import (
    JsonInputError,
    canonical_bytes,
    is_hash,
    is_hex,
    load_json_strict,
    sha256_hex,
)
from policyledger_core.errors import Rejected
from policyledger_core.learn.hyper import ALGORITHM_NAMES, ALGORITHMS, Hyperparameters
from policyledger_core.ledger.signing import Publisher, verify_signature
from policyledger_core.sim.config import ENV_ID, ConfigError, EnvConfig
from policyledger_core.tasks.spec import CATALOGUE, TaskInfo, info_for_config

ENTRY_SCHEMA = "policyledger/entry"
ENTRY_VERSION = 1
ENTRY_DOMAIN = b"policyledger/entry-v1\n"
GENESIS = sha256_hex(b"policyledger/genesis-v1")
"""What the first entry's ``prev`` holds."""
ORIGINS = ("trained", "added", "imported", "recovered")
_FROM = ("publisher", "entry_hash", "signature")
"""What an imported or recovered entry records of the entry it came from."""
_BACKUP_NAME = re.compile(r"ledger\.json\.damaged-[0-9TZ-]{1,40}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
LINE_HEAD = b'{"body":'
_LINE_TAIL = len(b',"hash":"') + 64 + len(b'","signature":"') + 128 + len(b'"}')
MAX_LINE_BYTES = 16 * 1024
MAX_WHOLE = 2**63 - 1  # the largest index, episode count, seed or agent count an entry records


class EntryError(Rejected, ValueError):
    """An entry that is malformed or does not check out; the message says which field."""


def utc_now() -> str:
    """The current UTC time, to the second, as recorded in entries."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hash_body(body_bytes: bytes) -> str:
    """The entry hash of canonical body bytes."""
    return sha256_hex(ENTRY_DOMAIN + body_bytes)


@dataclass(frozen=True, slots=True)
class Verification:
    """What an entry records of its verification by replay (the figures that rank it)."""

    mean: float
    std: float
    ci95: float
    episodes: int
    suite: str
    optimum: float
    fraction_of_optimum: float
    replay_digest: str
    exact_value: float | None = None
    """A toy-text task's table: its exact expected return (None for the cyber-defense task)."""


@dataclass(frozen=True, slots=True)
class TrainingRecord:
    """How a trained policy was learned, as its entry records it."""

    algorithm: str
    hyperparameters: Hyperparameters
    episodes: int
    seed: int
    agents: int
    """K: the population it was the best agent of (1 for a single agent)."""
    training_reward: float
    """Mean return of its last training episodes (exploring)."""

    def summary(self) -> str:
        """One line: algorithm, episodes, seed, K."""
        name = ALGORITHM_NAMES.get(self.algorithm, self.algorithm)
        return f"{name}, {self.episodes:,} episodes, seed {self.seed}, K={self.agents}"

    def settings(self) -> str:
        """Every hyperparameter, one per line, as recorded."""
        return "\n".join(f"{k} = {v}" for k, v in self.hyperparameters.to_dict().items())


@dataclass(frozen=True, slots=True)
class Origin:
    """How an entry came to this ledger; imports and recoveries name the entry they came from."""

    kind: str
    """One of :data:`ORIGINS`."""
    publisher: str | None = None
    entry_hash: str | None = None
    signature: str | None = None
    backup: str | None = None
    """A recovered entry: the ``ledger.json.damaged-<time>`` file it was found in, and its index there."""
    index: int | None = None

    @classmethod
    def of(cls, recorded: Mapping[str, Any]) -> Origin:
        """From an entry body's validated ``origin`` object."""
        return cls(str(recorded["kind"]), recorded.get("publisher"), recorded.get("entry_hash"),
                   recorded.get("signature"), recorded.get("backup"), recorded.get("index"))

    @property
    def first_publisher(self) -> str | None:
        """The original publisher of an imported or recovered entry; None for the ledger's own."""
        return self.publisher if self.kind in ("imported", "recovered") else None


@dataclass(frozen=True, eq=False, slots=True)
class Entry:
    """A sealed entry: validated body, its canonical bytes, hash and signature."""

    body: dict[str, Any]
    body_bytes: bytes
    hash: str
    signature: str
    config: EnvConfig | TaskInfo
    """The body's configuration (the cyber-defense task's, or a toy-text task), its verification
    figures and origin: read once, when it was validated."""
    verification: Verification
    origin: Origin
    training: TrainingRecord | None
    """None for a policy added or imported without training."""

    @property
    def index(self) -> int:
        return int(self.body["index"])

    @property
    def prev(self) -> str:
        return str(self.body["prev"])

    @property
    def policy_hash(self) -> str:
        return str(self.body["policy_hash"])

    @property
    def publisher(self) -> str:
        return str(self.body["publisher"])

    @property
    def timestamp(self) -> str:
        return str(self.body["timestamp"])

    def line(self) -> bytes:
        """The entry's line in ``ledger.json`` (no newline)."""
        return (LINE_HEAD + self.body_bytes + b',"hash":"' + self.hash.encode()
                + b'","signature":"' + self.signature.encode() + b'"}')

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (as in bundles)."""
        return {"body": self.body, "hash": self.hash, "signature": self.signature}

    def signature_valid(self) -> bool:
        """True when the publisher named in the body signed this hash."""
        return verify_signature(self.publisher, self.hash, self.signature)


def seal(body: dict[str, Any], publisher: Publisher) -> Entry:
    """Validate a body, hash it and sign it with the publisher's key."""
    records = validate_body(body)
    if body["publisher"] != publisher.public_hex:
        raise EntryError("publisher: the body names another key than the signer's")
    data = canonical_bytes(body)
    digest = hash_body(data)
    entry = Entry(body, data, digest, publisher.sign(digest), *records)
    if len(entry.line()) > MAX_LINE_BYTES:
        raise EntryError(f"entry: longer than {MAX_LINE_BYTES} bytes")
    return entry


def split_line(line: bytes) -> tuple[bytes, str, str]:
    """Cut a ledger line into body bytes, hash and signature, without parsing JSON."""
    if len(line) > MAX_LINE_BYTES:
        raise EntryError(f"entry: line longer than {MAX_LINE_BYTES} bytes")
    tail = line[-_LINE_TAIL:]
    if not line.startswith(LINE_HEAD) or len(line) <= len(LINE_HEAD) + _LINE_TAIL or \
            not tail.startswith(b',"hash":"') or not tail.endswith(b'"}'):
        raise EntryError("entry: not a ledger line")
    digest, signature = tail[9:73], tail[88:216]
    if tail[73:88] != b'","signature":"' or not is_hex(digest, 64) or not is_hex(signature, 128):
        raise EntryError("entry: malformed hash or signature")
    return line[len(LINE_HEAD):-_LINE_TAIL], digest.decode("ascii"), signature.decode("ascii")


def parse_line(line: bytes) -> Entry:
    """Parse and fully validate one ledger line (hash included, signature not)."""
    body_bytes, digest, signature = split_line(line)
    try:
        # No depth walk: validate_body checks the shape of every field, and the line is bounded.
        body = load_json_strict(body_bytes, max_bytes=MAX_LINE_BYTES, max_depth=None)
    except JsonInputError as exc:
        raise EntryError(f"entry: {exc}") from None
    return _checked(body, body_bytes, digest, signature, copy=False)  # a fresh dict of its own


def from_dict(data: object) -> Entry:
    """An entry given as parsed JSON (bundles): validated, hash recomputed and checked."""
    if not isinstance(data, Mapping) or set(data) != {"body", "hash", "signature"}:
        raise EntryError("entry: expected an object with body, hash and signature")
    digest, signature = data["hash"], data["signature"]
    if not is_hash(digest):
        raise EntryError("entry.hash: expected 64 lowercase hex characters")
    if not isinstance(signature, str) or not _HEX128.fullmatch(signature):
        raise EntryError("entry.signature: expected 128 lowercase hex characters")
    body = data["body"]
    try:
        body_bytes = canonical_bytes(body)
    except (TypeError, ValueError):
        raise EntryError("entry.body: not canonical JSON data") from None
    return _checked(body, body_bytes, digest, signature)


def _checked(body: Any, body_bytes: bytes, digest: str, signature: str, copy: bool = True) -> Entry:
    records = validate_body(body)
    if canonical_bytes(body) != body_bytes:
        raise EntryError("entry: body is not in canonical form")
    if hash_body(body_bytes) != digest:
        raise EntryError("entry: hash does not match its content")
    return Entry(dict(body) if copy else body, body_bytes, digest, signature, *records)


# -- field validation ---------------------------------------------------------------------------

_BODY_FIELDS = {"schema", "version", "index", "timestamp", "policy_hash", "env_id", "config",
                "verification", "training", "origin", "publisher", "prev"}
_VERIFICATION_NUMBERS = ("mean", "std", "ci95", "fraction_of_optimum", "optimum")
_VERIFICATION_FIELDS = {*_VERIFICATION_NUMBERS, "episodes", "suite", "replay_digest"}
_TASK_VERIFICATION_FIELDS = {*_VERIFICATION_FIELDS, "exact_value"}
"""A toy-text task's entry also records its table's exact expected return."""
_NUMBER_LABELS = [(name, f"verification.{name}") for name in _VERIFICATION_NUMBERS]
_PLAIN_ORIGINS = {kind: Origin(kind) for kind in ("trained", "added")}
"""Origins that record nothing but their kind, shared by every entry that has one."""
_TRAINING_FIELDS = {"algorithm", "hyperparameters", "episodes", "seed", "training_reward", "agents"}


def _require_int(name: str, value: object, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_WHOLE:
        raise EntryError(f"{name}: expected a whole number from {low} to 2**63 - 1")
    return value


def _require_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EntryError(f"{name}: expected a finite number")
    if (isinstance(value, int) and abs(value) > 10**15) or not math.isfinite(value):
        raise EntryError(f"{name}: expected a finite number of sane size")
    return float(value)


def _require_hash(name: str, value: object) -> str:
    if not is_hash(value):
        raise EntryError(f"{name}: expected 64 lowercase hex characters")
    return str(value)


def _require_fields(name: str, value: object, fields: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise EntryError(f"{name}: expected an object")
    if set(value) != fields:
        odd = sorted(set(value) ^ fields)[0]
        raise EntryError(f"{name}.{odd}: {'unknown' if odd in value else 'missing'} field")
    return value


def validate_body(body: object) -> tuple[EnvConfig | TaskInfo, Verification, Origin, TrainingRecord | None]:
    """Check every field and type of an entry body; its configuration, verification and origin.

    Raises :class:`EntryError` naming the first bad field.
    """
    b = _require_fields("entry", body, _BODY_FIELDS)
    if b["schema"] != ENTRY_SCHEMA or type(b["version"]) is not int or b["version"] != ENTRY_VERSION:
        raise EntryError("entry: unknown schema or version")
    _require_int("index", b["index"])
    if not isinstance(b["timestamp"], str) or not _TIMESTAMP.fullmatch(b["timestamp"]):
        raise EntryError("timestamp: expected YYYY-MM-DDTHH:MM:SSZ")
    _require_hash("policy_hash", b["policy_hash"])
    _require_hash("publisher", b["publisher"])
    _require_hash("prev", b["prev"])
    config: EnvConfig | TaskInfo
    if b["env_id"] != ENV_ID:
        if not isinstance(b["env_id"], str) or b["env_id"] not in CATALOGUE:
            raise EntryError(f"env_id: unknown environment {b['env_id']!r:.60}")
        try:
            config = info_for_config(b["env_id"], b["config"])
        except ConfigError as exc:
            raise EntryError(str(exc) if str(exc).startswith("config") else f"config: {exc}") from None
    else:
        try:
            config = _config_of(b["config"])
        except (ConfigError, TypeError, ValueError) as exc:
            raise EntryError(f"config.{exc}") from None
    verification = _validate_verification(b["verification"], isinstance(config, TaskInfo))
    training = _validate_training(b["training"])
    return config, verification, _validate_origin(b["origin"]), training


def _config_of(data: object) -> EnvConfig:
    """The validated configuration of a body's ``config`` object (raises ConfigError or TypeError).

    A ledger repeats a few configurations, so each is validated once. The key is the parsed
    JSON value's repr: cheaper than its canonical bytes, and as exact for plain JSON values
    (true, 1 and 1.0 differ; another key order is only a miss).
    """
    key = repr(data)
    found = _CONFIGS.get(key)
    if found is None:
        found = EnvConfig.from_dict(data)
        if len(_CONFIGS) >= _MAX_CONFIGS:
            _CONFIGS.clear()
        _CONFIGS[key] = found
    return found


_CONFIGS: dict[str, EnvConfig] = {}
_MAX_CONFIGS = 64


def _validate_verification(value: object, task: bool) -> Verification:
    v = _require_fields("verification", value, _TASK_VERIFICATION_FIELDS if task else _VERIFICATION_FIELDS)
    mean, std, ci95, fraction, optimum = [_require_number(label, v[name]) for name, label in _NUMBER_LABELS]
    episodes = _require_int("verification.episodes", v["episodes"], 1)
    if not isinstance(v["suite"], str) or len(v["suite"]) > 64:
        raise EntryError("verification.suite: expected a short string")
    digest = _require_hash("verification.replay_digest", v["replay_digest"])
    exact = _require_number("verification.exact_value", v["exact_value"]) if task else None
    return Verification(mean, std, ci95, episodes, v["suite"], optimum, fraction, digest, exact)


def _validate_training(value: object) -> TrainingRecord | None:
    if value is None:
        return None
    t = _require_fields("training", value, _TRAINING_FIELDS)
    if t["algorithm"] not in ALGORITHMS:
        raise EntryError("training.algorithm: unknown algorithm")
    try:
        hyper = Hyperparameters.from_dict(t["hyperparameters"])
    except (ConfigError, TypeError) as exc:
        raise EntryError(f"training.hyperparameters.{exc}") from None
    return TrainingRecord(t["algorithm"], hyper, _require_int("training.episodes", t["episodes"]),
                    _require_int("training.seed", t["seed"]), _require_int("training.agents", t["agents"], 1),
                    _require_number("training.training_reward", t["training_reward"]))


def _validate_origin(value: object) -> Origin:
    if not isinstance(value, Mapping) or value.get("kind") not in ORIGINS:
        raise EntryError("origin.kind: expected one of " + ", ".join(ORIGINS))
    if value["kind"] in _PLAIN_ORIGINS:
        _require_fields("origin", value, {"kind"})
        return _PLAIN_ORIGINS[value["kind"]]
    if value["kind"] == "recovered":  # re-chained by a repair: where it was found
        o = _require_fields("origin", value, {"kind", "backup", "index", *_FROM})
        if not isinstance(o["backup"], str) or not _BACKUP_NAME.fullmatch(o["backup"]):
            raise EntryError("origin.backup: expected the name of a ledger.json.damaged-<time> file")
        _require_int("origin.index", o["index"])
    else:
        o = _require_fields("origin", value, {"kind", *_FROM})
    _require_hash("origin.publisher", o["publisher"])
    _require_hash("origin.entry_hash", o["entry_hash"])
    if not isinstance(o["signature"], str) or not _HEX128.fullmatch(o["signature"]):
        raise EntryError("origin.signature: expected 128 lowercase hex characters")
    return Origin.of(o)
