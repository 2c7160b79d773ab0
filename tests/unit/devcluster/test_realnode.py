"""How the control plane is adapted to a real node, and the resolver `up` waits with."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

from pitstop.devcluster import nodeconfig, realnode


def test_apiserver_moves_to_the_bridge_and_talks_to_the_kubelet_by_ip(tmp_path: Path) -> None:
    args = realnode.apiserver_flags(
        ["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
         "--endpoint-reconciler-type=none", "--service-cluster-ip-range=10.0.0.0/24",
         "--profiling=false"],
        tmp_path,
    )  # fmt: skip

    gateway = nodeconfig.gateway()
    assert f"--bind-address={gateway}" in args
    assert f"--advertise-address={gateway}" in args
    assert "--endpoint-reconciler-type=lease" in args
    assert f"--service-cluster-ip-range={nodeconfig.SERVICE_CIDR}" in args
    assert "--kubelet-preferred-address-types=InternalIP" in args
    assert "--profiling=false" in args
    assert not any(a.startswith("--bind-address=127.") for a in args)
    assert len([a for a in args if a.startswith("--bind-address=")]) == 1


def test_controller_manager_allocates_node_cidrs_from_the_cluster_range() -> None:
    args = realnode.controller_manager_flags(["--service-cluster-ip-range=10.0.0.0/24"])

    assert args == [
        f"--service-cluster-ip-range={nodeconfig.SERVICE_CIDR}",
        "--allocate-node-cidrs=true",
        f"--cluster-cidr={nodeconfig.CLUSTER_CIDR}",
        "--node-cidr-mask-size=24",
    ]


def _serve_one_answer(sock: socket.socket, address: bytes, rcode: int = 0) -> None:
    query, peer = sock.recvfrom(512)
    ident = query[:2]
    question = query[12:]
    answer = struct.pack("!HHIH", 1, 1, 5, 4) + address
    header = ident + struct.pack("!HHHHH", 0x8180 | rcode, 1, 0 if rcode else 1, 0, 0)
    body = question + (b"\xc0\x0c" + answer if not rcode else b"")
    sock.sendto(header + body, peer)


def test_dns_query_reads_the_a_record_and_treats_errors_as_none() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        for address, rcode, expected in ((b"\x0a\x60\x00\x01", 0, "10.96.0.1"),
                                         (b"", 3, None)):  # fmt: skip
            thread = threading.Thread(target=_serve_one_answer, args=(server, address, rcode))
            thread.start()
            got = realnode.dns_query("127.0.0.1", "kubernetes.default.svc.cluster.local",
                                     port=port)  # fmt: skip
            thread.join(timeout=5)
            assert got == expected
