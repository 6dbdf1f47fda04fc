"""Typed settings from ``config.toml``, validated on load.

Only the entry points (cli, daemon, api app) call ``load_settings``; everything
else receives values. A bad file stops the command with exit 2 and a message
naming the file, the key and what was expected. Secrets never live here:
Azure access goes through azure-identity, passwords come from the environment.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evidence.errors import ConfigError

DEFAULT_CONFIG = "config.toml"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_EVERY = re.compile(r"^every\s+(\d+)\s*([smhd])$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str = "sqlite:///var/evidence.db"
    password_env: str = Field(
        default="", description="environment variable holding the database password"
    )

    @field_validator("url")
    @classmethod
    def _no_password_in_url(cls, value: str) -> str:
        if re.match(r"^[a-z0-9+]+://[^/@]*:[^/@]*@", value):
            raise ValueError("must not contain a password; set password_env instead")
        if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", value):
            raise ValueError("expected a sqlite:/// or postgresql+psycopg:// URL")
        return value


class StoreSettings(_Section):
    # Only the filesystem store ships in this version; an Azure Blob (WORM) store
    # is designed (DESIGN.md) but not built, so the config refuses it plainly.
    kind: Literal["filesystem"] = "filesystem"
    path: str = "var/store"


class SigningSettings(_Section):
    kind: Literal["file"] = "file"
    key_path: str = "var/signing-key.pem"
    trusted_keys: list[str] = Field(
        default_factory=list, description="extra public key files (PEM) whose checkpoints verify"
    )


class StateSettings(_Section):
    path: str = Field(default="var/state", description="outbox, locks, witness checkpoint")


class PrivacySettings(_Section):
    pseudonym_key_path: str = "var/pseudonym.key"


class CollectSettings(_Section):
    max_record_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)


class AzureSettings(_Section):
    credential: Literal[
        "default", "managed_identity", "client_secret", "workload_identity", "azure_cli"
    ] = "default"
    cloud: Literal["public", "usgov", "china", "custom"] = "public"
    resource_manager_url: str = "https://management.azure.com"
    graph_url: str = "https://graph.microsoft.com"
    authority_host: str = "https://login.microsoftonline.com"
    ca_bundle: str = ""
    verify_challenge_resource: bool = True
    retry_total: int = Field(default=6, ge=0, le=20)

    @field_validator("resource_manager_url", "graph_url", "authority_host")
    @classmethod
    def _https_only(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be an https:// URL")
        return value.rstrip("/")


class SourceSettings(BaseModel):
    """One ``[[sources]]`` table. Keys beyond these are the collector's options,
    validated against the collector's own model when sources are checked."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    kind: str
    schedule: str = "every 24h"
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must match [a-z0-9][a-z0-9-]*")
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Settings(_Section):
    database: DatabaseSettings = DatabaseSettings()
    store: StoreSettings = StoreSettings()
    signing: SigningSettings = SigningSettings()
    state: StateSettings = StateSettings()
    privacy: PrivacySettings = PrivacySettings()
    collect: CollectSettings = CollectSettings()
    azure: AzureSettings = AzureSettings()
    sources: Annotated[list[SourceSettings], Field(default_factory=list)]
    # Where the file was read from; relative paths resolve against its folder.
    config_path: Path = Path(DEFAULT_CONFIG)

    @property
    def base_dir(self) -> Path:
        return self.config_path.resolve().parent

    def resolve(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def database_url(self) -> str:
        """The URL with relative SQLite paths resolved and the password added from the env."""
        url = self.database.url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            rest = url[len("sqlite:///") :]
            if rest and rest != ":memory:":
                url = "sqlite:///" + str(self.resolve(rest))
        if self.database.password_env:
            secret = os.environ.get(self.database.password_env)
            if secret is None:
                raise ConfigError(
                    f"environment variable {self.database.password_env} is not set",
                    where=f"{self.config_path}: database.password_env",
                )
            from urllib.parse import quote

            url = re.sub(r"^([a-z0-9+]+://)([^/@]+)@", rf"\1\2:{quote(secret, safe='')}@", url)
        return url

    def source(self, name: str) -> SourceSettings:
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"no source named {name!r} (configured: {known})")


def parse_schedule(value: str) -> tuple[str, Any]:
    """``("interval", seconds)`` for ``every 6h``; ``("cron", fields)`` for a 5-field cron."""
    text = value.strip()
    match = _EVERY.match(text)
    if match:
        seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        if seconds <= 0:
            raise ValueError("interval must be positive")
        return ("interval", seconds)
    fields = text.split()
    if len(fields) == 5 and all(re.match(r"^[0-9*/,\-a-zA-Z]+$", f) for f in fields):
        return ("cron", fields)
    raise ValueError("expected a 5-field cron expression or 'every N[s|m|h|d]'")


def find_config(explicit: str | None) -> Path:
    """``--config``, else ``./config.toml``, else ``$EVIDENCE_CONFIG``."""
    if explicit:
        return Path(explicit)
    local = Path(DEFAULT_CONFIG)
    if local.exists():
        return local
    env = os.environ.get("EVIDENCE_CONFIG")
    return Path(env) if env else local


def load_settings(path: Path) -> Settings:
    """Read and validate ``path``; raise ``ConfigError`` naming the file and key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found", remedy="run 'evidence init' or pass --config"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return settings_from_dict(raw, path)


def settings_from_dict(raw: dict[str, Any], path: Path) -> Settings:
    if "config_path" in raw:
        raise ConfigError(f"{path}: unknown key 'config_path'")
    try:
        settings = Settings.model_validate({**raw, "config_path": path})
    except ValidationError as exc:
        raise ConfigError(describe_validation(exc, path, raw)) from None
    names = [s.name for s in settings.sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{path}: sources: duplicate source name(s): {', '.join(dupes)}")
    return settings


def describe_validation(exc: ValidationError, path: Path, raw: dict[str, Any]) -> str:
    """One line per problem: file, dotted key, what was expected, what was given."""
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        key = _dotted(loc, raw)
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif err["type"] == "missing":
            message = "required key is missing"
        given = err.get("input")
        quiet = err["type"] in {"missing", "extra_forbidden"} or "url" in key
        detail = "" if quiet else f" (got {given!r})"  # URLs may carry credentials
        lines.append(f"{path}: {key}: {message}{detail}")
    return "\n".join(lines)


def _dotted(loc: list[Any], raw: dict[str, Any]) -> str:
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            name = None
            if isinstance(node, list) and 0 <= item < len(node) and isinstance(node[item], dict):
                name = node[item].get("name")
            parts[-1] += f"[{item}]" + (f"({name})" if name else "")
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"
