"""config.yaml + environment. Secrets come only from the environment.

Precedence: environment (``SURVEYBOT_SECTION__KEY`` for any config key, ``SURVEYBOT_*_TOKEN``
for secrets) over config.yaml over defaults. Relative paths in config.yaml (``flows_dir``,
``sqlite:///relative.db``) are relative to the directory of the config file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot.conversation.alerts import AlertRule
from bot.conversation.config import (
    InboxConfig,
    OutboxConfig,
    SlackRateLimit,
    SurveysConfig,
    TelegramRateLimit,
)
from bot.conversation.config import MilestoneEvent as MilestoneEvent
from bot.conversation.webhooks import WebhooksConfig

SECRETS = (
    "telegram_token",
    "telegram_webhook_secret",
    "slack_bot_token",
    "slack_app_token",
    "slack_signing_secret",
    "api_token",
)


class ConfigError(Exception):
    pass


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConfig(_Section):
    url: str = "sqlite:///data/surveys.db"


class StaffConfig(_Section):
    telegram: list[int] = Field(default_factory=list)
    slack: list[str] = Field(default_factory=list)


class TelegramConfig(_Section):
    mode: Literal["polling", "webhook"] = "polling"
    api_base_url: str = "https://api.telegram.org/bot"
    webhook_url: str | None = None
    bot_username: str | None = None  # for invite links; asked from getMe when unset
    rate_limit: TelegramRateLimit = TelegramRateLimit()  # the sender's budget (0 = off)


class SlackChannelConfig(_Section):
    """Surveys in the threads of one Slack channel; an unset field takes ``slack.threads``'."""

    flow: str | None = None
    reaction: str | None = None  # emoji name without colons, e.g. white_check_mark
    locale: str | None = None  # for people Slack does not tell surveybot the language of

    @field_validator("reaction")
    @classmethod
    def _emoji(cls, value: str | None) -> str | None:
        return _emoji_name(value)


class SlackThreadsConfig(_Section):
    """Surveys in support threads, for every channel the bot is in: staff add ``reaction`` to
    a customer's message (or use the "Send survey" shortcut) and ``flow`` is asked in its
    thread. ``reaction: null`` turns reactions off (the shortcut still works)."""

    flow: str = "csat"
    reaction: str | None = "white_check_mark"
    locale: str | None = None

    @field_validator("reaction")
    @classmethod
    def _emoji(cls, value: str | None) -> str | None:
        return _emoji_name(value)


def _emoji_name(value: str | None) -> str | None:
    """``:white_check_mark:`` or ``white_check_mark`` -> ``white_check_mark``."""
    return (value.strip().strip(":") or None) if value is not None else None


class SlackConfig(_Section):
    mode: Literal["socket", "http"] = "socket"
    api_base_url: str = "https://slack.com/api/"
    threads: SlackThreadsConfig = SlackThreadsConfig()
    channels: dict[str, SlackChannelConfig] = Field(default_factory=dict)  # by channel id
    rate_limit: SlackRateLimit = SlackRateLimit()  # the sender's budget (0 = off)

    def for_channel(self, channel_id: str) -> SlackThreadsConfig:
        """The thread-survey settings of one channel: its own over ``threads``."""
        own = self.channels.get(channel_id)
        if own is None:
            return self.threads
        update = own.model_dump(exclude_unset=True)
        if update.get("flow") is None:
            update.pop("flow", None)
        return self.threads.model_copy(update=update)


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class _YamlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self.data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SURVEYBOT_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    flows_dir: Path = Path("flows")
    storage: StorageConfig = StorageConfig()
    staff: StaffConfig = StaffConfig()
    telegram: TelegramConfig = TelegramConfig()
    slack: SlackConfig = SlackConfig()
    server: ServerConfig = ServerConfig()
    surveys: SurveysConfig = SurveysConfig()
    inbox: InboxConfig = InboxConfig()
    outbox: OutboxConfig = OutboxConfig()
    webhooks: WebhooksConfig = WebhooksConfig()  # secrets: SURVEYBOT_WEBHOOK_SECRET_<NAME>
    alerts: dict[str, AlertRule] = Field(default_factory=dict)  # detractor alerts, by name

    telegram_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    api_token: SecretStr | None = None

    def platforms(self) -> list[str]:
        """The chat platforms that run: those whose token is set."""
        tokens = {"telegram": self.telegram_token, "slack": self.slack_bot_token}
        return [platform for platform, token in tokens.items() if token is not None]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls, _YAML_DATA.get() or {}))


# config.yaml's content for the source above while load_settings() builds a Settings
_YAML_DATA: ContextVar[dict[str, Any] | None] = ContextVar("surveybot_yaml", default=None)


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read config.yaml (if present) and the environment. Raises ConfigError, never a trace."""
    path = path or Path("config.yaml")
    data: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        except (YAMLError, OSError) as exc:
            raise ConfigError(f"{path}: cannot read config: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the config must be a mapping of sections")
        data = dict(loaded or {})
        leaked = list(secret_keys(data))
        if leaked:
            raise ConfigError(
                f"{path}: secrets do not belong in config.yaml ({', '.join(leaked)}); "
                "secrets belong in the environment: set "
                + ", ".join(dict.fromkeys(_secret_variable(k) for k in leaked))
            )
    token = _YAML_DATA.set(data)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, path)) from exc
    finally:
        _YAML_DATA.reset(token)
    return _resolve_paths(settings, path.parent if path.exists() else Path.cwd())


_SECRET_WORDS = re.compile(r"token|secret|password|passwd|api_?key|credential", re.IGNORECASE)


def secret_keys(data: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted paths of every secret-looking key in config.yaml's data, at any depth."""
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if _SECRET_WORDS.search(str(key)):
            yield dotted
        elif isinstance(value, Mapping):
            yield from secret_keys(value, f"{dotted}.")


def _secret_variable(dotted: str) -> str:
    """``slack.bot_token`` -> SURVEYBOT_SLACK_BOT_TOKEN, when that is a secret we read."""
    name = dotted.replace(".", "_").lower()
    if name in SECRETS:
        return f"SURVEYBOT_{name.upper()}"
    return "the matching variable (" + ", ".join(f"SURVEYBOT_{k.upper()}" for k in SECRETS) + ")"


def _explain(exc: ValidationError, path: Path) -> str:
    """Each problem named where it came from: the environment variable that set it, or the
    config file."""
    environ = {k.upper(): v for k, v in os.environ.items()}
    problems = []
    for e in exc.errors():
        dotted = ".".join(str(p) for p in e["loc"])
        variable = "SURVEYBOT_" + "__".join(str(p) for p in e["loc"][:2]).upper()
        if variable in environ:
            problems.append(f"{variable}={environ[variable]!r} (environment): {dotted}: {e['msg']}")
        else:
            problems.append(f"{path}: {dotted}: {e['msg']}")
    return "; ".join(problems)


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    flows_dir = settings.flows_dir
    if not flows_dir.is_absolute():
        flows_dir = base / flows_dir
    url = settings.storage.url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        file = Path(url[len("sqlite:///") :])
        if not file.is_absolute():
            url = f"sqlite:///{(base / file).resolve()}"
    return settings.model_copy(
        update={"flows_dir": flows_dir.resolve(), "storage": StorageConfig(url=url)}
    )
