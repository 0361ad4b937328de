"""tools/tried_evidence.py, the study of three evidences not kept: it runs on a finished run and its numbers hold
together (AUROCs in [0, 1], a check that can only stop never passes more than the run)."""
import re
import subprocess
import sys

import pytest

from trained_run import ROOT, trained_run

TOOL = str(ROOT / "tools" / "tried_evidence.py")


def _run(*args):
    return subprocess.run([sys.executable, TOOL, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_studies_run_on_a_finished_run_and_only_ever_stop_more(tiny_parquet):
    runs, rid = trained_run(tiny_parquet, preset="default")
    r = _run("margin", rid, "--runs-dir", str(runs))
    assert r.returncode == 0, r.stderr[-2000:]
    aurocs = [float(x) for x in re.findall(r"(?:val|test) (\d\.\d{3})", r.stdout)]
    assert len(aurocs) == 4 and all(0.0 <= a <= 1.0 for a in aurocs)
    assert "as an evidence that rejects" in r.stdout

    r = _run("wholepart", rid, "--runs-dir", str(runs))
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.search(r"limit \d+\.\d\d", r.stdout)
    rows = re.findall(r"(\w+) (\d+)->(\d+) \(max", r.stdout)
    assert [name for name, _, _ in rows][:2] == ["none", "shift"] and len(rows) == 9
    assert all(int(after) <= int(before) for _, before, after in rows)
    stopped = re.findall(r"GOOD (\d+), the check stops (\d+)", r.stdout)
    assert len(stopped) == 2 and all(int(s) <= int(g) for g, s in stopped)

    r = _run("matched", rid, "--runs-dir", str(runs))
    assert r.returncode == 0, r.stderr[-2000:]
    assert [line.split()[0] for line in r.stdout.splitlines()[1:]] == ["rotation", "blur", "jpeg", "noise"]


def test_an_unknown_run_is_a_clear_error(tmp_path):
    r = _run("margin", "no-such-run", "--runs-dir", str(tmp_path))
    assert r.returncode == 2
    assert "error: There is no run 'no-such-run'" in r.stderr
