"""JAX's 64-bit mode: off after importing plumecast, on where the reference solver runs.

The test session itself runs with 64-bit mode on (``conftest.py``), so each check runs in
a fresh Python process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax

from plumecast.numerics import enable_x64


def _python(code: str, xla_flags: str | None = None) -> str:
    """Run ``code`` in a fresh interpreter without JAX or XLA settings from the environment (``XLA_FLAGS`` set to
    ``xla_flags`` when given); its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_") and k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_plumecast_leaves_x64_off():
    out = _python("import plumecast, plumecast.cli, jax; print(jax.config.jax_enable_x64)")
    assert out.splitlines()[-1] == "False"


def test_reference_solver_switches_x64_on_and_computes_in_float64():
    out = _python(
        """
        import dataclasses

        import jax
        import numpy as np

        from plumecast.reference.transport import advance, operator_from_flow, potential_flow, simulate_scalar
        from plumecast.scenario import load_scenario_set

        ss = load_scenario_set("tiny")
        sim = dataclasses.replace(ss.simulation, horizon_s=4.0)
        grid = ss.room.discretise(sim.fine_cell_m)
        flow = potential_flow(grid)
        print(jax.config.jax_enable_x64)
        res = simulate_scalar(grid, flow, ss.scenarios[:1], sim)
        print(jax.config.jax_enable_x64, res.relative_budget_error)
        op = operator_from_flow(grid, flow, sim)
        c0 = np.where(grid.fluid, 1.0 + 1e-9 * np.arange(grid.fluid.size).reshape(grid.shape), 0.0)
        c, _ = advance(op, c0, 0.5 * 1.0 / op.max_rate, 3)
        print(c.dtype)
        """
    )
    lines = out.splitlines()[-3:]
    assert lines[0] == "False"  # nothing switched it on before the solve
    on, budget = lines[1].split()
    assert on == "True"
    assert float(budget) < 1e-12  # round-off of float64 (float32 gives about 2e-7 here)
    assert lines[2] == "float64"


def test_enable_x64_is_idempotent():
    enable_x64()
    enable_x64()
    assert jax.config.jax_enable_x64
    assert jax.numpy.zeros(1).dtype == jax.numpy.float64


def _flags_after_cli_import(xla_flags: str | None) -> str:
    """``XLA_FLAGS`` in a fresh interpreter after ``import plumecast.cli``, started with ``xla_flags`` (None: unset)."""
    return _python("import os, plumecast.cli; print(os.environ.get('XLA_FLAGS', ''))", xla_flags)


def test_the_command_asks_xla_for_reproducible_cpu_results():
    """The command line adds the flag beside a user's other flags; a user's own choice of it is kept."""
    from plumecast.numerics import REPRODUCIBLE_XLA_FLAG, reproducible_cpu

    assert _flags_after_cli_import(None) == REPRODUCIBLE_XLA_FLAG
    assert _flags_after_cli_import("--xla_dump_to=/tmp/x").split() == ["--xla_dump_to=/tmp/x", REPRODUCIBLE_XLA_FLAG]
    theirs = "--xla_cpu_enable_concurrency_optimized_scheduler=true"
    assert _flags_after_cli_import(theirs) == theirs
    saved = os.environ.get("XLA_FLAGS")
    try:
        os.environ["XLA_FLAGS"] = theirs
        assert reproducible_cpu() is False and os.environ["XLA_FLAGS"] == theirs
    finally:
        if saved is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = saved
