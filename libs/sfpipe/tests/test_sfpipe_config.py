import pytest

from sfpipe.config import Mode, Settings, describe_settings, load_settings
from sfpipe.errors import ConfigError


def test_defaults_are_local(sfpipe_env):
    settings = load_settings()
    assert settings.mode is Mode.LOCAL
    assert settings.pubsub_port == 8085
    assert settings.warehouse_file.name == "warehouse.duckdb"


def test_invalid_value_names_variable_and_expected_form(sfpipe_env, monkeypatch):
    monkeypatch.setenv("SFPIPE_PUBSUB_PORT", "eighty")
    monkeypatch.setenv("SFPIPE_MODE", "cloud")
    with pytest.raises(ConfigError) as info:
        load_settings()
    text = str(info.value)
    assert "SFPIPE_PUBSUB_PORT='eighty'" in text
    assert "valid integer" in text
    assert "SFPIPE_MODE='cloud'" in text
    assert "'local' or 'gcp'" in text


def test_as_of_must_be_a_date(sfpipe_env, monkeypatch):
    monkeypatch.setenv("SFPIPE_AS_OF", "next tuesday")
    with pytest.raises(ConfigError, match="SFPIPE_AS_OF.*YYYY-MM-DD"):
        load_settings()


def test_port_range_checked(sfpipe_env, monkeypatch):
    monkeypatch.setenv("SFPIPE_LOADER_PORT", "70000")
    with pytest.raises(ConfigError, match="SFPIPE_LOADER_PORT"):
        load_settings()


def test_every_setting_is_documented():
    rows = describe_settings()
    assert len(rows) == len(Settings.model_fields)
    undocumented = [name for name, _, doc in rows if not doc]
    assert undocumented == []
    secret = dict((n, d) for n, d, _ in rows)["SFPIPE_SF_CLIENT_SECRET"]
    assert secret == "(secret)"


def test_verify_tls_reads_flags_and_paths(sfpipe_env, monkeypatch):
    for text, expected in [("false", False), ("False", False), ("0", False), ("true", True), ("/etc/ca.pem", "/etc/ca.pem")]:
        monkeypatch.setenv("SFPIPE_SF_VERIFY_TLS", text)
        assert load_settings().sf_verify_tls == expected
