"""pytest setup for the Python-side tests (`make test-python`).

* builds ./run and ./tokenizer if they are missing, and compiles
  tests/python/dump_logits.c against this checkout's run.c, once per session;
* prints the max |delta| of every comparison at the end (the report's figures);
* fails the session when no test passed: a run that collected nothing, or
  skipped everything, must not look green.
"""
import os
import subprocess

import pytest

import lamptest


@pytest.fixture(scope="session", autouse=True)
def programs(tmp_path_factory):
    import torch
    torch.set_num_threads(1)  # the models are tiny; threads only fight over the cores
    root = lamptest.ROOT
    if not (os.path.exists(lamptest.BIN["run"]) and os.path.exists(lamptest.BIN["tokenizer"])):
        subprocess.run(["make", "-s", "-C", root, "all"], check=True)
    out = str(tmp_path_factory.mktemp("bin") / "dump_logits")
    cc = os.environ.get("CC", "cc")
    # the Makefile's optimization flags (so the same SIMD kernels and FMA contraction
    # as ./run), without OpenMP: one thread, so the sums are in one fixed order
    subprocess.run([cc, "-std=c11", "-O3", "-march=native", "-ffp-contract=fast",
                    "-I", root, "-o", out,
                    os.path.join(root, "tests", "python", "dump_logits.c"),
                    os.path.join(root, "tokenizer.c"), "-lm"], check=True)
    lamptest.BIN["dump_logits"] = out
    return lamptest.BIN


def pytest_terminal_summary(terminalreporter):
    if lamptest.MEASURED:
        terminalreporter.section("max |delta| measured")
        for what, delta in lamptest.MEASURED:
            terminalreporter.write_line(f"{delta:10.3g}  {what}")


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    passed = len(reporter.stats.get("passed", [])) if reporter else 0
    if exitstatus == 0 and passed == 0:
        if reporter:
            reporter.write_line("no test passed (none collected, or all skipped): failing",
                                red=True)
        session.exitstatus = 1
