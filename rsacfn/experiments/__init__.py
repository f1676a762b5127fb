"""Experiments and sweeps: warm kernels, the experiment, planning, execution, the table, statistics and launchers."""
