"""Crash recovery (issue 27 item 5): a writer killed inside a commit leaves a hot journal;
the reading commands roll it back under the writers' lock and read the rows as they were
before the interrupted write. Store paths that are not regular files are refused at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import clsreg
import pytest
from click.testing import CliRunner
from clsreg.analysis.store import ResultsStore
from clsreg.cli import cli

# A writer that copies every row of the store under new keys in one transaction, with a
# cache of one page so the new pages reach the file before COMMIT, and then stops inside
# the commit (a trace hook on the COMMIT statement) until it is killed.
WRITER = """
import sys, time
from clsreg.analysis.store import Record, ResultsStore

folder, kind = sys.argv[1], sys.argv[2]
with ResultsStore(folder) as store:
    rows = store.records(kind, with_arrays=kind == "realdata")
    store._connection.execute("PRAGMA cache_size = 1")

    def inside_commit(statement):
        if statement.startswith("COMMIT"):
            print("committing", flush=True)
            time.sleep(600)

    store._connection.set_trace_callback(inside_commit)
    store.write([Record(key=r["key"] + "/again", kind=r["kind"], config=r["config"],
                        seed=r["seed"], metrics=r["metrics"], arrays=r.get("arrays", {}))
                 for r in rows])
"""
# The folder that holds the imported package (not resolved: it may be a link to a tree).
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(clsreg.__file__)))


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    from test_store_rows import make_stores

    sim, real = make_stores(tmp_path_factory.mktemp("recovery"), seeds=2, data_seed=1)
    return {"sim1d": sim, "realdata": real}


def rows(folder: Path) -> list[tuple]:
    """Every stored row, arrays as bytes of their values (the row set a report reads)."""
    with ResultsStore(folder, create=False) as store:
        return [(r["key"], r["kind"], repr(r["config"]), r["seed"], repr(r["metrics"]),
                 {k: v.tobytes() for k, v in r.get("arrays", {}).items()})
                for r in store.records(with_arrays=True)]


def start_writer(folder: Path, kind: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": PACKAGE_PARENT}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(folder), kind], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = writer.stdout.readline()
    assert line == "committing\n", writer.communicate()[1]
    assert Path(f"{folder}/results.sqlite-journal").stat().st_size > 0
    return writer


def invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def check_refused(args: list, message: str) -> None:
    result = invoke(*args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert lines[-1].startswith("Error: ") and message in lines[-1], result.output
    assert [line.startswith("Error: ") for line in lines].count(True) == 1, result.output


@contextlib.contextmanager
def no_hang(seconds: int = 60):
    """Fail (instead of hanging) if the block blocks, e.g. in opening a FIFO."""
    def interrupt(signum, frame):
        raise TimeoutError("the command hung")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


REPORTS = {"sim1d": (["simulate", "report"], "summary.csv"),
           "realdata": (["realdata", "report"], "summary.csv")}


@pytest.mark.parametrize("kind", ["sim1d", "realdata"])
def test_a_writer_killed_inside_a_commit_leaves_the_rows_as_before(stores, tmp_path,
                                                                   monkeypatch, kind):
    folder = tmp_path / "store"
    folder.mkdir()
    shutil.copyfile(stores[kind] / "results.sqlite", folder / "results.sqlite")
    before = rows(folder)
    command, table = REPORTS[kind]
    result = invoke(*command, folder)
    assert result.exit_code == 0, result.output
    reported = (folder / table).read_bytes()
    (folder / table).unlink()
    intact = (folder / "results.sqlite").read_bytes()

    writer = start_writer(folder, kind)
    try:
        # While the writer lives, it holds the folder: its journal is not a killed write's.
        monkeypatch.setattr(ResultsStore, "BUSY_TIMEOUT", 0.2)
        result = invoke(*command, folder)
        assert result.exit_code == 1, result.output
        assert result.output.strip().splitlines()[-1] == (
            f"Error: another clsreg run is writing to {folder}; wait for it to finish")
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=60)
    monkeypatch.undo()
    journal = Path(f"{folder}/results.sqlite-journal")
    assert journal.stat().st_size > 0  # a hot journal, and a store file that it must undo
    assert (folder / "results.sqlite").read_bytes() != intact

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    result = invoke(*command, copy)
    assert result.exit_code == 0, result.output
    assert (copy / table).read_bytes() == reported
    assert not Path(f"{copy}/results.sqlite-journal").exists()
    assert rows(copy) == before
    assert (copy / "results.sqlite").read_bytes() == intact


def test_theory_check_and_figures_recover_a_killed_write_too(stores, tmp_path):
    folder = tmp_path / "store"
    shutil.copytree(stores["sim1d"], folder)
    before = rows(folder)
    writer = start_writer(folder, "sim1d")
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=60)
    result = invoke("figures", "simulate", folder, "--out", tmp_path / "figs")
    assert result.exit_code == 0, result.output
    assert rows(folder) == before


def test_a_recovery_that_cannot_write_says_so(stores, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "store"
    shutil.copytree(stores["sim1d"], folder)
    writer = start_writer(folder, "sim1d")
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=60)
    folder.chmod(0o555)
    try:
        result = invoke("simulate", "report", folder)
    finally:
        folder.chmod(0o755)
    assert result.exit_code in (1, 2), result.output
    assert "left unfinished by a killed run" in result.output or "cannot open" in result.output


# ------------------------------------------------------------------ not a regular file
@pytest.mark.parametrize("command", [
    ["simulate", "report"], ["realdata", "report"], ["theory", "check"],
    ["simulate", "run", "--preset", "smoke", "--device", "cpu", "--out"],
])
@pytest.mark.parametrize("what", ["fifo", "device", "folder"])
def test_a_store_path_that_is_not_a_regular_file_is_refused_at_once(tmp_path, command,
                                                                     what):
    folder = tmp_path / "store"
    folder.mkdir()
    path = folder / "results.sqlite"
    if what == "fifo":
        os.mkfifo(path)
        message = "is a named pipe (FIFO), not a results store"
    elif what == "device":
        path.symlink_to("/dev/null")
        message = "/dev/null is a device, not a results store"
    else:
        path.mkdir()
        message = "is a folder, not a results store"
    with no_hang():
        check_refused([*command, folder], message)
    assert sorted(p.name for p in folder.iterdir()) == ["results.sqlite"]
    if what == "device":
        assert path.is_symlink() and Path("/dev/null").is_char_device()


def test_a_journal_that_is_a_fifo_is_refused_at_once(stores, tmp_path):
    folder = tmp_path / "store"
    shutil.copytree(stores["sim1d"], folder)
    os.mkfifo(f"{folder}/results.sqlite-journal")
    with no_hang():
        check_refused(["simulate", "report", folder],
                      "results.sqlite-journal is a named pipe (FIFO), not a results store")
