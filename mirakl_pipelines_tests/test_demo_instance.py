"""The demo's Dagster instance (issue 9 §6): valid for Dagster, with the settings shipping latency depends on."""

import dagster as dg

from mirakl_pipelines.demo import write_demo_instance


def test_the_demo_instance_polls_its_queue_every_second_and_launches_and_ticks_in_threads(tmp_path):
    write_demo_instance(tmp_path)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:  # rejects a setting Dagster does not know
        coordinator = instance.run_coordinator
        assert type(coordinator).__name__ == "QueuedRunCoordinator"
        # A push run waits in the queue at most a second, and two marketplaces' runs launch side by side.
        assert coordinator.dequeue_interval_seconds == 1
        assert coordinator._dequeue_use_threads and (coordinator._dequeue_num_workers or 0) >= 2
        sensors = instance.get_settings("sensors")
        assert sensors["use_threads"] and sensors["num_submit_workers"] >= 2
