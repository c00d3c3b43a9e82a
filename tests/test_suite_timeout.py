"""The suite's per-test time limit (pytest-timeout, pytest.ini): a hanging test fails alone, with a
stack trace, and the rest of the run goes on."""
import subprocess
import sys

from helpers import run_bounded

HANGING = '''
import time


def test_hangs():
    time.sleep(600)


def test_after_the_hang():
    assert True
'''


def test_the_suite_has_a_per_test_limit(pytestconfig):
    assert pytestconfig.getini("timeout_method") == "signal"  # fails the test, not the whole run
    assert 60 <= float(pytestconfig.getini("timeout")) <= 600


def test_a_hanging_test_fails_alone_with_its_stack(tmp_path):
    (tmp_path / "test_hang.py").write_text(HANGING)
    (tmp_path / "pytest.ini").write_text("[pytest]\ntimeout = 2\ntimeout_method = signal\n")
    res = run_bounded([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_hang.py"],
                      timeout=120, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert res.returncode == 1, res.stdout
    assert "Timeout (>2.0s)" in res.stdout and "time.sleep(600)" in res.stdout, res.stdout
    assert "1 failed, 1 passed" in res.stdout, res.stdout
