"""config.example.toml stays true: it loads, and every source in it validates."""

from __future__ import annotations

from pathlib import Path

from evidence.collectors.base import CollectorEnv
from evidence.config import load_settings
from evidence.services.collect import check_sources

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"


def test_example_config_is_valid() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.sources, "the example documents at least one source"
    env = CollectorEnv(base_dir=settings.base_dir, azure=settings.azure)
    check_sources(settings.sources, env, str(EXAMPLE))


def test_example_config_names_every_option() -> None:
    import tomllib

    from pydantic import BaseModel

    from evidence.config import Settings

    raw = tomllib.loads(EXAMPLE.read_text())
    missing = []
    for section, field in Settings.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        for option in model.model_fields:
            if option not in raw.get(section, {}):
                missing.append(f"[{section}] {option}")
    assert missing == []
