"""Component command lines: loopback-only listeners, RBAC, and the ports chosen at start."""

from __future__ import annotations

from pathlib import Path

from pitstop.devcluster import certs, components


def _layout(tmp_path: Path) -> components.Layout:
    ports = {name: 20000 + i for i, name in enumerate(components.PORT_NAMES)}
    return components.Layout(state_dir=tmp_path, pki=certs.Pki.at(tmp_path / "pki"), ports=ports)


def test_every_listener_is_on_loopback_at_its_port(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    kubeconfig = tmp_path / "kubeconfig"

    apiserver = components.kube_apiserver(layout)
    manager = components.kube_controller_manager(layout, kubeconfig)
    scheduler = components.kube_scheduler(layout, kubeconfig)
    etcd = components.etcd(layout)
    kwok = components.kwok(layout, kubeconfig, tmp_path / "kwok.yaml")

    for args in (apiserver, manager, scheduler):
        assert "--bind-address=127.0.0.1" in args
    assert "--secure-port=20002" in apiserver
    assert "--secure-port=20003" in manager
    assert "--secure-port=20004" in scheduler
    assert "--listen-client-urls=http://127.0.0.1:20000" in etcd
    assert "--listen-peer-urls=http://127.0.0.1:20001" in etcd
    assert "--server-address=127.0.0.1:20005" in kwok


def test_apiserver_authorizes_with_rbac_and_signs_service_account_tokens(tmp_path: Path) -> None:
    layout = _layout(tmp_path)

    args = components.kube_apiserver(layout)

    assert "--authorization-mode=Node,RBAC" in args
    assert f"--etcd-servers={layout.etcd_url}" in args
    assert f"--client-ca-file={layout.pki.ca.cert}" in args
    assert f"--service-account-signing-key-file={layout.pki.service_account_key}" in args
    assert f"--service-cluster-ip-range={components.SERVICE_CIDR}" in args


def test_controllers_run_as_their_own_service_accounts(tmp_path: Path) -> None:
    layout = _layout(tmp_path)

    args = components.kube_controller_manager(layout, tmp_path / "kubeconfig")

    assert "--use-service-account-credentials=true" in args
    assert f"--service-account-private-key-file={layout.pki.service_account_key}" in args
    assert f"--root-ca-file={layout.pki.ca.cert}" in args
    assert "--controllers=*" in args
