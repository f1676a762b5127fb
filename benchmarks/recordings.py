"""Long recordings in bounded memory: an hour of 16 kHz audio through `EmotionRecognizer.timeline`, read a piece at a time.

    python benchmarks/recordings.py                  # 10 and 60 minutes: windows, subtitles, voice activity detection
    python benchmarks/recordings.py --minutes 10,30  # other lengths

Each case runs in a fresh process on a recording written to a temporary folder (16-bit PCM, 16 kHz; a synthetic voice
and pauses: what it sounds like does not matter here) with tiny random backbones:

- **windows**: a speech-only model, `segments='windows'` (2 s windows, what the model hears);
- **subtitles**: early fusion with an SRT of one 4 s cue every 5 s (each cue heard whole as two pieces);
- **vad**: silero-vad scanning the whole recording a minute at a time (`rsacfn.recordings.speech_segments`; the
  synthetic voice is not speech to it, so it scans and finds none: the cost of the scan is what is measured).

The table gives the process' resident memory once the model is loaded, its peak during the timeline (`ru_maxrss`), the
growth between the two, and what the recording would take held whole as float32; the row `batch` is one batch of
16 clips of 2 s predicted the same way (what predicting costs whatever the audio: the runtime's buffers and one batch's
activations). Targets: at 60 minutes the growth beyond one batch's is under a quarter of the recording held whole, and the growth changes by less
than 50 MB from 10 to 60 minutes (memory bounded by the pieces, not the length).
"""
import argparse, json, os, platform, resource, subprocess, sys, tempfile, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TQDM_DISABLE', '1')

CASES = ('windows', 'subtitles', 'vad')  # and 'batch': one batch of 16 clips of 2 s, what predicting costs whatever the audio


def rss_mb() -> float:
    "This process' resident memory now."
    import psutil
    return psutil.Process().memory_info().rss / 2**20


def write_recording(path: Path, minutes: float):
    "A synthetic talk: 4 s of voice, 1 s of pause, over and over, written a minute at a time (never whole in memory)."
    import numpy as np, soundfile as sf
    from rsacfn.data.demo import _speaker_voice, _synth_voice
    rng, sr = np.random.default_rng(0), 16_000
    voice = _speaker_voice(rng, 'F')
    minute = np.concatenate([np.r_[_synth_voice(rng, 4 * sr, sr, voice, 'neutral'), np.zeros(sr)] for _ in range(12)])
    with sf.SoundFile(str(path), 'w', sr, 1, 'PCM_16') as f:
        for _ in range(int(minutes)): f.write(minute.astype(np.float32))
    srt = path.with_suffix('.srt')
    def stamp(s): return f'{int(s // 3600):02d}:{int(s % 3600 // 60):02d}:{int(s % 60):02d},000'
    srt.write_text(''.join(f'{i + 1}\n{stamp(5 * i)} --> {stamp(5 * i + 4)}\n말 {i}\n\n' for i in range(int(minutes) * 12)),
                   encoding='utf-8')


def one(case: str, minutes: float) -> dict:
    "One case in this process: the recording written, the model loaded, then the timeline measured."
    import numpy as np
    from rsacfn.models.multimodal import MultiModel
    from rsacfn.models.tiny import tiny_backbones
    from rsacfn.recognizer import EmotionRecognizer
    import rsacfn.recordings as recordings
    d = Path(tempfile.mkdtemp())
    write_recording(d/'talk.wav', minutes)
    bb = tiny_backbones(pretrain_clips=0, progress=False)
    method = 'early_fusion' if case == 'subtitles' else 'speech_only'
    model = MultiModel.from_backbones(method, bb['audio'], bb['text'] if method != 'speech_only' else None,
                                      audio_max_lens=32_000, text_max_lens=64)
    rec = EmotionRecognizer(model, 'cpu', batch_size=16)
    import torch; torch.set_num_threads(os.cpu_count())
    base, t = rss_mb(), time.perf_counter()
    if case == 'batch': rows = len(rec([np.random.default_rng(i).uniform(-.3, .3, 32_000) for i in range(16)], sampling_rate=16_000))
    elif case == 'vad': rows = len(recordings.speech_segments(recordings.open_recording(d/'talk.wav')))
    else: rows = len(rec.timeline(d/'talk.wav', 'windows' if case == 'windows' else d/'talk.srt'))
    return dict(case=case, minutes=minutes, rows=rows, seconds=time.perf_counter() - t, base_mb=base,
                peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--minutes', default='10,60')
    p.add_argument('--one', nargs=2, metavar=('CASE', 'MINUTES'), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one: print(json.dumps(one(a.one[0], float(a.one[1])))); return
    import torch
    print(f'$ python benchmarks/recordings.py --minutes {a.minutes}')
    print(f'machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; {time.strftime("%Y-%m-%d")}\n')
    rows = []
    for case, minutes in [('batch', [1.0])] + [(c, [float(x) for x in a.minutes.split(',')]) for c in CASES]:
        for m in minutes:
            r = subprocess.run([sys.executable, __file__, '--one', case, str(m)], capture_output=True, text=True)
            if r.returncode: sys.exit(f'{case} {m}: {r.stderr[-2000:]}')
            rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
    print('| case | minutes | segments | wall (s) | s per hour of audio | RSS with the model (MB) | peak RSS (MB) | growth (MB) '
          '| the recording whole as float32 (MB) |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|---:|')
    for r in rows:
        whole = r['minutes'] * 60 * 16_000 * 4 / 2**20
        print(f"| {r['case']} | {r['minutes'] if r['case'] != 'batch' else 2 / 60:.3g} | {r['rows']} | {r['seconds']:.1f} | {r['seconds'] * 60 / r['minutes']:.0f} "
              f"| {r['base_mb']:.0f} | {r['peak_mb']:.0f} | {r['peak_mb'] - r['base_mb']:.0f} | {whole:.0f} |")
    print('\n| target | case | measured | |')
    print('|---|---|---|---|')
    batch = next(r['peak_mb'] - r['base_mb'] for r in rows if r['case'] == 'batch')
    timed = [r for r in rows if r['case'] != 'batch']
    longest, shortest = max(r['minutes'] for r in timed), min(r['minutes'] for r in timed)
    for case in CASES:
        by = {r['minutes']: r for r in timed if r['case'] == case}
        grow = {m: r['peak_mb'] - r['base_mb'] for m, r in by.items()}
        whole, more = longest * 60 * 16_000 * 4 / 2**20, grow[longest] - batch
        print(f"| growth at {longest:g} min beyond one batch's ({batch:.0f} MB) < 1/4 of the recording whole ({whole / 4:.0f} MB) "
              f"| {case} | {more:+.0f} MB | {'met' if more < whole / 4 else 'NOT met'} |")
        if shortest != longest:
            d = grow[longest] - grow[shortest]
            print(f"| growth from {shortest:g} to {longest:g} min < 50 MB | {case} | {d:+.0f} MB | {'met' if d < 50 else 'NOT met'} |")


if __name__ == '__main__':
    main()
