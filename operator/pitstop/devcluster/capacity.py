"""How much the local control plane holds: pods per fake node and their pod IP blocks.

KWOK runs nothing, so a fake node admits as many pods as a scale benchmark needs rather
than a kubelet's 110: 1,000 ModelDeployments of 2 pods, each in mid-rollout (a
candidate of full size beside its stable), is 4,000 pods on the cluster's two nodes.
Every node needs an address for each pod it admits; the Service range that goes with
it is `components.SERVICE_CIDR`. Pure arithmetic: `cluster` applies it.
"""

from __future__ import annotations

import ipaddress
import math

PODS_PER_NODE = 2500
# A node's podCIDR: the smallest block with an address for every pod it admits (/20).
NODE_POD_PREFIX = 32 - math.ceil(math.log2(PODS_PER_NODE + 2))


def node_pod_cidrs(pod_cidr: str, count: int) -> list[str]:
    """One block of NODE_POD_PREFIX per node out of `pod_cidr`, and one left for KWOK's
    fallback. KWOK hands out pod IPs from a node's podCIDR counting up from its first
    address, without looking at its end: a block too small would overflow into the
    next node's."""
    blocks = _pod_blocks(pod_cidr)
    if len(blocks) < count + 1:
        raise ValueError(
            f"pod range {pod_cidr} is too small: {count} nodes of {PODS_PER_NODE} pods and "
            f"KWOK's fallback need {count + 1} blocks of /{NODE_POD_PREFIX}"
        )
    return blocks[:count]


def fallback_pod_cidr(pod_cidr: str) -> str:
    """The last block of the range: KWOK's `cidr` for a node without a podCIDR."""
    return _pod_blocks(pod_cidr)[-1]


def _pod_blocks(pod_cidr: str) -> list[str]:
    network = ipaddress.ip_network(pod_cidr)
    if network.prefixlen > NODE_POD_PREFIX:
        return []
    return [str(block) for block in network.subnets(new_prefix=NODE_POD_PREFIX)]
