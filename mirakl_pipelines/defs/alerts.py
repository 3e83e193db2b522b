"""Alerts for operators: always to the log, and to a webhook (Slack-compatible JSON) when one is configured.

The webhook URL is a secret (it authorises posting), so it comes from the environment variable the
configuration names and is never logged.
"""

import logging
import os
from dataclasses import dataclass
from typing import Optional

import dagster as dg
import httpx

from mirakl_pipelines.config import Settings

log = logging.getLogger("mirakl_pipelines.alerts")


@dataclass
class Alerts:
    webhook_url: Optional[str] = None
    timeout_seconds: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "Alerts":
        env = settings.alerts.webhook_url_env
        return cls(webhook_url=os.environ.get(env) if env else None)

    def send(self, title: str, text: str, logger: Optional[logging.Logger] = None) -> bool:
        """Log the alert and post it to the webhook; returns whether the webhook accepted it.

        A failing webhook must never fail the sync that raised the alert: it is logged instead.
        """
        (logger or log).error("ALERT %s: %s", title, text)
        if not self.webhook_url:
            return False
        try:
            response = httpx.post(self.webhook_url, json={"text": f"*{title}*\n{text}"}, timeout=self.timeout_seconds)
            response.raise_for_status()
            return True
        except httpx.HTTPError as e:
            (logger or log).warning("alert webhook failed (%s); the alert is in the log above", type(e).__name__)
            return False


def build_run_failure_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.run_failure_sensor(name="run_failure_alerts", default_status=dg.DefaultSensorStatus.RUNNING)
    def run_failure_alerts(context: dg.RunFailureSensorContext):
        run = context.dagster_run
        partition = run.tags.get("dagster/partition", "")
        message = context.failure_event.message or "run failed"
        Alerts.from_settings(settings).send(
            f"Run failed: {run.job_name} {partition}".strip(), f"run {run.run_id}: {message}", logger=context.log
        )

    return run_failure_alerts
