"""TensorFlow's start-up lines stay off the command line's stderr unless -v."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from snw_core import clilog

ROOT = Path(__file__).resolve().parent.parent
NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795995037.190932    6962 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.",
    "I0000 00:00:1795995037.335410    6962 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.",
    "W0000 00:00:1795995040.1    6962 cuda_executor.cc:1] no GPU found",
]
KEEP = ["error: Data source 'x' was not found.", "E0000 00:00:1795995040.1    6962 op.cc:1] a real error",
        "Traceback (most recent call last):", "Importing is fine", "I see", "WARNING: something else"]


@pytest.mark.parametrize("line", NOISE)
def test_noise_lines_are_recognised(line):
    assert clilog.is_noise(line) and clilog.is_noise(line + "\n")


@pytest.mark.parametrize("line", KEEP)
def test_other_lines_are_kept(line):
    assert not clilog.is_noise(line)


SCRIPT = textwrap.dedent("""
    import os, subprocess, sys, time
    from snw_core.clilog import StderrFilter
    noise, keep, marker = {noise!r}, {keep!r}, {marker!r}
    with StderrFilter():
        for i in range(max(len(noise), len(keep))):
            if i < len(noise):
                os.write(2, (noise[i] + "\\n").encode())   # the way TensorFlow's C++ core writes
            if i < len(keep):
                print(keep[i], file=sys.stderr, flush=True)
        os.write(2, b"progress 1/3\\r")             # a progress bar without a newline: passed at once
        t0 = time.time()
        while not os.path.exists(marker) and time.time() - t0 < 10:
            time.sleep(0.02)
        os.write(2, b"reader saw the partial line\\n" if os.path.exists(marker) else b"reader waited\\n")
        os.write(2, b"progress 3/3\\n")
        os.write(2, noise[1][:20].encode())        # a noise line cut in two writes
        time.sleep(0.1)
        os.write(2, (noise[1][20:] + "\\n").encode())
        subprocess.run([sys.executable, "-c", {child_code!r}])
    print("after the filter", file=sys.stderr)
""")


def test_filter_drops_noise_keeps_the_rest_and_passes_partial_lines_at_once(tmp_path):
    marker = tmp_path / "marker"
    child_code = f"import os; os.write(2, {(NOISE[0] + chr(10) + 'child says hello' + chr(10)).encode()!r})"
    script = SCRIPT.format(noise=NOISE, keep=KEEP, marker=str(marker), child_code=child_code)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE)
    got = b""
    while b"progress 1/3\r" not in got:           # the parent sees the partial line while the child waits
        chunk = proc.stderr.read1(4096)
        if not chunk:
            break
        got += chunk
    marker.write_text("seen")
    got += proc.stderr.read()
    proc.wait(30)
    text = got.decode()
    assert proc.returncode == 0, text
    for n in NOISE:
        assert n not in text
    for k in KEEP:
        assert k in text
    assert "progress 1/3\rreader saw the partial line\nprogress 3/3\n" in text
    assert "child says hello" in text and "after the filter" in text


def test_verbose_flag_before_or_after_the_command():
    from snw_core.__main__ import _parser
    assert _parser().parse_args(["runs"]).verbose is False
    assert _parser().parse_args(["-v", "runs"]).verbose is True
    assert _parser().parse_args(["runs", "-v"]).verbose is True
    assert _parser().parse_args(["data", "check", "default", "--verbose"]).verbose is True


@pytest.mark.slow
def test_cli_hides_tensorflow_start_up_lines_unless_verbose(tiny_parquet, tmp_path):
    """`inspect` loads the run's Keras model, so TensorFlow starts in the process."""
    import os
    from snw_core import data
    from trained_run import trained_run, write_pngs
    runs, rid = trained_run(tiny_parquet)
    png = write_pngs(data.load(str(tiny_parquet)).images[:1], tmp_path, ["item.png"])
    env = dict(os.environ, SNW_RUNS_DIR=str(runs))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    cmd = [sys.executable, "-m", "snw_core", "inspect", rid, *png]
    quiet = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    loud = subprocess.run(cmd + ["-v"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    assert quiet.stdout.count('"verdict"') == loud.stdout.count('"verdict"') == 1
    assert [ln for ln in quiet.stderr.splitlines() if clilog.is_noise(ln)] == []
    # the lines are there to hide: with -v they come through (TensorFlow prints them on start-up here)
    assert "absl::InitializeLog" in loud.stderr or "oneDNN" in loud.stderr, loud.stderr
