"""Stop requests: signals, the STOP file, agreement over ranks, a second Ctrl-C."""
import os
import signal
import threading
import time

import pytest

from training.stop import STOP_FILE, StopRequest


def test_a_first_ctrl_c_asks_to_stop_and_a_second_interrupts_at_once(tmp_path):
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with StopRequest(tmp_path) as request:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)  # the handler runs here; it only records the request
            assert request.local() == "SIGINT"
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
    assert signal.getsignal(signal.SIGINT) is before


def test_the_stop_file_is_a_request_until_consumed_and_any_rank_stops_every_rank(tmp_path):
    request = StopRequest(tmp_path)
    alone = lambda x: x  # noqa: E731  one rank: the sum is its own flag
    assert request.agreed(alone) is None
    assert request.agreed(lambda x: x + 1.0) == "another rank's request"
    (tmp_path / STOP_FILE).touch()
    assert request.agreed(alone) == "STOP file"
    request.consume()
    assert not (tmp_path / STOP_FILE).exists()


def test_outside_the_main_thread_no_handler_is_set_and_the_file_still_works(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def train():
        with StopRequest(tmp_path) as request:
            seen.append(signal.getsignal(signal.SIGTERM) is before)
            (tmp_path / STOP_FILE).touch()
            seen.append(request.local())

    worker = threading.Thread(target=train)
    worker.start()
    worker.join()
    assert seen == [True, "STOP file"]
