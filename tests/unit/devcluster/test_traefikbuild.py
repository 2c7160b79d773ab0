"""Traefik's build recipe: its stand-ins replace what the module proxy refuses, and
nothing else (pure text; the build itself runs with the real node's)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pitstop.devcluster import binaries, gatewayplane, traefikbuild

REGISTRY = """package dns

import (
	"fmt"

	"github.com/go-acme/lego/v5/providers/dns/acmedns"
	"github.com/go-acme/lego/v5/providers/dns/alidns"
	"github.com/go-acme/lego/v5/providers/dns/alidnsx"
)

func NewDNSChallengeProviderByName(name string) (challenge.Provider, error) {
	switch name {
	case "acme-dns", "acmedns":
		return acmedns.NewDNSProvider()
	case "alidns":
		return alidns.NewDNSProvider()
	case "alidnsx":
		return alidnsx.NewDNSProvider()
	default:
		return nil, fmt.Errorf("unrecognized DNS provider: %s", name)
	}
}
"""


def test_a_refused_provider_loses_its_import_and_its_case_and_no_other_does() -> None:
    pruned = traefikbuild.drop_providers(REGISTRY, ("alidns",))

    assert 'providers/dns/alidns"' not in pruned
    assert 'case "alidns":' not in pruned
    assert "alidns.NewDNSProvider" not in pruned
    # A provider whose name starts the same is kept, as is everything around them.
    assert '"github.com/go-acme/lego/v5/providers/dns/alidnsx"' in pruned
    assert 'case "alidnsx":\n\t\treturn alidnsx.NewDNSProvider()' in pruned
    assert 'case "acme-dns", "acmedns":\n\t\treturn acmedns.NewDNSProvider()' in pruned
    assert pruned.count("\n") == REGISTRY.count("\n") - 3


def test_a_provider_the_registry_does_not_name_is_an_error_not_a_silent_skip() -> None:
    # A lego upgrade that renames a provider must not leave its refused SDK imported.
    with pytest.raises(ValueError, match="'gone'"):
        traefikbuild.drop_providers(REGISTRY, ("gone",))


def test_the_wrapper_replaces_the_three_stand_ins_and_carries_traefiks_excludes() -> None:
    upstream = (
        "module github.com/traefik/traefik/v3\n\ngo 1.25.0\n\n"
        "exclude github.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible\n"
    )

    lines = binaries.wrapper_gomod_for(traefikbuild.build(), upstream).splitlines()

    assert f"\tgithub.com/traefik/traefik/v3 {traefikbuild.TRAEFIK_VERSION}" in lines
    assert "\tgithub.com/traefik/traefik/dynamic/ext => ./ext" in lines
    assert "\tgithub.com/abbot/go-http-auth => ./go-http-auth" in lines
    assert "\tgithub.com/go-acme/lego/v5 => ./lego" in lines
    assert f"\tgithub.com/gorilla/mux => {traefikbuild.CONTAINOUS_MUX}" in lines
    assert "\tgithub.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible" in lines


def test_traefik_listens_on_loopback_and_watches_as_its_own_service_account(
    tmp_path: Path,
) -> None:
    args = gatewayplane.arguments(
        server="https://10.0.0.1:6443", token=tmp_path / "t", ca=tmp_path / "ca", port=8123,
        access_log=tmp_path / "log",
    )  # fmt: skip

    assert "--entryPoints.web.address=127.0.0.1:8123" in args
    assert f"--providers.kubernetesGateway.token={tmp_path / 't'}" in args
    assert "--accessLog.format=json" in args
    kinds = {o["kind"]: o for o in gatewayplane.objects()}
    assert kinds["GatewayClass"]["spec"]["controllerName"] == gatewayplane.CONTROLLER_NAME
    [binding_subject] = kinds["ClusterRoleBinding"]["subjects"]
    assert binding_subject["name"] == kinds["ServiceAccount"]["metadata"]["name"]
    # It writes statuses only: Gateway API objects are read, never written.
    writes = [r for r in kinds["ClusterRole"]["rules"] if set(r["verbs"]) & {"update", "patch"}]
    assert all(res.endswith("/status") for rule in writes for res in rule["resources"])
