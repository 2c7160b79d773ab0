"""Traefik, the real node's Gateway API data plane: its build recipe.

Traefik v3 implements Gateway API's HTTPRoute with backend weights, so the route
Pitstop writes is what splits real traffic (it does not implement RequestMirror: a
shadow on a Traefik Gateway is refused by Pitstop's provider from the GatewayClass's
`status.supportedFeatures`). Its module builds from the Go module proxy with three
local stand-ins, written into the wrapper's folder before each build and never into
this repository:

- `github.com/traefik/traefik/dynamic/ext`: a nested module of Traefik's repository
  (its extension point for the enterprise build), not published on the proxy. The
  open-source build uses three empty types of it; `EXT_SOURCE` declares them.
- `github.com/abbot/go-http-auth`: Traefik builds with its own fork, which the proxy
  refuses (403). Upstream v0.4.0 is served and lacks two functions the fork added;
  `AUTH_COMPAT_SOURCE` adds them to a copy of upstream in the wrapper's folder.
- `github.com/go-acme/lego/v5`: its DNS-challenge registry imports every provider's
  SDK, and the proxy refuses some of those SDKs. A copy in the wrapper's folder drops
  those providers (`REFUSED_DNS_PROVIDERS`) from the registry; ACME over DNS with them
  is the only thing lost, and the dev node does no ACME.
"""

from __future__ import annotations

import re
import shutil
import stat
from pathlib import Path

from pitstop.devcluster import binaries

TRAEFIK_VERSION = "v3.7.13"
LEGO = ("github.com/go-acme/lego/v5", "v5.4.1")  # what Traefik v3.7.13 requires
GO_HTTP_AUTH = ("github.com/abbot/go-http-auth", "v0.4.0")
# The fork of gorilla/mux that Traefik's go.mod replaces it with (served).
CONTAINOUS_MUX = "github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59"

# lego DNS providers whose SDK modules the proxy refuses (403 "not available", tried on
# 2026-11-30 for the versions lego v5.4.1 requires).
REFUSED_DNS_PROVIDERS = (
    "alidns", "aliesa", "azion", "dnsimple", "edgedns", "edgeone", "huaweicloud",
    "oraclecloud", "regfish", "sakuracloud", "tencentcloud", "ucloud", "yandexcloud",
)  # fmt: skip

EXT_SOURCE = """\
// Package ext stands in for Traefik's unpublished extension module: the open-source
// build of Traefik uses these types and nothing else of it.
package ext

type HTTP struct{}

type Router struct{}

type RouterIng struct{}

func (RouterIng) ToRouter() Router { return Router{} }
"""

AUTH_COMPAT_SOURCE = """\
package auth

// What Traefik's fork of go-http-auth adds to upstream, written for the pitstop dev
// node's build of Traefik.

import (
	"fmt"
	"net/http"
	"strings"
)

// CheckSecret reports whether password matches secret, hashed as BasicAuth.CheckAuth
// expects: MD5-crypt by default, else by the secret's prefix ({SHA}, bcrypt).
func CheckSecret(password, secret string) bool {
	compare := compareFuncs[0].compare
	for _, candidate := range compareFuncs[1:] {
		if strings.HasPrefix(secret, candidate.prefix) {
			compare = candidate.compare
			break
		}
	}
	return compare([]byte(secret), []byte(password)) == nil
}

// RequireAuthStale asks for credentials again, saying the client's nonce went stale.
func (a *DigestAuth) RequireAuthStale(w http.ResponseWriter, r *http.Request) {
	nonce := RandomKey()
	a.clients[nonce] = &digest_client{nc: 0}
	w.Header().Set(contentType, a.Headers.V().UnauthContentType)
	w.Header().Set(a.Headers.V().Authenticate, fmt.Sprintf(
		`Digest realm="%s", nonce="%s", opaque="%s", algorithm="MD5", qop="auth", stale=true`,
		a.Realm, nonce, a.Opaque))
	w.WriteHeader(a.Headers.V().UnauthCode)
}
"""

AUTH_GOMOD = """\
module github.com/abbot/go-http-auth

go 1.20

require golang.org/x/crypto v0.1.0
"""


def drop_providers(registry: str, providers: tuple[str, ...]) -> str:
    """lego's generated provider registry without `providers`: their imports and the
    `case` arms that construct them (a pure text edit of `zz_gen_dns_providers.go`)."""
    for name in providers:
        pattern = rf'\n\t"github\.com/go-acme/lego/v5/providers/dns/{name}"'
        registry, imports = re.subn(pattern, "", registry)
        registry, arms = re.subn(rf'\n\tcase "{name}"[^\n]*:\n\t\treturn [^\n]*', "", registry)
        if imports != 1 or arms != 1:
            raise ValueError(f"lego's registry does not name DNS provider {name!r} once")
    return registry


def _copy_module(module: str, version: str, target: Path) -> None:
    """The module's source, writable (Go's cache is read-only), at `target`."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(binaries.download(module, version)["Dir"], target)
    for path in (target, *target.rglob("*")):
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def prepare(work: Path) -> None:
    """Write the three stand-ins into the wrapper module's folder."""
    ext = work / "ext"
    ext.mkdir(exist_ok=True)
    (ext / "go.mod").write_text("module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24\n")
    (ext / "ext.go").write_text(EXT_SOURCE)

    auth = work / "go-http-auth"
    _copy_module(*GO_HTTP_AUTH, auth)
    shutil.rmtree(auth / "examples", ignore_errors=True)
    (auth / "go.mod").write_text(AUTH_GOMOD)
    (auth / "zz_pitstop_compat.go").write_text(AUTH_COMPAT_SOURCE)

    lego = work / "lego"
    _copy_module(*LEGO, lego)
    registry = lego / "providers" / "dns" / "zz_gen_dns_providers.go"
    registry.write_text(drop_providers(registry.read_text(), REFUSED_DNS_PROVIDERS))


def build() -> binaries.GoBuild:
    return binaries.GoBuild(
        name="traefik",
        module="github.com/traefik/traefik/v3",
        version=TRAEFIK_VERSION,
        packages=("github.com/traefik/traefik/v3/cmd/traefik",),
        binaries=("traefik",),
        ldflags=(f"-X github.com/traefik/traefik/v3/pkg/version.Version={TRAEFIK_VERSION}",),
        redirects=(
            ("github.com/traefik/traefik/dynamic/ext", "./ext"),
            (GO_HTTP_AUTH[0], "./go-http-auth"),
            (LEGO[0], "./lego"),
            ("github.com/gorilla/mux", CONTAINOUS_MUX),
        ),
        prepare=prepare,
    )
