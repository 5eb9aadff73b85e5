"""Names, labels and connection errors of scanflow.kube (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanflow.errors import KubeError
from scanflow.kube.cluster import connect
from scanflow.kube.names import DNS1123, dns_label, labels_of, namespace_of, selector_of
from scanflow.spec import Application


def test_short_names_are_kept_and_long_ones_shortened_with_a_hash() -> None:
    assert dns_label("team", "app") == "team-app"
    long_a = dns_label("t" * 40, "application-" + "a" * 40)
    long_b = dns_label("t" * 40, "application-" + "b" * 40)
    assert len(long_a) == 63 and DNS1123.match(long_a)
    assert long_a != long_b and long_a[:50] == long_b[:50]
    assert dns_label("t" * 40, "application-" + "a" * 40) == long_a  # deterministic
    assert dns_label("My_App") != "my-app" and DNS1123.match(dns_label("My_App"))
    assert len(dns_label("x" * 70, limit=40)) == 40


def test_namespace_labels_and_selector_of_an_application() -> None:
    app = Application("digits", team="vision")
    assert namespace_of(app) == "vision-digits"
    assert namespace_of(Application("d", kubernetes={"namespace": "ml"})) == "ml"
    labels = labels_of(app, component="predictor", kind="service")
    assert labels["app.kubernetes.io/managed-by"] == "scanflow"
    assert labels["scanflow.io/component"] == "predictor"
    assert (
        selector_of(app) == "app.kubernetes.io/managed-by=scanflow,scanflow.io/application=digits"
    )


def test_missing_kubeconfig_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(KubeError, match="no kubeconfig at .*set KUBECONFIG"):
        connect(kubeconfig=tmp_path / "absent")


def test_broken_kubeconfig_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "config"
    broken.write_text("apiVersion: v1\nkind: Config\nclusters: [{name: c}]\ncontexts: :\n")
    with pytest.raises(KubeError, match=str(broken)):
        connect(kubeconfig=broken)


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "{server}", insecure-skip-tls-verify: true}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: here, context: {{cluster: c, user: u}}}}]
current-context: here
"""
    )
    return path


def test_unknown_context_lists_the_known_ones(tmp_path: Path) -> None:
    config = _kubeconfig(tmp_path / "config", "https://127.0.0.1:1")
    with pytest.raises(KubeError, match=r"no context 'prod' \(its contexts: here\)"):
        connect("prod", kubeconfig=config)


def test_unreachable_cluster_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = _kubeconfig(tmp_path / "config", f"https://127.0.0.1:{port}")
    with pytest.raises(KubeError, match=rf"127.0.0.1:{port} .*is not reachable"):
        connect(kubeconfig=config)
