"""Command line: famsim run | compare | validate | sweep | sensitivity | calibrate | patterns |
accessibility | place-hubs | demo (also `python -m sim`).

Bad input gives one line on stderr naming the file, key path and what is allowed, exit
code 2, and nothing written.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import traceback
import warnings
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from sim.core.errors import ScenarioError
from sim.core.provenance import package_version
from sim.outputs.folders import (
    ERROR_LOG,
    OutputError,
    check_out,
    check_replaceable,
    default_out_dir,
    folder_lock,
    job_identity,
    probe,
)
from sim.scenario.schema import ScenarioWarning, load_scenario


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be at least 0")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (allowed: 1 to 65535)")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with the project's error style: one line on stderr, exit code 2 (subcommand
    parsers inherit this class)."""

    def error(self, message: str) -> NoReturn:
        _fail(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _fail(line: str) -> NoReturn:
    print(_one_line(line), file=sys.stderr)
    raise SystemExit(2)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _add_run_settings(parser: argparse.ArgumentParser) -> None:
    """Options that override a scenario's [run] table or scale its city (run and compare)."""
    parser.add_argument("--reps", type=_positive, help="replications (default: run.replications)")
    parser.add_argument("--weeks", type=_positive, help="measured weeks (default: run.weeks)")
    parser.add_argument(
        "--burn-in", type=_non_negative, help="weeks before measuring (default: run.burn_in_weeks)"
    )
    parser.add_argument("--seed", type=_non_negative, help="run seed (default: run.seed)")
    parser.add_argument(
        "--families", type=_positive, help="scale the city per capita to this many families"
    )


# the calibrated default city's plausible set (famsim calibrate scenarios/base.toml --targets
# validation/targets/flanders.toml, committed under validation/flanders)
DEFAULT_PLAUSIBLE = Path("validation/flanders/plausible.parquet")


def _add_executor(parser: argparse.ArgumentParser) -> None:
    """--workers and --dask, for the commands that run many runs (`_executor`)."""
    parser.add_argument("--workers", type=_positive, help="parallel processes (default: up to 2)")
    parser.add_argument(
        "--dask",
        metavar="local|tcp://HOST:PORT",
        help="run on Dask: 'local' starts a cluster on 127.0.0.1, or a scheduler's address",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="famsim", description="How families with young children reach services.")
    parser.add_argument(
        "--version", action="version", version=f"famsim {package_version('famsim')}"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="run a scenario's replications and write results",
        epilog="example: famsim run scenarios/base.toml --reps 5 --weeks 52 --seed 7",
    )
    run.add_argument("scenario", type=Path, help="scenario file (TOML), e.g. scenarios/base.toml")
    _add_run_settings(run)
    run.add_argument("--out", type=Path, help="output directory (default: results/<scenario name>)")
    run.add_argument(
        "--workers", type=_positive, help="processes running replications (default: up to 2)"
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    run.add_argument(
        "--force",
        action="store_true",
        help="replace --out even if it holds another scenario's results",
    )

    comp = sub.add_parser(
        "compare",
        help="compare scenarios with common random numbers",
        epilog="example: famsim compare scenarios/universal.toml scenarios/proportionate.toml "
        "--reps 3 --out results/two",
    )
    comp.add_argument(
        "scenarios", type=Path, nargs="+", help="two or more scenario files on the same city"
    )
    _add_run_settings(comp)
    comp.add_argument("--baseline", help="scenario name to difference against (default: the first)")
    comp.add_argument(
        "--levers",
        type=Path,
        metavar="FILE",
        help="also run each lever of a lever file (e.g. scenarios/levers/proportionate.toml) added to and "
        "removed from its configurations, and report each lever's own effect",
    )
    comp.add_argument(
        "--over-plausible",
        type=_positive,
        metavar="N",
        help="also re-run the comparison at N points of a calibration's plausible set and "
        "report in how many each ranking holds",
    )
    comp.add_argument(
        "--plausible",
        type=Path,
        default=DEFAULT_PLAUSIBLE,
        metavar="FILE",
        help=f"the plausible set for --over-plausible (default: {DEFAULT_PLAUSIBLE})",
    )
    comp.add_argument(
        "--plausible-reps",
        type=_positive,
        default=3,
        metavar="R",
        help="replications at each plausible point (default: 3)",
    )
    comp.add_argument("--workers", type=_positive, help="parallel processes (default: up to 2)")
    comp.add_argument("--out", type=Path, help="output directory (default: results/compare)")
    comp.add_argument("--quiet", action="store_true", help="no progress bar or table")
    comp.add_argument(
        "--force", action="store_true", help="replace --out even if it holds other results"
    )

    validate = sub.add_parser(
        "validate",
        help="check a scenario file (and its city files) without running it",
        epilog="example: famsim validate scenarios/example_city.toml --resolved > resolved.toml",
    )
    validate.add_argument("scenario", type=Path, help="scenario file (TOML)")
    validate.add_argument(
        "--resolved",
        action="store_true",
        help="print the resolved scenario (extends merged, defaults filled in) as TOML",
    )
    validate.add_argument("--quiet", action="store_true", help="print nothing when valid")

    sweep = sub.add_parser(
        "sweep",
        help="run a sweep file's design (resumable, any executor)",
        epilog="example: famsim sweep scenarios/sweeps/smoke.toml --workers 2",
    )
    sweep.add_argument(
        "sweep", type=Path, help="sweep file (TOML: base, sampler, parameters), e.g. smoke.toml"
    )
    sweep.add_argument("--out", type=Path, help="results folder (default: results/sweeps/<name>)")
    _add_executor(sweep)
    sweep.add_argument(
        "--resume", action="store_true", help="continue the sweep in --out (the default there)"
    )
    sweep.add_argument("--quiet", action="store_true", help="no progress bar or summary")

    sens = sub.add_parser(
        "sensitivity",
        help="Sobol' or Morris indices of a finished sweep",
        epilog="example: famsim sensitivity scenarios/sweeps/behaviour_sobol.toml",
    )
    sens.add_argument("sweep", type=Path, help="the sweep file of a finished sobol or morris sweep")
    sens.add_argument(
        "--out", type=Path, help="the sweep's results folder (default: results/sweeps/<name>)"
    )
    sens.add_argument("--quiet", action="store_true", help="no table of indices")

    cal = sub.add_parser(
        "calibrate",
        help="fit a scenario's free parameters to a targets file (history matching, resumable)",
        epilog="example: famsim calibrate scenarios/base.toml --targets validation/targets/flanders.toml",
    )
    cal.add_argument("scenario", type=Path, help="the scenario the targets file names")
    cal.add_argument("--targets", type=Path, required=True, help="targets file (TOML)")
    cal.add_argument(
        "--params",
        nargs="+",
        metavar="KEY",
        help="free parameters: keys of the targets file's [parameters], or KEY=LOW:HIGH",
    )
    cal.add_argument(
        "--budget", type=_positive, help="runs for the waves (default: the file's budget)"
    )
    _add_executor(cal)
    cal.add_argument(
        "--out", type=Path, help="results folder (default: results/calibration/<targets name>)"
    )
    cal.add_argument("--quiet", action="store_true", help="no progress bar or summary")

    pat = sub.add_parser(
        "patterns",
        help="run the validation patterns (figures the model was not fitted to) and say which pass",
        epilog="example: famsim patterns --reps 5",
    )
    pat.add_argument(
        "--file", type=Path, default=Path("validation/patterns.toml"), help="patterns file"
    )
    pat.add_argument("--reps", type=_positive, default=5, help="replications (default: 5)")
    pat.add_argument("--fast", action="store_true", help="only the patterns marked fast")
    pat.add_argument("--workers", type=_positive, help="parallel processes (default: up to 2)")
    pat.add_argument("--quiet", action="store_true", help="no progress bar")

    acc = sub.add_parser(
        "accessibility",
        help="the field's static measure: the 2SFCA index per cell, with its inputs",
        epilog="example: famsim accessibility scenarios/base.toml --radius-m 1500 --out A",
    )
    acc.add_argument("scenario", type=Path, help="scenario file (TOML)")
    acc.add_argument(
        "--type",
        default="childcare",
        choices=["childcare", "health", "parenting", "admin_help"],
        help="service type (default: childcare)",
    )
    acc.add_argument(
        "--radius-m",
        type=_positive_float,
        default=1500.0,
        help="catchment radius in metres, straight line between cell centres (default: 1500)",
    )
    acc.add_argument(
        "--minutes",
        type=_positive_float,
        help="use the model's travel minutes instead of metres, with this catchment (minutes)",
    )
    acc.add_argument(
        "--mode",
        choices=["walk", "transit", "car"],
        default="transit",
        help="travel mode of --minutes (default: transit, which walks when walking is faster)",
    )
    acc.add_argument("--decay", choices=["none", "gaussian"], default="none")
    acc.add_argument("--out", type=Path, help="output directory (default: results/accessibility)")
    acc.add_argument("--force", action="store_true", help="replace --out whatever it holds")
    acc.add_argument("--quiet", action="store_true", help="no summary")

    place = sub.add_parser(
        "place-hubs",
        help="where K new hubs should go: simulation-optimisation beside MCLP, p-median, random",
        epilog="example: famsim place-hubs scenarios/base.toml --hubs 3 --method all --reps 3 "
        "--out P",
    )
    place.add_argument("scenario", type=Path, help="scenario file (TOML)")
    place.add_argument("--hubs", type=_positive, required=True, help="new hubs to place (K)")
    place.add_argument(
        "--method",
        choices=["simulated", "mclp", "pmedian", "random", "all"],
        default="all",
        help="placement method (default: all, compared on the same seeds)",
    )
    place.add_argument(
        "--candidates",
        default="auto",
        help="CSV file of candidate cells (columns x, y), or auto: the cells of existing "
        "public sites of hubs.anchor_types (default)",
    )
    place.add_argument(
        "--objective",
        choices=["unmet_need", "arope_u3_reached", "gap"],
        default="unmet_need",
        help="what the simulated search optimises and the comparison ranks (default: unmet_need)",
    )
    place.add_argument(
        "--reps", type=_positive, help="search seeds per placement (default: run.replications)"
    )
    place.add_argument(
        "--final-reps",
        type=_positive,
        help="fresh seeds of the final comparison (default: the larger of 10 and 3 x --reps)",
    )
    place.add_argument(
        "--radius-m",
        type=_positive_float,
        default=1500.0,
        help="MCLP's covering radius in metres (default: 1500)",
    )
    place.add_argument(
        "--time-limit",
        type=_positive_float,
        default=60.0,
        help="solver time limit per location model, seconds (default: 60)",
    )
    place.add_argument("--weeks", type=_positive, help="measured weeks (default: run.weeks)")
    place.add_argument(
        "--burn-in", type=_non_negative, help="weeks before measuring (default: run.burn_in_weeks)"
    )
    place.add_argument("--seed", type=_non_negative, help="run seed (default: run.seed)")
    place.add_argument(
        "--families", type=_positive, help="scale the city per capita to this many families"
    )
    place.add_argument("--workers", type=_positive, help="parallel processes (default: up to 2)")
    place.add_argument("--out", type=Path, help="output directory (default: results/place_hubs)")
    place.add_argument("--force", action="store_true", help="replace --out whatever it holds")
    place.add_argument("--quiet", action="store_true", help="no progress bar or summary")

    app = sub.add_parser(
        "app",
        help="explore a city and try policies in the browser (Mesa's SolaraViz)",
        epilog="example: famsim app scenarios/proportionate.toml, then open http://127.0.0.1:8765",
    )
    app.add_argument(
        "scenario",
        type=Path,
        nargs="?",
        default=Path("scenarios/proportionate.toml"),
        help="the configuration shown first; the shipped ones beside it are offered too "
        "(default: scenarios/proportionate.toml)",
    )
    app.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    app.add_argument("--port", type=_port, default=8765, help="port (default: 8765)")
    app.add_argument(
        "--families",
        type=_positive,
        help="scale the city per capita (as famsim run --families), e.g. 3000 on a slow machine",
    )

    demo = sub.add_parser(
        "demo",
        help="compare the shipped configurations, the levers and the adaptive policy on the default city and write results/demo",
        epilog="example: famsim demo (from the project folder; make demo does the same)",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bar or table")
    return parser


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so the job unwinds like on Ctrl-C: workers are
    stopped and nothing half-written is left."""


class InternalError(Exception):
    """A bug (not bad input, not a named model failure): its traceback is in `log`."""

    def __init__(self, log: Path, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.log = log


EXIT_FAILED = 1  # the job ran, but some replication or run failed (results are written)
EXIT_INPUT = 2  # bad input: nothing written
EXIT_INTERNAL = 70  # a bug in famsim (sysexits EX_SOFTWARE): the traceback is in a log file
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


def _on_sigterm(signum, frame) -> NoReturn:
    raise Terminated()


@contextmanager
def _signals() -> Iterator[None]:
    """SIGTERM unwinds the job (only the main thread may install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _bugs_logged_in(folder: Path) -> Iterator[None]:
    """An exception that is neither bad input nor a named model failure is a bug: write its
    traceback to `folder`/famsim-error.log and stop with one line."""
    try:
        yield
    except (ScenarioError, OutputError, InternalError, BrokenProcessPool):
        raise
    except Exception as exc:  # noqa: BLE001 - any other exception is a bug: logged, re-raised
        raise InternalError(_write_log(folder, exc), exc) from exc
    # (BaseException - Ctrl-C, SIGTERM, SystemExit - passes through: it is not a bug)


def _write_log(folder: Path, exc: BaseException) -> Path:
    text = "".join(traceback.format_exception(exc))
    fallback = Path(tempfile.gettempdir()) / f"famsim-error-{os.getpid()}.log"
    for log in (folder / ERROR_LOG, fallback):
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(text, encoding="utf-8")
            return log
        except OSError:
            continue
    return Path("<no log could be written>")


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """A scenario warning is one line on stderr, like an error (other warnings as usual)."""
    with warnings.catch_warnings():
        previous = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None) -> None:
            if issubclass(category, ScenarioWarning):
                print(_one_line(f"famsim: warning: {message}"), file=sys.stderr)
            else:
                previous(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with _signals(), _warnings_as_lines():
        try:
            # a bug before a job has its folder is logged in the temporary folder
            with _bugs_logged_in(Path(tempfile.gettempdir()) / "famsim"):
                return _dispatch(args)
        except ScenarioError as exc:
            # bad input: one line, exit code 2, and nothing has been written
            print(_one_line(f"famsim: error: {exc}"), file=sys.stderr)
            return EXIT_INPUT
        except OutputError as exc:
            print(
                _one_line(f"famsim: error: {exc.strerror}; nothing was replaced"), file=sys.stderr
            )
            return EXIT_FAILED
        except BrokenProcessPool:
            # the machine's doing, not famsim's: a worker was killed from outside (most often
            # by the kernel when memory ran out)
            print(
                "famsim: error: a worker process died (killed from outside, e.g. when memory "
                "ran out); nothing half-written was left (a sweep keeps its finished runs: run "
                "the same command again to resume)",
                file=sys.stderr,
            )
            return EXIT_FAILED
        except InternalError as exc:
            print(
                _one_line(
                    f"famsim: internal error: {exc} (a bug in famsim; the traceback is in "
                    f"{exc.log}); nothing half-written was left"
                ),
                file=sys.stderr,
            )
            return EXIT_INTERNAL
        except KeyboardInterrupt:
            print(
                "famsim: interrupted (SIGINT); workers stopped, nothing half-written",
                file=sys.stderr,
            )
            return EXIT_SIGINT
        except Terminated:
            print(
                "famsim: terminated (SIGTERM); workers stopped, nothing half-written",
                file=sys.stderr,
            )
            return EXIT_SIGTERM


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "validate":
        return _validate(args)
    if args.command == "run":
        return _run(
            args.scenario,
            args.reps,
            args.weeks,
            args.burn_in,
            args.seed,
            args.families,
            args.out,
            args.quiet,
            force=args.force,
            workers=args.workers,
        )
    if args.command == "compare":
        return _compare(
            args.scenarios,
            args.reps,
            args.weeks,
            args.burn_in,
            args.seed,
            args.families,
            args.baseline,
            args.workers,
            args.out or Path("results/compare"),
            args.quiet,
            force=args.force,
            levers=args.levers,
            over_plausible=args.over_plausible,
            plausible=args.plausible,
            plausible_reps=args.plausible_reps,
        )
    if args.command == "demo":
        return _demo(args.quiet)
    if args.command == "sweep":
        return _sweep(args)
    if args.command == "sensitivity":
        return _sensitivity(args)
    if args.command == "calibrate":
        return _calibrate(args)
    if args.command == "patterns":
        return _patterns(args)
    if args.command == "accessibility":
        return _accessibility(args)
    if args.command == "place-hubs":
        return _place_hubs(args)
    if args.command == "app":
        return _app(args)
    return EXIT_INPUT


@contextmanager
def _from_file(origin: str) -> Iterator[None]:
    """Errors raised while building (services, budget) name no file; name the scenario's."""
    try:
        yield
    except ScenarioError as exc:
        if exc.file.startswith("<"):
            raise ScenarioError(origin, exc.key_path, exc.message) from None
        raise


def _preflight(scenario, path: Path, file_target: float | None = None) -> None:
    """Every check that can fail on input, before any work: memory, the city and its tables,
    and the services (e.g. a budget that cannot be balanced). Run once in this process, so
    bad input never reaches a worker process. file_target: the file's outlay target when
    --families scaled it."""
    from sim.world.build import prepare  # not sim.studies.runner: validate need not load the engine

    with _from_file(str(path)):
        prepare(scenario, str(path), file_target)


def _app(args) -> int:
    """Serve the web app (sim.app.web) until interrupted."""
    scenario = load_scenario(args.scenario)  # bad input stops here, before the server
    if args.families is not None:
        from sim.studies.runner import with_run_settings

        scenario = with_run_settings(scenario, families=args.families)
    from sim.app import assets

    if assets.missing():
        names = ", ".join(a.folder for a in assets.missing())
        raise ScenarioError(
            "<command line>",
            "app",
            f"the web app's browser files are missing ({names}); allowed: run "
            "'make install' or 'python -m sim.app.assets' once (it fetches them from the npm "
            "registry)",
        )
    import uvicorn

    os.environ["SOLARA_APP"] = "sim.app.web:Page"
    os.environ["FAMSIM_APP_SCENARIO"] = str(args.scenario)
    os.environ["FAMSIM_APP_FAMILIES"] = str(args.families or "")
    print(
        f"famsim: serving {scenario.name} on http://{args.host}:{args.port} (Ctrl-C stops)",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(
        "solara.server.starlette:app", host=args.host, port=args.port, log_level="warning"
    )
    uvicorn.Server(config).run()
    return 0


def _validate(args) -> int:
    scenario = load_scenario(args.scenario)
    _preflight(scenario, args.scenario)
    if args.resolved:
        print(resolved_toml(scenario, args.scenario), end="")
    elif not args.quiet:
        print(
            f"{args.scenario}: valid scenario {scenario.name!r} (hash {scenario.content_hash()[:16]})"
        )
    return 0


def resolved_toml(scenario, origin: Path) -> str:
    """The resolved scenario as a TOML file that loads back to the same scenario (and hash):
    every key, inherited or default; keys without a value (None) are left out, as TOML has
    no null and leaving them out gives the same default."""
    import tomli_w

    def without_none(value):
        if isinstance(value, dict):
            return {k: without_none(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [without_none(v) for v in value]
        return value

    head = (
        f"# {origin} resolved by famsim validate --resolved: extends merged, defaults filled\n"
        f"# in (hash {scenario.content_hash()[:16]})\n"
    )
    return head + tomli_w.dumps(without_none(scenario.resolved_dict()))


def _run(
    path: Path,
    reps,
    weeks,
    burn_in,
    seed,
    families,
    out: Path | None,
    quiet: bool,
    force: bool = False,
    workers: int | None = None,
) -> int:
    # bad input is refused before the modules that run and write load (a second or two)
    loaded = load_scenario(path)
    from sim.studies.runner import default_workers, run, with_run_settings

    scenario = with_run_settings(loaded, weeks, burn_in, seed, reps, families, origin=str(path))
    target = check_out(out if out is not None else default_out_dir(scenario.name))
    _preflight(scenario, path, loaded.budget.target_outlay_eur_week)
    from sim.outputs.results import write_run

    with folder_lock(target):
        check_replaceable(target, job_identity("run", [scenario.name]), force)
        probe(target)
        _announce_compiling(quiet)
        with _bugs_logged_in(target):
            with _from_file(str(path)):
                result = run(
                    scenario, origin=str(path), quiet=quiet, workers=workers or default_workers()
                )
            write_run(result, target)
    shown = out if out is not None else default_out_dir(scenario.name)
    if not quiet:
        _print_summary(result, shown)
    return _report_failures(result.manifest["replications"], shown)


def _announce_compiling(quiet: bool) -> None:
    """Say why the first run after an install pauses before its first week."""
    from sim.core.compiled import needs_compiling

    if not quiet and needs_compiling():
        print(
            "famsim: compiling the engine (once after an edit of the engine, about 40 s)",
            file=sys.stderr,
        )


def _report_failures(statuses: list[dict], out: Path) -> int:
    """Say on stderr which replications failed and why (not only in the manifest)."""
    failed = [s for s in statuses if s["status"] != "ok"]
    if not failed:
        return 0
    first = failed[0]
    label = f"{first['scenario']} " if "scenario" in first else ""
    print(
        _one_line(
            f"famsim: {len(failed)} of {len(statuses)} replication(s) failed, e.g. {label}"
            f"replication {first['replication']}: {first['error']} (all in {out}/manifest.json)"
        ),
        file=sys.stderr,
    )
    return EXIT_FAILED


def _print_summary(result, out_dir: Path) -> None:
    """A few headline measures, formatted as report.md formats them (report.estimate)."""
    from sim.measure.metrics import kind_of
    from sim.outputs.report import estimate, reliability_note

    print(f"{result.scenario.name}: {len(result.runs)} replication(s) -> {out_dir}/")
    for column in (
        "u3_participation_all",
        "u3_participation_arope",
        "u3_participation_non_arope",
        "u3_gap_pp",
        "concentration_index",
        "unmet_need_share",
        "waitlist_total",
        "public_outlay_eur_week",
    ):
        print(f"  {column:28s} {estimate(result.runs[column], kind_of(column))}")
    note = reliability_note(len(result.runs))
    if note:
        print("  " + note.replace("**", ""))


DEMO_SCENARIOS = [
    Path("scenarios/universal.toml"),
    Path("scenarios/universal_free.toml"),
    Path("scenarios/targeted.toml"),
    Path("scenarios/proportionate.toml"),
    Path("scenarios/one_roof.toml"),
    Path("scenarios/proportionate_one_roof.toml"),
    Path("scenarios/proportionate_adaptive.toml"),
]
DEMO_LEVERS = Path("scenarios/levers/proportionate.toml")
# the headline comparison whose rankings the demo re-checks over the calibrated plausible set,
# at this many points (3 replications each: 96 runs, about 3 minutes on 2 cores)
DEMO_RANKED = ["universal", "targeted", "proportionate", "one_roof"]
DEMO_PLAUSIBLE_POINTS = 8
# replications of every demo run: the stigma x paperwork grid needs at least 10 for its cells
# to be told apart (with 2 its "no clear ranking" cells were noise)
DEMO_REPLICATIONS = 10


def _compare(
    paths,
    reps,
    weeks,
    burn_in,
    seed,
    families,
    baseline,
    workers,
    out: Path,
    quiet: bool,
    analyses: bool = False,
    force: bool = False,
    levers: Path | None = None,
    over_plausible: int | None = None,
    plausible: Path = DEFAULT_PLAUSIBLE,
    plausible_reps: int = 3,
    ranked: list[str] | None = None,
) -> int:
    target = check_out(out)
    files = [load_scenario(p) for p in paths]  # refused before the model's modules load
    from sim.studies.runner import default_workers, with_run_settings

    scenarios = []
    for p, loaded in zip(paths, files, strict=True):
        scenario = with_run_settings(loaded, weeks, burn_in, seed, reps, families, origin=str(p))
        # replications run in worker processes: bad input is found here, in this one
        _preflight(scenario, p, loaded.budget.target_outlay_eur_week)
        scenarios.append(scenario)
    from sim.outputs.results import write_comparison
    from sim.studies.comparison import check_comparable, compare

    origins = [str(p) for p in paths]
    check_comparable(scenarios, origins)
    lever_set = None
    if levers is not None:
        from sim.studies.levers import load_levers

        lever_set = load_levers(levers)
    names = [s.name for s in scenarios]
    points = None
    if over_plausible:
        from sim.studies.robustness import load_plausible

        points = load_plausible(plausible, scenarios[0], over_plausible)
    with folder_lock(target):
        check_replaceable(target, job_identity("compare", names), force)
        probe(target)
        _announce_compiling(quiet)
        with _bugs_logged_in(target):
            supplement = demo_analyses(scenarios) if analyses else []
            comparison = compare(
                scenarios,
                origins=origins,
                baseline=baseline,
                quiet=quiet,
                workers=workers or default_workers(),
                supplement=supplement,
                levers=lever_set,
            )
            if points is not None:
                comparison = _with_ranking(
                    comparison,
                    scenarios,
                    points,
                    plausible,
                    plausible_reps,
                    ranked,
                    workers,
                    quiet,
                    target.with_name(f"{target.name}-plausible-runs"),
                )
            write_comparison(comparison, target)
    if not quiet:
        from sim.outputs.report import HEADLINE, headline_table

        columns = HEADLINE[:5] + ("public_outlay_eur_week",)
        print(f"{len(names)} scenarios x {scenarios[0].run.replications} replications -> {out}/")
        print(headline_table(comparison.runs, names, columns))
    statuses = [
        {**r, "scenario": name}
        for name, m in comparison.manifest["scenarios"].items()
        for r in m["replications"]
    ]
    return _report_failures(statuses, out)


def _with_ranking(
    comparison, scenarios, points, plausible, reps, ranked, workers, quiet, runs_folder
):
    """The comparison with its rankings re-checked over the plausible points (their runs are
    resumable sweeps in `runs_folder`, beside the comparison's folder)."""
    from dataclasses import replace

    from sim.studies.robustness import RANKED_MEASURE, over_plausible
    from sim.studies.runner import with_run_settings

    chosen = [s for s in scenarios if ranked is None or s.name in ranked]
    chosen = [
        with_run_settings(s, None, None, None, reps, None, origin=s.name, by="--plausible-reps")
        for s in chosen
    ]
    runs = comparison.runs
    means = {s.name: float(runs[runs["scenario"] == s.name][RANKED_MEASURE].mean()) for s in chosen}
    with _executor(None, workers) as (executor, label, n):
        record = over_plausible(
            chosen, means, points, str(plausible), runs_folder, executor, label, n, quiet
        )
    found = comparison.findings
    found = replace(found, supplementary=replace(found.supplementary, ranking=record))
    return replace(comparison, findings=found)


def demo_analyses(scenarios) -> list:
    """Extra runs the demo report needs: the targeted stigma x paperwork grid against
    proportionate (as many replications as the comparison, on its seeds)."""
    from sim.measure.patterns import crossover_scenarios

    by_name = {s.name: s for s in scenarios}
    return crossover_scenarios(by_name["targeted"], by_name["universal"].run.replications)


def _demo(quiet: bool) -> int:
    """The shipped configurations on the default city, with intervals, the pattern analyses,
    lever by lever and the adaptive run against its static twin (results/demo)."""
    missing = [p for p in DEMO_SCENARIOS if not p.exists()]
    if missing:
        raise ScenarioError(
            str(missing[0]), "", "a shipped configuration is missing; run from the project root"
        )
    return _compare(
        DEMO_SCENARIOS,
        DEMO_REPLICATIONS,
        None,
        None,
        None,
        None,
        None,
        None,
        Path("results/demo"),
        quiet,
        analyses=True,
        levers=DEMO_LEVERS,
        over_plausible=DEMO_PLAUSIBLE_POINTS,
        ranked=DEMO_RANKED,
    )


def _sweep_out(sweep, out: Path | None) -> Path:

    return out if out is not None else default_out_dir("sweeps") / sweep.name


def _sweep(args) -> int:
    from sim.studies.sweep import load_sweep, run_sweep

    sweep = load_sweep(args.sweep)
    out = check_out(_sweep_out(sweep, args.out))
    _preflight(sweep.base, args.sweep)
    # one writer per sweep folder for the whole job; run_sweep is told not to lock again
    # (a second flock in this process on the same file would refuse ourselves)
    with folder_lock(out), _bugs_logged_in(out):
        with _executor(args.dask, args.workers) as (executor, label, workers):
            report = run_sweep(
                sweep, out, executor, label, workers, args.resume, args.quiet, lock=False
            )
    if not args.quiet:
        print(
            f"{sweep.name}: {report.total} runs ({report.done_before} already done, "
            f"{report.ran} run now, {report.failed} failed) in {report.seconds:.1f} s -> {out}"
        )
    if report.failed_total:
        print(
            _one_line(
                f"famsim: {report.failed_total} of {report.total} run(s) failed, e.g. "
                f"{report.first_failure} (all in {out}/runs)"
            ),
            file=sys.stderr,
        )
        return EXIT_FAILED
    return 0


# How long to wait for a Dask scheduler to answer: one on a network answers in well under
# a second, and an address that does not answer should be said promptly, not after 30 s.
DASK_CONNECT_SECONDS = 5


@contextmanager
def _executor(dask: str | None, workers: int | None):
    """(executor, label, workers) for many runs: a process pool, or Dask (local or a
    scheduler's address)."""
    from sim.studies.runner import default_workers, process_pool

    workers = workers or default_workers()
    if dask is None:
        # forkserver: workers start from a clean process, not a fork of a threaded parent;
        # process_pool stops them when the job is interrupted
        with process_pool(workers, "forkserver") as pool:
            yield pool, "process-pool", workers
        return
    from sim.studies.sweep import local_cluster

    try:
        from distributed import Client
    except ImportError:
        raise ScenarioError(
            "<command line>",
            "--dask",
            "Dask is not installed; install the extra: pip install 'famsim[dask]'",
        ) from None
    if dask == "local":
        with local_cluster(workers) as cluster, Client(cluster) as client:
            yield client.get_executor(), "dask-local", workers
        return
    if not dask.startswith("tcp://"):
        raise ScenarioError(
            "<command line>", "--dask", f"value {dask!r}; allowed: local or tcp://HOST:PORT"
        )
    try:
        client = Client(dask, timeout=DASK_CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ScenarioError(
            "<command line>",
            "--dask",
            f"value {dask!r}: no Dask scheduler answered within {DASK_CONNECT_SECONDS} s "
            f"({type(exc).__name__}); allowed: local, or the tcp://HOST:PORT of a running "
            "scheduler",
        ) from None
    with client:
        n = len(client.scheduler_info().get("workers", {})) or workers
        yield client.get_executor(), f"dask {dask}", n


def _patterns(args) -> int:
    from sim.outputs.calibration import patterns_table
    from sim.studies.runner import default_workers
    from sim.studies.validation import load_patterns, run_patterns

    specs = load_patterns(args.file)
    if args.fast:
        specs = [s for s in specs if s.fast]
    _announce_compiling(args.quiet)
    results = run_patterns(specs, args.reps, args.workers or default_workers(), args.quiet)
    print(patterns_table(results))
    return 0 if all(r.passes for r in results) else EXIT_FAILED


def _calibrate(args) -> int:
    from sim.outputs.calibration import write_calibration, write_manifest
    from sim.studies.calibration import calibrate, calibrated_toml, load_targets, manifest

    targets = load_targets(args.targets, args.params)
    if args.scenario.resolve() != targets.scenario_file:
        raise ScenarioError(
            str(args.targets),
            "scenario",
            f"names {targets.scenario_file.name}, not {str(args.scenario)!r}; allowed: the "
            "scenario the targets file names",
        )
    loaded = load_scenario(args.scenario)
    _preflight(loaded, args.scenario)
    out = check_out(args.out or default_out_dir("calibration") / targets.name)
    notes: list[str] = []
    with folder_lock(out), _bugs_logged_in(out):
        _announce_compiling(args.quiet)
        with _executor(args.dask, args.workers) as (executor, label, workers):
            result = calibrate(
                targets, out, executor, label, workers, args.budget, args.quiet, notes.append
            )
        toml_name = f"{args.scenario.stem}_calibrated.toml"
        text = calibrated_toml(result, out / toml_name)
        write_calibration(result, out, text, toml_name)
        write_manifest(out, manifest(result))
    for note in notes:
        print(_one_line(note), file=sys.stderr)
    if not args.quiet:
        chosen = ", ".join(f"{k} = {v:g}" for k, v in result.chosen.items())
        print(f"{targets.name}: {result.runs_total} runs ({result.runs_now} now) -> {out}/")
        print(f"chosen: {chosen}")
        print(
            result.fit[
                ["target", "value", "simulated", "simulated_low", "simulated_high", "inside_band"]
            ].to_string(index=False, float_format=lambda v: f"{v:.3f}")
        )
    return 0


def _sensitivity(args) -> int:
    from sim.studies.sensitivity import analyse
    from sim.studies.sweep import load_sweep

    sweep = load_sweep(args.sweep)
    out = _sweep_out(sweep, args.out)
    notes: list[str] = []
    written = analyse(sweep, out, out / "sensitivity", notes)
    for note in notes:
        print(_one_line(f"famsim: note: {note}"), file=sys.stderr)
    if not args.quiet:
        import pandas as pd

        table = pd.read_csv(written[0])
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        print(f"wrote {len(written)} files to {out / 'sensitivity'}")
    return 0


def _accessibility(args) -> int:
    from sim.outputs.placement import write_accessibility
    from sim.studies.explore import access_map
    from sim.studies.runner import manifest

    scenario = load_scenario(args.scenario)
    _preflight(scenario, args.scenario)
    out = check_out(args.out or default_out_dir("accessibility"))
    with folder_lock(out), _bugs_logged_in(out):
        check_replaceable(out, job_identity("accessibility", [scenario.name]), args.force)
        probe(out)
        with _from_file(str(args.scenario)):
            found = access_map(
                scenario,
                args.type,
                args.radius_m,
                args.minutes,
                args.mode,
                args.decay,
                origin=str(args.scenario),
            )
        result, city = found.index, found.city
        write_accessibility(result, city, found.sites, manifest(scenario, []), out)
    if not args.quiet:
        d = result.demand
        catchment = result.catchment
        reached = result.supply["demand_in_reach"] > 0
        print(
            f"{scenario.name}: 2SFCA access to {args.type} within {catchment.radius:g} "
            f"{catchment.unit} ({catchment.decay} decay) -> {out}/"
        )
        print(
            f"  {len(d):,} populated cells, {len(result.supply):,} sites; places per family "
            f"in need: mean {d['access_2sfca'].mean():.3f}, demand-weighted "
            f"{found.demand_weighted_mean():.3f}, "
            f"{int((d['access_2sfca'] == 0).sum()):,} cells with none in reach; "
            f"{int((~reached).sum())} sites reach no demand"
        )
    return 0


def _place_hubs(args) -> int:
    from sim.outputs.placement import write_placements
    from sim.studies.placement import (
        METHODS,
        OBJECTIVES,
        PlacementSettings,
        candidate_cells,
        place_hubs,
        placement_findings,
    )
    from sim.studies.runner import default_workers, manifest, with_run_settings
    from sim.world.city import build_city
    from sim.world.services import build_services

    loaded = load_scenario(args.scenario)
    scenario = with_run_settings(
        loaded, args.weeks, args.burn_in, args.seed, None, args.families, origin=str(args.scenario)
    )
    _preflight(scenario, args.scenario, loaded.budget.target_outlay_eur_week)
    out = check_out(args.out or default_out_dir("place_hubs"))
    with _from_file(str(args.scenario)):
        city = build_city(scenario, str(args.scenario))
    candidates = candidate_cells(scenario, city, args.candidates, args.hubs, str(args.scenario))
    reps = args.reps or scenario.run.replications
    methods = METHODS if args.method == "all" else (args.method,)
    settings = PlacementSettings(
        k=args.hubs,
        objective=OBJECTIVES[args.objective],
        methods=tuple(methods),
        reps=reps,
        final_reps=args.final_reps or max(10, 3 * reps),
        radius_m=args.radius_m,
        time_limit_s=args.time_limit,
        seed=scenario.run.seed,
    )
    notes: list[str] = []
    with folder_lock(out), _bugs_logged_in(out):
        check_replaceable(out, job_identity("place-hubs", [scenario.name]), args.force)
        probe(out)
        _announce_compiling(args.quiet)
        with _from_file(str(args.scenario)):
            study = place_hubs(
                scenario,
                settings,
                candidates,
                workers=args.workers or default_workers(),
                quiet=args.quiet,
                say=notes.append,
            )
        found = placement_findings(study, city)
        sites = build_services(scenario, city).services.frame()
        record = manifest(scenario, []) | {
            "search_seeds": study.search_seeds,
            "final_seeds": study.final_seeds,
            "placement": {
                "hubs": settings.k,
                "methods": list(settings.methods),
                "objective": settings.objective.name,
                "candidates": args.candidates,
                "radius_m": settings.radius_m,
                "time_limit_s": settings.time_limit_s,
            },
        }
        record["placement"] |= {"runs": study.evaluations, "seconds": round(study.seconds, 1)}
        write_placements(found, city, sites, record, out)
    if not args.quiet:
        for note in notes:
            print(f"famsim: {note}", file=sys.stderr)
        print(
            f"{scenario.name}: {args.hubs} hub{'s' if args.hubs > 1 else ''}, "
            f"{len(candidates)} candidates, "
            f"{study.evaluations:,} runs in {study.seconds / 60:.1f} min -> {out}/"
        )
        table = found.table
        for row in table.itertuples():
            value = getattr(row, "objective_mean", float("nan"))
            print(
                f"  {row.method:10s} {row.hub_cells or '-':28s} "
                f"{settings.objective.column} {value:.4g}  p(best) "
                f"{getattr(row, 'p_best', float('nan')):.2f}  {row.solver_status}"
            )
    return 0
