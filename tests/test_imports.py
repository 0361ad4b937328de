"""snw_core imports no streamlit (except snw_core/ui.py), and the light modules import no TensorFlow/umap."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UI_MODULES = {"ui.py"}
LIGHT = ["data", "synthetic", "splits", "pairs", "presets", "metrics", "runs", "viz", "launch", "fsutil", "gallery",
         "review", "runview", "export", "inspect_view", "judge", "report", "palette", "clilog", "roles", "trash",
         "actions", "gate", "notapart", "heatmap", "augment", "imageops"]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_does_not_import_streamlit():
    offenders = [p.name for p in (ROOT / "snw_core").glob("*.py")
                 if p.name not in UI_MODULES and "streamlit" in _imports(p)]
    assert offenders == []


def test_pages_hold_no_training_code():
    for p in (ROOT / "app_pages").glob("*.py"):
        assert not ({"keras", "tensorflow", "umap", "sklearn"} & _imports(p)), p.name


def test_light_modules_do_not_pull_in_heavy_libraries():
    code = ("import sys\n" + "".join(f"import snw_core.{m}\n" for m in LIGHT) +
            "heavy = [m for m in ('tensorflow', 'keras', 'umap', 'datasets', 'streamlit', 'sklearn') if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
