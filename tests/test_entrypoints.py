"""The package's entry points: `python -m lmech` and `--version`."""
def test_python_dash_m_and_version():
    import subprocess
    import sys

    import lmech

    out = subprocess.run([sys.executable, "-m", "lmech", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"lmech {lmech.__version__}"
