"""Traffic providers by the name `spec.traffic.provider` uses."""

from __future__ import annotations

from collections.abc import Callable

from pitstop.k8s.client import KubeClient
from pitstop.traffic.gateway_api import GatewayApiProvider
from pitstop.traffic.istio import IstioProvider
from pitstop.traffic.provider import Provider
from pitstop.traffic.service import ServiceProvider

PROVIDERS: dict[str, Callable[[KubeClient], Provider]] = {
    ServiceProvider.name: ServiceProvider,
    GatewayApiProvider.name: GatewayApiProvider,
    IstioProvider.name: IstioProvider,
}
