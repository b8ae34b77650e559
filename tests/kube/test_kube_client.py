"""Client settings: chaosk8s's order and keys, parsed as users expect, and real connections."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosmesh_ext._parse import parse_bool
from chaosmesh_ext.kube.client import (
    KubeSettingsError,
    api_client,
    client_configuration,
    client_settings,
)
from chaosmesh_ext.kube.objects import IstioObjects, KubeApiError, ObjectRef
from tests.support.kapi import RunningEmulator


@pytest.mark.parametrize("text", ["false", "False", "0", "no", "off", " FALSE "])
def test_verify_ssl_false_spellings(text: str) -> None:
    assert parse_bool(text, default=True) is False


@pytest.mark.parametrize("text", ["true", "1", "yes", None, ""])
def test_verify_ssl_defaults_and_true_spellings(text: str | None) -> None:
    assert parse_bool(text, default=True) is True


def test_kubeconfig_wins_and_context_comes_from_secrets_before_env(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    env = {
        "KUBECONFIG": str(kubeconfig),
        "KUBERNETES_CONTEXT": "from-env",
        "KUBERNETES_HOST": "https://x",
    }
    settings = client_settings({}, {"KUBERNETES_CONTEXT": "from-secrets"}, env)
    assert (settings.mode, settings.kubeconfig, settings.context) == (
        "kubeconfig",
        str(kubeconfig),
        "from-secrets",
    )
    assert client_settings({}, {}, env).context == "from-env"


def test_kubeconfig_path_configuration_key(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "mesh-kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    settings = client_settings({"kubeconfig_path": str(kubeconfig)}, {}, {})
    assert settings.kubeconfig == str(kubeconfig)
    with pytest.raises(KubeSettingsError, match="kubeconfig_path"):
        client_settings({"kubeconfig_path": str(tmp_path / "missing")}, {}, {})


def test_in_pod_comes_before_host_settings(tmp_path: Path) -> None:
    env = {
        "KUBECONFIG": str(tmp_path / "none"),
        "CHAOSTOOLKIT_IN_POD": "true",
        "KUBERNETES_HOST": "https://x",
    }
    assert client_settings({}, {}, env).mode == "incluster"


def test_host_settings_from_secrets_and_env(tmp_path: Path) -> None:
    env = {
        "KUBECONFIG": str(tmp_path / "none"),
        "KUBERNETES_HOST": "https://api.example:6443",
        "KUBERNETES_CA_CERT_FILE": "/ca.pem",
        "KUBERNETES_CERT_FILE": "/client.pem",
        "KUBERNETES_KEY_FILE": "/client.key",
        "KUBERNETES_VERIFY_SSL": "false",
    }
    settings = client_settings(
        {}, {"KUBERNETES_API_KEY": "s3cret", "KUBERNETES_API_KEY_PREFIX": "Token"}, env
    )
    assert settings.mode == "env" and settings.verify_ssl is False
    assert "s3cret" not in repr(settings)  # never in logs or journals
    cfg = client_configuration(settings)
    assert cfg.host == "https://api.example:6443"
    assert cfg.ssl_ca_cert == "/ca.pem"  # the CA verifies the server ...
    assert (cfg.cert_file, cfg.key_file) == ("/client.pem", "/client.key")  # ... the cert is ours
    assert cfg.verify_ssl is False
    assert cfg.get_api_key_with_prefix("BearerToken", alias="authorization") == "Token s3cret"


def test_nothing_configured_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(KubeSettingsError, match="KUBECONFIG"):
        client_settings({}, {}, {"KUBECONFIG": str(tmp_path / "none")})


@pytest.mark.parametrize("emulator_options", [{"token": "t0ken"}])
def test_api_key_reaches_a_server_that_requires_it(
    kapi: RunningEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.setenv("KUBERNETES_HOST", kapi.url)
    ref = ObjectRef("VirtualService", "default", "reviews")
    good = api_client({}, {"KUBERNETES_API_KEY": "t0ken"})
    try:
        assert IstioObjects(good).get_or_none(ref) is None  # authenticated: a plain 404
    finally:
        good.close()
    bad = api_client({}, {"KUBERNETES_API_KEY": "wrong"})
    try:
        with pytest.raises(KubeApiError, match="credentials were rejected"):
            IstioObjects(bad, "v1").get(ref)
    finally:
        bad.close()


def test_kubeconfig_context_selects_the_cluster(kapi: RunningEmulator, tmp_path: Path) -> None:
    config = kapi.write_kubeconfig(tmp_path / "ctx", context="mesh")
    client = api_client({"kubeconfig_path": str(config)}, {"KUBERNETES_CONTEXT": "mesh"})
    try:
        assert client.configuration.host == kapi.url
    finally:
        client.close()
    with pytest.raises(KubeSettingsError, match="context 'nope'"):
        api_client({"kubeconfig_path": str(config)}, {"KUBERNETES_CONTEXT": "nope"})
