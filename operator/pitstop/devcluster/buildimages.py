"""The images a build Job runs, built by the real node's BuildKit and pushed to its registry.

A build Job (`rendering.build_job`) runs two images: the operator's (its init step,
`pitstop package prepare-build`) and a builder's (its build step): rootless BuildKit
(`buildctl-daemonless.sh build ...`) or kaniko (`/kaniko/executor ...`). None can be
pulled here, so all are built on the node: the operator's from the repository's own
`operator/Dockerfile`; a BuildKit image of our own from the binaries the node already
has (buildkitd, buildctl, runc, rootlesskit), Debian's `uidmap` for the user namespace,
and a `buildctl-daemonless.sh` written here; and a kaniko image of our own, laid out as
upstream's (`deploy/Dockerfile` of the kaniko module) from the node's kaniko executor.
The chart's `build.*` values (or the operator's `PITSTOP_*_IMAGE` environment) then
point at them.

Builds go through `buildctl` to the node's buildkitd; the reference returned is pinned
by the manifest digest BuildKit reports (`containerimage.digest`), which is what the
registry serves.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pitstop.devcluster import nodeconfig, nodeimages

Log = Callable[[str], None]

BUILDKIT_UID = 1000

# Starts a private buildkitd (inside rootlesskit's user namespace when not root), runs
# `buildctl "$@"` against it, and stops it again: one build per container.
DAEMONLESS_SCRIPT = """\
#!/bin/sh
set -eu
run_dir="${XDG_RUNTIME_DIR:-/run/user/$(id -u)}"
mkdir -p "$run_dir/buildkit"
addr="unix://$run_dir/buildkit/buildkitd.sock"
log="$run_dir/buildkit/buildkitd.log"
if [ "$(id -u)" = 0 ]; then
  buildkitd --addr="$addr" ${BUILDKITD_FLAGS:-} >"$log" 2>&1 &
else
  rootlesskit --net=host --state-dir="$run_dir/rootlesskit" \\
    buildkitd --addr="$addr" ${BUILDKITD_FLAGS:-} >"$log" 2>&1 &
fi
daemon=$!
tries=0
until buildctl --addr="$addr" debug workers >/dev/null 2>&1; do
  if ! kill -0 "$daemon" 2>/dev/null || [ "$tries" -ge 300 ]; then
    echo "buildkitd did not start:" >&2; cat "$log" >&2; exit 1
  fi
  tries=$((tries + 1)); sleep 0.1
