"""``python -m bench.stage_cpu``: each thread's CPU counted under its name, the sampler's own apart."""

from __future__ import annotations

import threading
import time

import pytest

from bench import stage_cpu


def _burn(seconds: float, burned: threading.Semaphore, done: threading.Event) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
    burned.release()
    done.wait(5)  # alive, with the GIL free, until the sampler has seen its last figure


def test_sampler_counts_each_thread_by_name_and_its_own_cpu_apart():
    with stage_cpu.StageSampler(period_s=0.005) as sampler:
        burned, done = threading.Semaphore(0), threading.Event()
        workers = [threading.Thread(target=_burn, args=(0.15, burned, done), name=f"burner_{i}") for i in range(2)]
        for w in workers:
            w.start()
        for _ in workers:
            assert burned.acquire(timeout=10)
        time.sleep(0.1)  # samples of the idle burners: their last figures
        done.set()
        for w in workers:
            w.join()
    groups = sampler.by_group()
    assert 0.28 <= groups["burner"] <= 0.45  # both threads (0.15 s each), under one name without the number
    assert "stage-sampler" not in groups
    assert sampler.own_cpu > 0  # reading /proc every few ms is work of its own, shown apart


@pytest.mark.slow
def test_command_prints_each_stage_for_the_image_size_and_model_work_asked(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MODEL_ADAPTER_HOME", str(tmp_path / "home"))  # the command sets its own; restored after
    stage_cpu.main(["--n", "48", "--repeats", "1", "--image-size", "64", "--work", "2", "--device-ms", "0"])
    out = capsys.readouterr().out
    assert "48 items of 64x64, local store, device 0.0 ms/item, work 2" in out
    rows = {line.strip().split("  ")[0]: line for line in out.splitlines() if line.startswith("  ")}
    for row in ("(process, less this sampler)", "(this sampler)", "(worker processes)", "MainThread", "(threads too short-lived to sample)"):
        assert row in rows, f"{row} missing from:\n{out}"


def test_images_too_small_for_the_bench_model_are_refused_before_any_work(capsys):
    with pytest.raises(SystemExit):
        stage_cpu.main(["--image-size", "52"])
    assert "--image-size 52" in capsys.readouterr().err
