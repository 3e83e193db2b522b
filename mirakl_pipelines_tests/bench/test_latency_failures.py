"""The latency-through-failures benchmark's own parts: duplicate counting and finding a run worker to kill."""

import multiprocessing
import os
import threading
import time

from mirakl_pipelines.bench.latency import _descendants, _duplicates, _running_run_worker


def test_duplicates_count_every_extra_shopify_order_of_one_mirakl_order():
    orders = [{"sourceIdentifier": "a:1"}, {"sourceIdentifier": "a:1"}, {"sourceIdentifier": "a:1"},
              {"sourceIdentifier": "b:2"}, {"sourceIdentifier": None}, {}]
    assert _duplicates(orders) == 2
    assert _duplicates([]) == 0


def test_a_run_worker_is_a_spawned_child_old_enough_and_only_ours():
    stop = threading.Event()
    assert _running_run_worker(os.getpid(), stop, timeout=0.2) is None  # none yet
    worker = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(30,))
    worker.start()
    try:
        assert worker.pid in _descendants(os.getpid())
        assert _running_run_worker(os.getpid(), stop, timeout=0.2, min_age_s=60) is None  # too young: not mid-run
        assert _running_run_worker(os.getpid(), stop, timeout=5, min_age_s=0.5) == worker.pid
        assert _running_run_worker(worker.pid, stop, timeout=0.2, min_age_s=0.5) is None  # only below the root
    finally:
        worker.kill()
        worker.join()
