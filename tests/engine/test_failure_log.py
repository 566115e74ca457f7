"""The one rate limit of failure logging (``FailureLog``), and the writer's use of it."""

import logging

from segmint.engine.failure_log import FailureLog


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_key_is_logged_once_per_interval_with_what_was_counted_meanwhile():
    clock = Clock()
    failures = FailureLog(interval=60.0, timer=clock)
    assert failures.allow("queue full", 5) == 0          # first time: log it
    assert failures.allow("queue full", 3) is None       # within the minute: counted only
    assert failures.allow("write") == 0                  # another key has its own limit
    assert failures.allow("queue full", 2) is None
    clock.now = 61.0
    assert failures.allow("queue full", 1) == 5          # 3 + 2 counted since the last line
    assert failures.counts() == {"queue full": 11, "write": 1}


def test_report_logs_the_message_with_the_suppressed_count(caplog):
    clock = Clock()
    failures = FailureLog(interval=60.0, timer=clock)
    logger = logging.getLogger("segmint.test")
    with caplog.at_level(logging.ERROR, logger="segmint.test"):
        for _ in range(4):
            failures.report(logger, "p in hook (ValueError)", "p failed")
        clock.now = 60.0
        failures.report(logger, "p in hook (ValueError)", "p failed")
    assert [r.getMessage() for r in caplog.records] == ["p failed", "p failed (3 more since last logged)"]

