"""Settings come from GRADLAB_* variables, and the README documents every one of them."""

from __future__ import annotations

from pathlib import Path

from store.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_in_the_readme_table_with_its_default():
    for name, field in Settings.model_fields.items():
        var = f"GRADLAB_{name.upper()}"
        row = next((line for line in README.splitlines() if line.startswith(f"| `{var}`")), None)
        assert row is not None, f"{var} is missing from the README's settings table"
        default = field.default
        shown = row.split("|")[2].strip().strip("`")
        if isinstance(default, bool):
            assert shown == str(default).lower(), var
        elif default is None:  # off unless set
            assert shown == "(none)", var
        elif isinstance(default, int | float):
            assert float(shown) == float(default), var
        else:
            assert shown == default, var


def test_settings_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("GRADLAB_LEASE_SECONDS", "12.5")
    monkeypatch.setenv("GRADLAB_DATABASE_URL", "postgresql+psycopg://x@y/z")
    settings = Settings()
    assert settings.lease_seconds == 12.5
    assert settings.database_url == "postgresql+psycopg://x@y/z"
