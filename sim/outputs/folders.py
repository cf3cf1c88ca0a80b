"""Output folders: checked before any work, locked against a second writer, and replaced
whole, so a reader finds either the previous complete result or the new one, never a mix.

A run or comparison is written into a staging folder beside its target
(`.<name>.staging-<pid>`), which is renamed into place only when every file is written; the
previous result, if any, is moved aside first and deleted afterwards. SIGINT and SIGTERM are
held back during the two renames, so an interrupt cannot fall between them; a crash there
(power loss, `kill -9`) leaves the previous result as `.<name>.previous-<pid>`, which the next
write restores if the target is missing.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sim.core.errors import ScenarioError

RESULTS_ROOT = Path("results")
ERROR_LOG = "famsim-error.log"  # a bug's traceback, written into the output folder
LOCK_SUFFIX = ".lock"
STAGING = ".staging-"
PREVIOUS = ".previous-"


class OutputError(OSError):
    """The results could not be written (a full disk, a folder removed under us); the
    previous result, if any, is untouched."""


def check_out(out: Path, key: str = "--out") -> Path:
    """Refuse an output path that is not a sensible place for results, before any work:
    an empty path, the file-system root, the home folder, the current folder or one of its
    parents (replacing it would delete what it holds), or something that is not a folder.
    Returns the absolute path."""
    text = str(out)
    if not text.strip() or text == ".":
        raise ScenarioError(
            "<command line>", key, f"value {text!r}; allowed: a path to a new or results folder"
        )
    path = Path(os.path.abspath(out))
    real = path.resolve()  # compared through symlinks: a link to the home folder is the home
    cwd = Path.cwd().resolve()
    home = Path.home().resolve()
    if real.parent == real or real == home or real == cwd or real in cwd.parents:
        raise ScenarioError(
            "<command line>",
            key,
            f"value {text!r} is the file-system root, the home folder or the current folder "
            "(or one of its parents); allowed: a folder of its own for these results",
        )
    if path.exists() and not path.is_dir():
        raise ScenarioError(
            "<command line>", key, f"{text!r} exists and is not a folder; allowed: a folder"
        )
    return path


def job_identity(command: str, names: list[str]) -> dict[str, Any]:
    """What a results folder holds, as its manifest's "job" entry records it."""
    return {"command": command, "scenarios": list(names)}