done
status=0
buildctl --addr="$addr" "$@" || status=$?
kill "$daemon" 2>/dev/null || true
wait "$daemon" 2>/dev/null || true
exit "$status"
"""


def pod_buildkitd_config() -> str:
    """The in-pod buildkitd's config: the node's registry over HTTP, and it as the
    mirror of docker.io (the `python:3.11-slim` of BentoML's Dockerfile)."""
    host = nodeconfig.registry_host()
    return (
        f'[registry."{host}"]\n  http = true\n  insecure = true\n\n'
        f'[registry."docker.io"]\n  mirrors = ["{host}"]\n'
    )


def buildkit_dockerfile() -> str:
    uid = BUILDKIT_UID
    return f"""\
FROM {nodeconfig.base_image()}
RUN apt-get update && apt-get install -y --no-install-recommends uidmap libcap2-bin \\
 && rm -rf /var/lib/apt/lists/*
# Setuid-root new[ug]idmap (Debian's) runs as uid 0, which is not the owner of the
# user namespace it maps, and without CAP_SYS_ADMIN in a container: the kernel refuses
# the write (EPERM). With file capabilities instead it runs as the user, who owns the
# namespace, and holds just CAP_SETUID/CAP_SETGID.
RUN chmod u-s /usr/bin/newuidmap /usr/bin/newgidmap \\
 && setcap cap_setuid=ep /usr/bin/newuidmap && setcap cap_setgid=ep /usr/bin/newgidmap
RUN useradd --uid {uid} --create-home --home-dir /home/user user \\
 && echo "user:100000:65536" > /etc/subuid && echo "user:100000:65536" > /etc/subgid \\
 && mkdir -p /run/user/{uid} /home/user/.local/share/buildkit /home/user/.config/buildkit \\
 && chown -R {uid}:{uid} /run/user/{uid} /home/user && chmod 700 /run/user/{uid}
COPY buildkitd buildctl runc rootlesskit buildctl-daemonless.sh /usr/local/bin/
COPY buildkitd.toml /home/user/.config/buildkit/buildkitd.toml
USER {uid}:{uid}
ENV HOME=/home/user XDG_RUNTIME_DIR=/run/user/{uid} USER=user
WORKDIR /home/user
"""


def build(bin_dir: Path, context: Path, dockerfile_dir: Path, name: str, log: Log) -> str:
    """Build and push `name` with the node's buildkitd; return `repository@digest`."""
    with tempfile.TemporaryDirectory() as tmp:
        metadata = Path(tmp) / "metadata.json"
        started = time.monotonic()
        result = subprocess.run(
            [
                str(bin_dir / "buildctl"), f"--addr={nodeconfig.buildkit_address()}", "build",
                "--frontend=dockerfile.v0", f"--local=context={context}",
                f"--local=dockerfile={dockerfile_dir}",
                f"--output=type=image,name={name},push=true", f"--metadata-file={metadata}",
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"building {name} failed:\n{result.stderr[-3000:]}")
        digest = json.loads(metadata.read_text())["containerimage.digest"]
    log(f"built {name} in {time.monotonic() - started:.0f}s")
    return f"{name.rsplit(':', 1)[0]}@{digest}"


def buildkit_image(bin_dir: Path, log: Log) -> str:
    """The rootless BuildKit image for build Jobs, from the node's own binaries."""
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        for binary in ("buildkitd", "buildctl", "runc", "rootlesskit"):
            shutil.copy2(bin_dir / binary, context / binary)
        script = context / "buildctl-daemonless.sh"
        script.write_text(DAEMONLESS_SCRIPT)
        script.chmod(0o755)
        (context / "buildkitd.toml").write_text(pod_buildkitd_config())
        (context / "Dockerfile").write_text(buildkit_dockerfile())
        name = f"{nodeconfig.registry_host()}/pitstop/buildkit:rootless"
        return build(bin_dir, context, context, name, log)


# What upstream's image holds besides the executor (`deploy/Dockerfile`, stage
# `kaniko-base-slim`): glibc's resolver reads /etc/hosts first only with this file, so
# a pod's hostAliases work.
NSSWITCH = "hosts: files dns\nnetworks: files\n"


def kaniko_dockerfile() -> str:
    """kaniko's own image layout, plus the node's registry: kaniko reads no config file,
    so its flags for the registry (plain HTTP, and the mirror of docker.io for the
    `python:3.11-slim` of BentoML's Dockerfile) are part of the entrypoint, and a Job's
    `args` follow them."""
    host = nodeconfig.registry_host()
    entrypoint = json.dumps(
        ["/kaniko/executor", f"--insecure-registry={host}", f"--registry-mirror={host}"]
    )
    return f"""\
FROM scratch
COPY kaniko/ /kaniko/
COPY nsswitch.conf /etc/nsswitch.conf
ENV HOME=/root USER=root PATH=/usr/local/bin:/kaniko SSL_CERT_DIR=/kaniko/ssl/certs \\
    DOCKER_CONFIG=/kaniko/.docker/
WORKDIR /workspace
ENTRYPOINT {entrypoint}
"""


def kaniko_image(bin_dir: Path, log: Log) -> str:
    """The kaniko executor image for build Jobs, from the node's own executor binary and
    the host's CA bundle (in the place upstream's image keeps it)."""
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        kaniko = context / "kaniko"
        (kaniko / "ssl" / "certs").mkdir(parents=True)
        # An empty folder, as upstream's: a push Secret is mounted over it.
        (kaniko / ".docker").mkdir()
        shutil.copy2(bin_dir / "kaniko-executor", kaniko / "executor")
        shutil.copy2(nodeimages.HOST_CA_BUNDLE, kaniko / "ssl" / "certs" / "ca-certificates.crt")
        (context / "nsswitch.conf").write_text(NSSWITCH)
        (context / "Dockerfile").write_text(kaniko_dockerfile())
        name = f"{nodeconfig.registry_host()}/pitstop/kaniko:executor"
        return build(bin_dir, context, context, name, log)


def operator_image(bin_dir: Path, repository_root: Path, log: Log) -> str:
    """The operator's image, from the repository's `operator/Dockerfile`."""
    name = f"{nodeconfig.registry_host()}/pitstop/operator:dev"
    return build(bin_dir, repository_root, repository_root / "operator", name, log)
