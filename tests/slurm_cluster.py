"""A one-node SLURM cluster on the test machine: munged, slurmctld and slurmd started by hand in a folder of their own.

Debian's `slurm-wlm` and `munge` (`.ci/run` installs them where it runs as root with apt). Node and controller on
127.0.0.1 on free ports, no cgroups, no accounting; state, logs and sockets under a fresh folder in /tmp (munge's socket
path must fit in 108 bytes). Only the daemons started here are stopped, by their process ids.
"""
import contextlib, os, shutil, signal, socket, subprocess, tempfile, time
from pathlib import Path

DAEMONS = ('mungekey', 'munged', 'slurmctld', 'slurmd')
CLIENTS = ('sbatch', 'squeue', 'scancel', 'sinfo')
SBIN = os.pathsep.join([os.environ.get('PATH', ''), '/usr/sbin', '/sbin'])  # the daemons live in sbin


def unavailable() -> str | None:
    "Why no cluster can be started here (for the skip), or None."
    gone = [b for b in DAEMONS + CLIENTS if shutil.which(b, path=SBIN) is None]
    if gone: return f"{', '.join(gone)} not installed (Debian: apt-get install slurm-wlm munge; .ci/run does it as root)"
    if os.geteuid() != 0: return 'slurmd starts jobs as root: run the tests as root'
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


CONF = '''ClusterName=rsacfn-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge.socket
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=5
NodeName=rsacfn-node NodeAddr=127.0.0.1 NodeHostname={host} CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=rsacfn-node Default=YES MaxTime=INFINITE State=UP
'''


def _tail(folder: Path) -> str:
    return '\n'.join(f'{p.name}: ' + ' | '.join(p.read_text(errors='replace').splitlines()[-5:])
                     for p in sorted(folder.glob('*.log')))


@contextlib.contextmanager
def one_node_cluster(cpus: int = 2, wait_s: float = 60):
    "Start the cluster; yield the environment its clients (sbatch, squeue, scancel, rsacfn) need; stop it."
    folder = Path(tempfile.mkdtemp(prefix='slurm', dir='/tmp'))
    folder.chmod(0o755)  # munged wants every folder above its socket searchable
    for sub in ('state', 'spool'): (folder/sub).mkdir()
    conf = folder/'slurm.conf'
    conf.write_text(CONF.format(folder=folder, ctld_port=_free_port(), d_port=_free_port(), host=socket.gethostname(),
                                cpus=cpus))
    env = dict(os.environ, SLURM_CONF=str(conf))
    exe = {b: shutil.which(b, path=SBIN) for b in DAEMONS + CLIENTS}
    started = []
    try:
        subprocess.run([exe['mungekey'], '--create', f'--keyfile={folder}/munge.key'], check=True, capture_output=True)
        for cmd in ([exe['munged'], '--foreground', f'--socket={folder}/munge.socket', f'--key-file={folder}/munge.key',
                     f'--pid-file={folder}/munged.pid', f'--log-file={folder}/munged.log', f'--seed-file={folder}/munged.seed'],
                    [exe['slurmctld'], '-D', '-f', str(conf)],
                    [exe['slurmd'], '-D', '-f', str(conf), '-N', 'rsacfn-node']):
            started.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(0.5)
        deadline = time.time() + wait_s
        while True:
            state = subprocess.run([exe['sinfo'], '--noheader', '--format=%T'], env=env, capture_output=True, text=True)
            if state.stdout.strip() == 'idle': break
            ended = [p.args[0] for p in started if p.poll() is not None]
            if ended or time.time() > deadline:
                raise RuntimeError(f'the one-node cluster did not start ({", ".join(ended) or "timeout"} ended; node '
                                   f'{state.stdout.strip() or state.stderr.strip()}): {_tail(folder)}')
            time.sleep(0.5)
        yield env
    finally:
        if len(started) == 3:  # the jobs first, so that no slurmstepd outlives its slurmd
            subprocess.run([exe['scancel'], '--full', f'--user={os.getuid()}'], env=env, capture_output=True)
            deadline = time.time() + 30
            while time.time() < deadline and subprocess.run([exe['squeue'], '--noheader'], env=env, capture_output=True,
                                                            text=True).stdout.strip():
                time.sleep(0.5)
        for p in reversed(started):
            p.send_signal(signal.SIGTERM)
            try: p.wait(15)
            except subprocess.TimeoutExpired: p.kill(); p.wait()
        shutil.rmtree(folder, ignore_errors=True)
