"""lab/telemetry/retry.py: what a collector outage would cost is held, sent late in order, or counted as lost."""

from lab.telemetry.retry import BUFFER_SECONDS, Backlog, CollectorProbe, RetryBuffers


class Collector:
    """A delivery target that is down until told otherwise; records what it received, in order."""

    def __init__(self, up: bool = False):
        self.up, self.received, self.attempts = up, [], 0

    def __call__(self, batch) -> bool:
        self.attempts += 1
        if self.up:
            self.received.append(batch)
        return self.up


def test_an_outage_is_sent_late_in_order_once_the_collector_is_back():
    b, c = Backlog(limit=10), Collector()
    assert b.send("t0", 1, c) is False and b.send("t1", 1, c) is False and b.send("t2", 1, c) is False
    assert b.held == 3 and c.received == []
    assert c.attempts == 3  # one try per export while down, not one per held batch
    c.up = True
    assert b.send("t3", 1, c) is True
    assert c.received == ["t0", "t1", "t2", "t3"] and b.held == 0
    assert (b.stats.late, b.stats.dropped, b.stats.peak) == (3, 0, 3)


def test_an_overflowing_backlog_drops_the_oldest_and_counts_them():
    b, c = Backlog(limit=5), Collector()
    for i in range(4):
        b.send([f"s{i}a", f"s{i}b"], 2, c)  # batches of 2 items
    assert b.held == 4 and b.stats.dropped == 4  # kept the newest two batches
    c.up = True
    b.send(["s4a"], 1, c)
    assert c.received == [["s2a", "s2b"], ["s3a", "s3b"], ["s4a"]]
    assert b.stats.late == 4


def test_what_is_held_when_the_run_ends_is_lost_and_counted():
    b, c = Backlog(limit=10), Collector()
    b.send("m0", 1, c)
    b.send("m1", 1, c)
    b.abandon()
    assert b.held == 0 and b.stats.dropped == 2 and b.stats.late == 0


def test_without_a_collector_yet_nothing_is_tried_and_the_probe_asks_once_per_interval():
    answers = []

    def reachable():
        answers.append(1)
        return len(answers) >= 3

    probe = CollectorProbe(reachable, every_s=0.0)
    b, c = Backlog(limit=10, probe=probe), Collector(up=True)
    b.send("w0", 1, c)
    b.send("w1", 1, c)
    assert c.attempts == 0 and probe.appeared_at is None and len(answers) == 2
    assert b.send("w2", 1, c) is True  # the third probe answers: the backlog goes first
    assert c.received == ["w0", "w1", "w2"] and b.stats.late == 2

    slow = CollectorProbe(lambda: answers.append(1) or False, every_s=3600)
    before = len(answers)
    assert not slow.ready() and not slow.ready() and len(answers) == before + 1


def test_the_metric_backlog_holds_the_buffer_seconds_at_the_export_interval():
    bufs = RetryBuffers(interval_ms=5000)
    assert bufs.backlogs["metric exports"].limit == BUFFER_SECONDS // 5
    assert RetryBuffers(interval_ms=7000).backlogs["metric exports"].limit == -(-BUFFER_SECONDS // 7)
