"""`runner.threads: auto`: the thread count is measured before each LLM trial, and a fixed count is validated."""

import pytest
import torch
from pydantic import ValidationError

from bakeoff.config import RunnerSpec
from bakeoff.efficiency import threads as threads_module
from bakeoff.efficiency.threads import choose_threads, probe_threads


def test_probe_times_one_and_all_threads_and_leaves_torch_at_the_faster(monkeypatch):
    before = torch.get_num_threads()
    try:
        best, probe_ms = probe_threads(2)
        assert set(probe_ms) == {1, 2} and all(ms > 0 for ms in probe_ms.values())
        assert best == torch.get_num_threads()
        if best == 1:
            assert probe_ms[1] * threads_module.FEWER_THREADS_MARGIN < probe_ms[2], "1 thread only if clearly faster"

        # A busy core makes every op on 2 threads wait: the probe must then pick 1.
        real = threads_module._decoder_like_ops

        def contended(*args, **kwargs):
            if torch.get_num_threads() > 1:
                import time

                time.sleep(0.05)
            return real(*args, **kwargs)

        monkeypatch.setattr(threads_module, "_decoder_like_ops", contended)
        assert probe_threads(2)[0] == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_fewer_threads_only_when_clearly_faster():
    assert choose_threads({1: 90.0, 2: 100.0}, 2) == 2  # within noise: all threads (an idle machine's choice)
    assert choose_threads({1: 60.0, 2: 600.0}, 2) == 1  # a busy core: 10x
    assert choose_threads({1: 50.0, 2: 30.0, 4: 45.0}, 4) == 2
    assert choose_threads({1: 50.0, 2: 40.0, 4: 45.0}, 4) == 4


def test_threads_setting_is_auto_or_a_positive_count():
    assert RunnerSpec().threads == "auto"
    assert RunnerSpec(threads=2).threads == 2
    with pytest.raises(ValidationError, match="runner.threads"):
        RunnerSpec(threads=0)