def check_replaceable(out: Path, identity: dict[str, Any], force: bool, key: str = "--out") -> None:
    """Refuse to replace a folder that holds something other than this job's results: files
    that are not famsim results at all (always), or another scenario's results (unless
    `force`). `identity` is the manifest's "job" entry, e.g. {"command": "run", "scenarios":
    ["base"]}."""
    if not out.is_dir() or not [p for p in out.iterdir() if p.name != ERROR_LOG]:
        return
    try:
        held = held_identity(json.loads((out / "manifest.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        held = None
    if held is None:
        raise ScenarioError(
            "<command line>",
            key,
            f"{str(out)!r} holds files that are not famsim results (no readable manifest.json); "
            "allowed: a new or empty folder, or a folder of famsim results",
        )
    if held != identity and not force:
        raise ScenarioError(
            "<command line>",
            key,
            f"{str(out)!r} holds the results of {_describe(held)}, not of {_describe(identity)}; "
            "allowed: another folder, or --force to replace them",
        )


def held_identity(manifest: Any) -> dict[str, Any] | None:
    """The job a results manifest records; manifests written before the "job" entry existed
    are recognised by their layout (a run's "scenario", a comparison's "scenarios", a
    sweep's "sweep_hash")."""
    if not isinstance(manifest, dict):
        return None
    if isinstance(manifest.get("job"), dict):
        return manifest["job"]
    if isinstance(manifest.get("sweep_hash"), str):
        return job_identity("sweep", [str(manifest.get("sweep", {}).get("name", "?"))])
    if isinstance(manifest.get("scenarios"), dict):
        return job_identity("compare", list(manifest["scenarios"]))
    if isinstance(manifest.get("scenario"), dict) and "name" in manifest["scenario"]:
        return job_identity("run", [manifest["scenario"]["name"]])
    return None


def _describe(identity: dict[str, Any]) -> str:
    names = ", ".join(repr(n) for n in identity.get("scenarios", []))
    return f"famsim {identity.get('command', '?')} {names}"


@contextmanager
def folder_lock(target: Path, key: str = "--out") -> Iterator[Path]:
    """Hold an exclusive lock on `target` for the block: a second famsim writing to the same
    folder is refused with one line. The lock file lies beside the target
    (`.<name>.lock`), since the target itself is replaced whole, and is removed on release."""
    target = Path(os.path.abspath(target))
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(target, key, exc) from None
    lock_path = parent / f".{target.name}{LOCK_SUFFIX}"
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _unwritable(target, key, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ScenarioError(
                "<command line>",
                key,
                f"{str(target)!r} is being written by another famsim process; allowed: wait "
                "for it to finish, or another folder",
            ) from None
        # the holder before us may have removed the file after we opened it: lock the file
        # that is at the path now, not an orphan
        try:
            same = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield target
    finally:
        try:
            os.unlink(lock_path)
        except FileNotFoundError:
            pass
        os.close(fd)


def _unwritable(target: Path, key: str, exc: OSError) -> ScenarioError:
    return ScenarioError(
        "<command line>",
        key,
        f"cannot write to {str(target)!r} ({exc.strerror or exc}); allowed: a folder you can write",
    )


def probe(target: Path, key: str = "--out") -> None:
    """Check, before any work, that results can be written beside `target`: an unwritable
    place is found before anything is computed, not after."""
    abandon(begin(target, key))


def begin(target: Path, key: str = "--out") -> Path:
    """Create the staging folder for `target`, after restoring a previous result that a crash
    left aside."""
    parent = target.parent
    restore_abandoned(target)
    staging = parent / f".{target.name}{STAGING}{os.getpid()}"
    try:
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
    except OSError as exc:
        raise _unwritable(target, key, exc) from None
    return staging


def restore_abandoned(target: Path) -> None:
    """Put back a previous result that a crash left aside, and remove staging folders of
    writers that are gone. Call only while holding the target's lock."""
    parent = target.parent
    if not parent.is_dir():
        return
    for path in parent.glob(f".{target.name}{PREVIOUS}*"):
        if not target.exists():
            os.rename(path, target)
        else:
            shutil.rmtree(path, ignore_errors=True)
    for path in parent.glob(f".{target.name}{STAGING}*"):
        shutil.rmtree(path, ignore_errors=True)


def abandon(staging: Path) -> None:
    """Remove a staging folder after a failed or interrupted write."""
    shutil.rmtree(staging, ignore_errors=True)


def commit(staging: Path, target: Path) -> None:
    """Replace `target` by the fully written `staging` folder."""
    previous = target.parent / f".{target.name}{PREVIOUS}{os.getpid()}"
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        if target.exists():
            os.rename(target, previous)
        os.rename(staging, target)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    shutil.rmtree(previous, ignore_errors=True)


@contextmanager
def staged(target: Path, key: str = "--out") -> Iterator[Path]:
    """Write into the yielded staging folder; on a clean exit it replaces `target` whole, on
    any exception (an interrupt, a full disk) it is removed and `target` is left as it was."""
    staging = begin(target, key)
    written = False
    try:
        yield staging
        written = True
    except OSError as exc:
        # a full disk, a quota, a folder removed or made read-only under us: the machine's
        # state, not a bug, and the previous result is still in place
        raise OutputError(
            exc.errno, f"cannot write the results to {str(target)!r}: {exc.strerror or exc}"
        ) from exc
    finally:
        if not written:  # failed or interrupted (Ctrl-C, SIGTERM): drop the partial folder
            abandon(staging)
    commit(staging, target)


def default_out_dir(name: str) -> Path:
    """results/<name>; names are validated (letters, digits, '_' and '-') so this cannot
    leave results/."""
    path = (RESULTS_ROOT / name).resolve()
    root = RESULTS_ROOT.resolve()
    if path.parent != root:
        raise ScenarioError("<command line>", "name", f"value {name!r} would write outside {root}")
    return RESULTS_ROOT / name
