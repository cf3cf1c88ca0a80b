"""One run of the fast engine on a city scaled per capita: wall time and peak memory.

    .venv/bin/python benchmarks/scale.py --families 1000000 --weeks 52

The scenario (base by default) is scaled per capita with the same rule as `famsim run
--families`: grid area, neighbourhoods, staff, hubs and budget grow with the population,
places per child stay the same. The run is what a replication does (FamilyAccessModel,
world build included, no burn-in unless asked), timed from the scenario to the final
metrics. `seconds` is the whole run, world build included; `us_per_family_week` divides it
by families x weeks. The compiled kernels are loaded first on a tiny city (compiled, the
first time after an install, and cached on disk), outside the timed run; `jit_s` on the
line before the last says how long that took. The last line is machine-readable:
    families=<N> weeks=<W> seconds=<float> us_per_family_week=<float> peak_rss_gb=<float>
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from sim.engine.model import FamilyAccessModel
from sim.scenario.schema import load_scenario
from sim.studies.runner import replication_seed, with_run_settings
from sim.world.build import build_world

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_gb() -> float:
    """Peak resident set size of this process (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=1_000_000)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--burn-in", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "base.toml"))
    args = parser.parse_args()
    scenario = with_run_settings(
        load_scenario(args.scenario),
        weeks=args.weeks,
        burn_in=args.burn_in,
        families=args.families,
    )
    seed = replication_seed(scenario.run.seed, 0)
    jit_started = time.perf_counter()
    tiny = with_run_settings(load_scenario(args.scenario), weeks=2, burn_in=1, families=400)
    FamilyAccessModel(tiny, rng=seed).run_for(3)
    jit_seconds = time.perf_counter() - jit_started
    started = time.perf_counter()
    world = build_world(scenario, seed)
    built = time.perf_counter()
    model = FamilyAccessModel(scenario, rng=seed, world=world, take_world=True)
    model.run_for(args.burn_in + args.weeks)
    metrics = model.metrics()
    finished = time.perf_counter()
    weeks = args.burn_in + args.weeks
    seconds = finished - started
    print(
        f"grid={world.city.width}x{world.city.height} services={world.services.services.size} "
        f"build_s={built - started:.2f} weeks_s={finished - built:.2f} "
        f"ms_per_week={1e3 * (finished - built) / weeks:.1f} "
        f"u3_participation_all={metrics['u3_participation_all']:.4f} jit_s={jit_seconds:.2f}"
    )
    print(
        f"families={args.families} weeks={weeks} seconds={seconds:.2f} "
        f"us_per_family_week={1e6 * seconds / (args.families * weeks):.3f} "
        f"peak_rss_gb={peak_rss_gb():.3f}"
    )


if __name__ == "__main__":
    main()
