"""`python -m tests.benchmarks.serving`: one run, all servers, both models.

Per model, the four servers are started together and take turns (`--peer-rounds`
rounds, the order rotating; each turn: warm-up, then 1 and 32 connections; the
others sit idle), and medians over the rounds are kept. The figures that matter are
the ratios within this run, since absolute numbers drift between runs and machines.
Results are printed and written as JSON to the cache folder.

`--only mirroring` measures only the cost of mirroring 100 % of the traffic (cheap
model): two primaries side by side, one of them mirroring, twice: against a
near-zero-CPU shadow (nginx with a fixed answer: the primary's own cost) and against
a real shadow sharing a core with wrk.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from dataclasses import asdict
from pathlib import Path

CACHE = Path(os.environ.get("PITSTOP_BENCH_CACHE", Path.home() / ".cache" / "pitstop-bench"))
FEATURES = 20
ROUNDS = 8  # mirroring rounds, the mirroring primary swapped each round
PEER_ROUNDS = 3  # rounds over the four servers, order rotating
API_KEY = "bench-key"
# Micro-batching, measured on the models given by --batching: the template with
# PITSTOP_BATCH_WAIT_MS, MLServer with its adaptive batching (max_batch_size,
# max_batch_time), each allowed the same wait and batch size.
BATCH_WAIT_MS = 5.0
MLSERVER_BATCHING = (64, BATCH_WAIT_MS / 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0, help="measurement per point")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--models", default="logistic,forest")
    parser.add_argument("--batching", default="forest",
                        help="models also served with micro-batching on (template, MLServer)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=ROUNDS,
                        help="mirroring rounds (which primary mirrors swaps each round)")  # fmt: skip
    parser.add_argument("--peer-rounds", type=int, default=PEER_ROUNDS,
                        help="rounds over the four servers")  # fmt: skip
    parser.add_argument(
        "--only", choices=("all", "mirroring"), default="all",
        help="'mirroring': only the mirroring cost (logistic model), no peers",
    )  # fmt: skip
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    only_mirroring = args.only == "mirroring"
    models = ["logistic"] if only_mirroring else args.models.split(",")
    with tempfile.TemporaryDirectory(prefix="pitstop-bench-") as scratch:
        run(Path(scratch), args.seconds, args.warmup, models, only_mirroring, max(1, args.rounds),
            max(1, args.peer_rounds), set(filter(None, args.batching.split(","))))  # fmt: skip


def run(
    folder: Path, seconds: float, warmup: float, model_names: list[str],
    only_mirroring: bool = False, rounds: int = ROUNDS, peer_rounds: int = PEER_ROUNDS,
    batching: set[str] | None = None,
) -> None:  # fmt: skip
    batching = batching or set()
    home = folder / "bentoml"
    # BentoML fixes its home at import; the packages go to this run's scratch store.
    os.environ["BENTOML_HOME"] = str(home)
    import joblib
    import numpy as np
    import pandas as pd
    from pitstop.packaging import package
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from tests.benchmarks.serving import load, peers

    wrk = load.ensure_wrk()
    mlserver_bin = None if only_mirroring else peers.ensure_mlserver(CACHE)
    names = [f"f{i}" for i in range(FEATURES)]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, FEATURES))
    y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] > 0).astype(int)
    # Fitted on arrays (no feature names), so no server pays for sklearn's name warning.
    estimators = {
        "logistic": LogisticRegression().fit(x, y),
        "forest": RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y),
    }
    keys = folder / "keys"
    keys.mkdir()
    (keys / "bench").write_text(API_KEY)
    no_mirror = folder / "no-mirror.json"
    row = dict(zip(names, rng.normal(size=FEATURES).round(4).tolist(), strict=True))
    plain = load.script(folder, row, {})
    keyed = load.script(folder, row, {"Authorization": f"Bearer {API_KEY}"})
    v2 = load.script(
        folder,
        {"inputs": [{"name": "input-0", "shape": [1, FEATURES], "datatype": "FP64",
                     "data": list(row.values())}]},
        {},
    )  # fmt: skip
    table: list[dict[str, object]] = []
    batch_table: dict[str, dict[str, float]] = {}  # model -> share of calls by rows

    def measure(model: str, servers: dict[str, tuple[tuple[peers.Process, str], Path]]) -> None:
        """Every server of one model, in `peer_rounds` rounds, medians kept.

        All of them are up at once (idle ones cost nothing) and take turns, in an
        order that rotates each round, so the machine's drifting load touches each
        alike; a tail figure from one 8 s run on a shared machine is mostly luck."""
        names = list(servers)
        runs: dict[tuple[str, int], list[load.Result]] = {}
        batches: dict[str, dict[str, float]] = batch_table
        try:
            for started, _ in servers.values():
                started[0].wait()
            for round_ in range(peer_rounds):
                for server in names[round_ % len(names) :] + names[: round_ % len(names)]:
                    (_, url), lua = servers[server]
                    load.run(wrk, url, lua, 32, warmup)
                    for connections in (1, 32):
                        result = load.run(wrk, url, lua, connections, seconds)
                        runs.setdefault((server, connections), []).append(result)
                        print(f"{model:9} {server:16} c={connections:<3} {result.rps:8.0f} req/s  "
                              f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  "
                              f"errors {result.errors}  (round {round_ + 1})", flush=True)  # fmt: skip
            for server, ((_, url), _) in servers.items():
                if server.startswith("b2"):
                    batches[model] = batch_sizes(url.removesuffix("/predict") + "/metrics")
        finally:
            for (process, _), _ in servers.values():
                process.stop()
        for (server, connections), results in sorted(runs.items()):
            medians = {key: statistics.median(asdict(r)[key] for r in results)
                       for key in asdict(results[0])}  # fmt: skip
            table.append({"model": model, "server": server, "c": connections, **medians,
                          "rounds": len(results)})  # fmt: skip

    for model in model_names:
        estimator = estimators[model]
        model_file = folder / f"{model}.joblib"
        joblib.dump(estimator, model_file)
        tag = f"bench-{model}:1"
        package.create(estimator, pd.DataFrame(x, columns=names), name=f"bench-{model}",
                       version="1")  # fmt: skip
        if mlserver_bin is not None:
            no_mirror.write_text("{}")
            measure(model, {
                "a bare-bentoml": (peers.bare(folder, model_file, names, home), plain),
                "b template": (peers.template(folder, tag, home, keys, no_mirror,
                                              f"template-{model}"), keyed),
                "c mlserver": (peers.mlserver(mlserver_bin, folder, model_file, model), v2),
                "d thin-floor": (peers.thin(folder, model_file, names), plain),
                **({
                    "b2 template+batching": (peers.template(
                        folder, tag, home, keys, no_mirror, f"template-batching-{model}",
                        batch_wait_ms=BATCH_WAIT_MS), keyed),
                    "c2 mlserver+batching": (peers.mlserver(
                        mlserver_bin, folder, model_file, model, MLSERVER_BATCHING), v2),
                } if model in batching else {}),
            })  # fmt: skip
        if model == "logistic":
            mirroring(folder, tag, home, keys, wrk, keyed, row, seconds, warmup, rounds,
                      table)  # fmt: skip
    for model, shares in batch_table.items():
        table.append({"model": model, "server": "b2 batch rows per call", "c": 0, **shares})
    report(table, "serving-mirroring.json" if only_mirroring else "serving-benchmark.json")


# The two mirroring measurements: what the target ("≤ 5 % at p50") is about, the
# primary's own mirroring work, and what a real shadow sharing a core adds on a
# small machine.
MODES = {
    "isolated": "isolated (near-zero-CPU shadow: nginx answering a fixed body)",
    "real shadow": "with a real shadow on a shared core (another template, nice 19)",
}


def cpu_sets() -> tuple[str, str] | None:
    """(primaries' CPU, shadow's and wrk's CPU) when at least two CPUs are usable."""
    cpus = sorted(os.sched_getaffinity(0))
    return (str(cpus[0]), str(cpus[1])) if len(cpus) >= 2 else None


def mirroring(
    folder: Path, tag: str, home: Path, keys: Path, wrk: str, lua: Path,
    row: dict[str, float], seconds: float, warmup: float, rounds: int,
    table: list[dict[str, object]],
) -> None:  # fmt: skip
    """The primary's cost of mirroring 100 % of its traffic, measured side by side.

    Two identical primaries share one CPU. In every round one of them mirrors all of
    its traffic and the other does not; the roles swap each round (their mirror
    files are rewritten; they re-read them within a second). At 32 connections both
    are loaded at the same time, each by its own wrk with the same settings: they
    see the machine at the same moment, so its other load touches both alike, and
    the kernel's fair scheduler gives each half the CPU, so what differs is their
    work per request. (Run one after the other instead, off and on swung by ±10 %
    per round on this shared machine, more than the effect being measured.) At 1
    connection they take turns in 1 s slices instead (see `pair`). The per-round
    ratio mirroring/plain of p50, throughput and CPU time per request is the cost;
    medians over the rounds are kept.

    It is done twice, against two shadows (MODES):
    - isolated: nginx answering every copy with the primaries' own answer to the
      benchmark's row (and a `Server-Timing` header, as the template sends). The
      mirroring primary does all of its mirroring work (copies queued, pipelined,
      answers parsed, compared and counted: they agree) while the shadow costs next
      to no CPU: the primary's own cost, the figure the target is about.
    - real shadow: another template doing the predictions, at nice 19 (at equal
      priority it would delay wrk's reading of answers, and that delay would show up
      as the primary's latency). It competes with the two wrk processes for the
      other CPU.
    Copies the shadow could not keep up with are dropped by the primary and printed.
    """
    import concurrent.futures

    import httpx

    from tests.benchmarks.serving import load, peers

    pins = cpu_sets()
    primary_cpu, other_cpu = pins if pins else (None, None)
    print(
        f"\nmirroring setup: two primaries side by side on CPU {primary_cpu}, shadow and "
        f"wrk on CPU {other_cpu}; one mirrors, roles swapped each round, {rounds} rounds"
        if pins
        else "\nmirroring setup: one CPU only, nothing pinned"
    )
    nginx = peers.ensure_nginx()
    files = [folder / "mirror-a.json", folder / "mirror-b.json"]
    for file in files:
        file.write_text("{}")
    primaries = [
        peers.template(folder, tag, home, keys, file, f"primary-{name}", primary_cpu)
        for name, file in zip("ab", files, strict=True)
    ]

    def outcomes(url: str) -> dict[str, float]:
        """Copies counted by a primary so far: by outcome, and dropped."""
        text = httpx.get(url.removesuffix("/predict") + "/metrics", timeout=5,
                         headers={"Authorization": f"Bearer {API_KEY}"}).raise_for_status().text  # fmt: skip
        counts = {"agree": 0.0, "disagree": 0.0, "error": 0.0, "dropped": 0.0}
        for line in text.splitlines():
            if line.startswith("pitstop_shadow_requests_total{"):
                outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
                counts[outcome] = float(line.rsplit(" ", 1)[1])
            elif line.startswith("pitstop_shadow_dropped_total "):
                counts["dropped"] = float(line.rsplit(" ", 1)[1])
        return counts

    def measured(index: int, connections: int, duration: float) -> tuple[load.Result, float]:
        """One wrk run on primary `index`: its result and the primary's CPU seconds."""
        process, url = primaries[index]
        before = process.cpu_seconds()
        result = load.run(wrk, url, lua, connections, duration, other_cpu)
        return result, process.cpu_seconds() - before

    def together(connections: int, duration: float) -> list[tuple[load.Result, float]]:
        """Both primaries loaded at the same time, each by its own wrk."""
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            return list(pool.map(lambda index: measured(index, connections, duration), (0, 1)))

    def pair(connections: int, on: int, round_: int) -> list[tuple[load.Result, float]]:
        """Both primaries' results and CPU ms per request, in the primaries' order.

        At 32 connections they are loaded at the same time. At 1 connection, loaded
        together each would wait behind the other's requests and p50 would be a queue
        rather than one request's latency; so they take turns in 1 s slices (order
        swapping every slice) while the other idles, and each one's figures are the
        medians over its slices: the machine drifts little within a second."""
        if connections == 32:
            return [(result, cpu / (result.rps * max(1, round(seconds))) * 1000)
                    for result, cpu in together(32, seconds)]  # fmt: skip
        slices: list[list[tuple[load.Result, float]]] = [[], []]
        for slice_ in range(max(1, round(seconds))):
            order = [on, 1 - on] if (slice_ + round_) % 2 == 0 else [1 - on, on]
            for index in order:
                slices[index].append(measured(index, connections, 1.0))
        combined = []
        for runs in slices:
            results = [result for result, _ in runs]
            requests = sum(result.rps for result in results)  # 1 s each
            combined.append((
                load.Result(
                    rps=requests / len(results),
                    p50_ms=statistics.median(result.p50_ms for result in results),
                    p99_ms=statistics.median(result.p99_ms for result in results),
                    errors=sum(result.errors for result in results),
                ),
                sum(cpu for _, cpu in runs) / requests * 1000,
            ))  # fmt: skip
        return combined

    def alternate(mode: str, shadow_url: str) -> None:
        plain, mirrored = f"b plain [{mode}]", f"b+mirror100% [{mode}]"
        samples: dict[tuple[str, int], list[dict[str, float]]] = {}
        totals = {"agree": 0.0, "disagree": 0.0, "error": 0.0, "dropped": 0.0}
        for round_ in range(rounds):
            on = round_ % 2
            for index, file in enumerate(files):
                file.write_text(json.dumps({"url": shadow_url, "percent": 100} if index == on
                                           else {}))  # fmt: skip
            together(32, max(warmup, 2.0))  # and they re-read their mirror files
            before = outcomes(primaries[on][1])
            for connections in (1, 32):
                for index, (result, cpu_ms) in enumerate(pair(connections, on, round_)):
                    label = mirrored if index == on else plain
                    samples.setdefault((label, connections), []).append(
                        {**asdict(result), "primary_cpu_ms_per_request": cpu_ms}
                    )
                    print(f"{'logistic':9} {label:26} c={connections:<3} {result.rps:6.0f} req/s  "
                          f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                          f"errors {result.errors}  primary CPU {cpu_ms:.3f} ms/req  "
                          f"(round {round_ + 1}, primary {'ab'[index]})", flush=True)  # fmt: skip
            after = outcomes(primaries[on][1])
            delta = {key: after[key] - before[key] for key in after}
            for key in totals:
                totals[key] += delta[key]
            print(f"{'':9} {'':26} copies counted by primary {'ab'[on]}: "
                  f"{delta['agree']:.0f} agree, {delta['disagree']:.0f} disagree, "
                  f"{delta['error']:.0f} shadow errors, {delta['dropped']:.0f} dropped",
                  flush=True)  # fmt: skip
            if delta["agree"] + delta["disagree"] + delta["error"] <= 0:
                raise RuntimeError("the primary did not mirror: see its log")
        for file in files:
            file.write_text("{}")
        for (label, connections), runs in samples.items():
            medians = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            extra: dict[str, float] = {}
            if label == mirrored:
                extra = {f"shadow_{key}_total": value for key, value in totals.items()}
                # Per round, the mirroring primary against the plain one beside it.
                paired = list(zip(samples[plain, connections], runs, strict=True))
                for key in ("p50_ms", "rps", "primary_cpu_ms_per_request"):
                    extra[f"{key}_paired_ratio"] = statistics.median(b[key] / a[key]
                                                                     for a, b in paired)  # fmt: skip
            table.append({"model": "logistic", "server": label, "c": connections, **medians,
                          "rounds": len(runs), **extra})  # fmt: skip

    try:
        for process, _ in primaries:
            process.wait()
        # The fixed shadow answers what the primaries answer: the copies agree, so the
        # comparison runs to the end as it would against a healthy shadow.
        answer = httpx.post(primaries[0][1], json=row, timeout=5,
                            headers={"Authorization": f"Bearer {API_KEY}"})  # fmt: skip
        answer.raise_for_status()
        for mode, title in MODES.items():
            print(f"\nmirroring, {title}:", flush=True)
            if mode == "isolated":
                shadow, shadow_url = peers.fixed_shadow(nginx, folder, answer.content, other_cpu)
            else:
                off = folder / "shadow-mirror.json"
                off.write_text("{}")
                shadow, shadow_url = peers.template(folder, tag, home, keys, off, "shadow",
                                                    other_cpu, nice=19)  # fmt: skip
            try:
                shadow.wait()
                alternate(mode, shadow_url)
            finally:
                shadow.stop()
    finally:
        for process, _ in primaries:
            process.stop()


def batch_sizes(metrics_url: str) -> dict[str, float]:
    """The share of the template's model calls by rows per call (pitstop_batch_rows)."""
    import httpx

    cumulative: list[tuple[float, float]] = []
    # The template runs with auth on (its cost is measured): /metrics needs the key too.
    answer = httpx.get(metrics_url, timeout=5, headers={"Authorization": f"Bearer {API_KEY}"})
    for line in answer.raise_for_status().text.splitlines():
        if line.startswith("pitstop_batch_rows_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            cumulative.append((float(bound), float(line.rsplit(" ", 1)[1])))
    cumulative.sort()
    total = cumulative[-1][1] if cumulative else 0.0
    shares: dict[str, float] = {}
    below, lower = 0.0, 0.0
    for bound, count in cumulative:
        if count > below and total:
            label = f"{lower + 1:g}-{bound:g}" if bound != float("inf") else f">{lower:g}"
            shares[label] = (count - below) / total
        below, lower = count, bound
    return shares


def report(table: list[dict[str, object]], name: str = "serving-benchmark.json") -> None:
    def get(model: str, server: str, c: int, key: str) -> float:
        for entry in table:
            if (entry["model"], entry["server"], entry["c"]) == (model, server, c):
                return float(entry[key])  # type: ignore[arg-type]
        return float("nan")

    servers = {str(e["server"]) for e in table}
    if "b template" in servers:
        print("\nratios (throughput; p99 of b vs c at 32 connections):")
    for model in sorted({str(e["model"]) for e in table if e["server"] == "b template"}):
        for c in (1, 32):
            b = get(model, "b template", c, "rps")
            print(
                f"{model:9} c={c:<3} b/a {b / get(model, 'a bare-bentoml', c, 'rps'):5.2f}  "
                f"b/c {b / get(model, 'c mlserver', c, 'rps'):5.2f}  "
                f"b/d {b / get(model, 'd thin-floor', c, 'rps'):5.2f}"
            )
        print(
            f"{model:9} p99@32: template {get(model, 'b template', 32, 'p99_ms'):.1f} ms, "
            f"mlserver {get(model, 'c mlserver', 32, 'p99_ms'):.1f} ms"
        )
    for model in sorted({str(e["model"]) for e in table if str(e["server"]).startswith("b2")}):
        b2, b = get(model, "b2 template+batching", 32, "rps"), get(model, "b template", 32, "rps")
        print(
            f"\nmicro-batching, {model} at 32 connections (targets: >= 3x the template without "
            f"batching, >= 1.5x MLServer with its own batching, p99 no worse):\n"
            f"  template+batching / template {b2 / b:5.2f}   / mlserver+batching "
            f"{b2 / get(model, 'c2 mlserver+batching', 32, 'rps'):5.2f}   / mlserver "
            f"{b2 / get(model, 'c mlserver', 32, 'rps'):5.2f}\n"
            f"  p99: template+batching {get(model, 'b2 template+batching', 32, 'p99_ms'):.1f} ms, "
            f"template {get(model, 'b template', 32, 'p99_ms'):.1f} ms, mlserver+batching "
            f"{get(model, 'c2 mlserver+batching', 32, 'p99_ms'):.1f} ms\n"
            f"  at 1 connection: template+batching / template "
            f"{get(model, 'b2 template+batching', 1, 'rps') / get(model, 'b template', 1, 'rps'):5.2f}"
        )
        shares = next((e for e in table if e["model"] == model
                       and e["server"] == "b2 batch rows per call"), {})  # fmt: skip
        print("  rows per model call: " + ", ".join(
            f"{k} {float(v):.0%}" for k, v in shares.items() if k not in ("model", "server", "c")))  # type: ignore[arg-type]  # fmt: skip
    for mode, title in MODES.items():
        off, on = f"b plain [{mode}]", f"b+mirror100% [{mode}]"
        if off not in servers:
            continue
        rounds = get("logistic", off, 1, "rounds")
        print(
            f"\nmirroring 100% cost, {title}; side by side, medians of {rounds:.0f} rounds "
            "(each: the per-round ratio of the mirroring primary to the plain one):"
        )
        for c in (1, 32):
            base = get("logistic", off, c, "p50_ms")
            mirrored = get("logistic", on, c, "p50_ms")
            cpu = get("logistic", off, c, "primary_cpu_ms_per_request")
            cpu_mirrored = get("logistic", on, c, "primary_cpu_ms_per_request")
            p50_ratio = get("logistic", on, c, "p50_ms_paired_ratio")
            rps_ratio = get("logistic", on, c, "rps_paired_ratio")
            cpu_ratio = get("logistic", on, c, "primary_cpu_ms_per_request_paired_ratio")
            print(f"  c={c:<3} p50 {base:.2f} -> {mirrored:.2f} ms, {(p50_ratio - 1) * 100:+.1f}%; "
                  f"throughput {(rps_ratio - 1) * 100:+.1f}%; primary CPU {cpu:.3f} -> "
                  f"{cpu_mirrored:.3f} ms/req, {(cpu_ratio - 1) * 100:+.1f}%")  # fmt: skip
        counted = {key: get("logistic", on, 1, f"shadow_{key}_total")
                   for key in ("agree", "disagree", "error", "dropped")}  # fmt: skip
        print(f"  copies over all rounds: {counted['agree']:.0f} agree, "
              f"{counted['disagree']:.0f} disagree, {counted['error']:.0f} shadow errors, "
              f"{counted['dropped']:.0f} dropped")  # fmt: skip
    out = CACHE / name
    out.write_text(json.dumps(table, indent=2))
    print(f"\nresults written to {out}")


if __name__ == "__main__":
    main()
