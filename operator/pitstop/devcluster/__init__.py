"""The local control plane for development and tests: built from source, run on loopback.

`binaries` builds kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd,
kwok and helm from Go modules into a cache; `cluster` runs them (with `certs`,
`kubeconfig`, `stages` and `processes` as its parts); `cli` is `pitstop dev ...`.
Nothing here is imported by the operator itself.
"""
