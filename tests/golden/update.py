"""Write (or check) the golden outputs of every shipped scenario.

Usage::

    python tests/golden/update.py            # check: exit 1 and name what differs
    python tests/golden/update.py --write    # record anew: only when a change is MEANT to change numbers

Run ``--write`` only in a commit that says which numbers change and why (a model change, a
new scenario, a fix); a restructure or a speed-up must pass the check unchanged. Each case
is first computed single-threaded, then every other mode (threads and odd chunk sizes, and a
two-worker ``LocalCluster``) must give the same fingerprint, or nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fingerprint import (  # noqa: E402
    ANALYSES_SCENARIOS,
    CASES,
    CLUSTER_MODE,
    MODES,
    PATHS,
    SEED,
    case_file,
    dumps,
    fingerprint,
    run,
    scenario_files,
    with_analyses,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="record the cases anew")
    parser.add_argument("--no-cluster", action="store_true", help="skip the two-worker LocalCluster mode")
    args = parser.parse_args()

    failures = []
    cases = {}
    for path in scenario_files():
        first_name, *others = MODES
        reference = run(path, **MODES[first_name])
        for name in others:
            if run(path, **MODES[name]) != reference:  # before the analyses are added
                failures.append(f"{path.name}: mode {name} differs from {first_name}")
        if path.stem in ANALYSES_SCENARIOS:
            reference["summary_with_analyses"] = with_analyses(path)
        cases[path] = reference
        print(f"{path.name}: p_loss {reference['summary']['p_loss']:.4f}, paths {reference['paths_sha256'][:12]}")
    if not args.no_cluster:
        from distributed import Client, LocalCluster

        import kzsim

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        with cluster, Client(cluster) as client:
            for path in scenario_files():
                got = kzsim.simulate(kzsim.load_scenario(path), paths=PATHS, seed=SEED, client=client)
                got = fingerprint(got)
                if any(got[key] != cases[path][key] for key in got):
                    failures.append(f"{path.name}: mode {CLUSTER_MODE} differs from {first_name}")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        return 1
    if args.write:
        CASES.mkdir(exist_ok=True)
        for path, value in cases.items():
            case_file(path).write_text(dumps(value))
        print(f"wrote {len(cases)} cases to {CASES}")
        return 0
    differ = [p.name for p, v in cases.items() if not case_file(p).exists() or case_file(p).read_text() != dumps(v)]
    if differ:
        print("differ from the recorded cases: " + ", ".join(differ), file=sys.stderr)
        return 1
    print(
        f"all {len(cases)} cases as recorded ({PATHS} paths, seed {SEED}, modes: {', '.join(MODES)}"
        + ("" if args.no_cluster else f", {CLUSTER_MODE}")
        + ")"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
