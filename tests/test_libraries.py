"""Where no public API serves, rsacfn uses a library's private name through one small wrapper; each test here fails when
the library changes that name, so an upgrade says what to mend instead of failing inside a run."""
import inspect


def test_accelerate_still_keeps_one_state_per_process_that_the_wrapper_forgets():
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from rsacfn.training.precision import _fresh_accelerator_state
    Accelerator(cpu=True, mixed_precision='no')
    assert AcceleratorState._shared_state  # Accelerate keeps the precision of the first run of a process ...
    _fresh_accelerator_state()
    assert AcceleratorState._shared_state == {}  # ... until the wrapper forgets it for the next run
    assert Accelerator(cpu=True, mixed_precision='no').mixed_precision == 'no'


def test_torch_still_says_whether_the_cpu_multiplies_bfloat16():
    import torch
    from rsacfn.training.precision import cpu_bf16
    for name in ('_is_avx512_bf16_supported', '_is_amx_tile_supported'):
        assert isinstance(getattr(torch.cpu, name)(), bool), f'torch.cpu.{name} changed: mend rsacfn.training.precision.cpu_bf16'
    assert isinstance(cpu_bf16(), bool)


def test_submitit_still_writes_the_sbatch_script_the_sweep_submits(tmp_path):
    from submitit.slurm.slurm import _make_sbatch_string
    from rsacfn.experiments.launchers import SlurmOptions, slurm_parameters, slurm_script
    o = SlurmOptions(partition='gpu', time_min=30, cpus_per_run=4, account='lab')
    assert {'command', 'folder', *slurm_parameters(o, 'x')} <= set(inspect.signature(_make_sbatch_string).parameters)
    script = slurm_script(tmp_path, o).splitlines()
    assert script[0] == '#!/bin/bash'
    assert {'#SBATCH --partition=gpu', '#SBATCH --time=30', '#SBATCH --cpus-per-task=4', '#SBATCH --account=lab'} <= set(script)


def test_jupyter_client_still_launches_kernels_through_the_method_the_sweep_extends():
    from jupyter_client.manager import AsyncKernelManager
    from rsacfn.experiments.execution import _kernel_manager_class
    assert inspect.iscoroutinefunction(AsyncKernelManager._async_launch_kernel)
    assert list(inspect.signature(AsyncKernelManager._async_launch_kernel).parameters)[:2] == ['self', 'kernel_cmd']
    assert issubclass(_kernel_manager_class(), AsyncKernelManager)


def test_the_interpreter_still_runs_its_exit_functions_on_request():
    "A kernel forked from the warm process ends with `os._exit`, after what the interpreter runs at its end."
    import subprocess, sys
    code = "import atexit, os; atexit.register(print, 'ran', flush=True); atexit._run_exitfuncs(); os._exit(0)"
    assert subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60).stdout == 'ran\n'
