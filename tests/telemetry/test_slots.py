"""lab/telemetry/slots.py: concurrent runs get distinct instance ids; a slot frees when its run ends."""

import subprocess
import sys
import time

from lab.telemetry.slots import InstanceSlot


def test_concurrent_runs_get_distinct_instances_and_a_freed_slot_is_reused(tmp_path):
    first = InstanceSlot("host:overfit:fault", tmp_path)
    second = InstanceSlot("host:overfit:fault", tmp_path)
    other = InstanceSlot("host:overfit:fix", tmp_path)
    assert (first.instance_id, second.instance_id, other.instance_id) == \
        ("host:overfit:fault", "host:overfit:fault:2", "host:overfit:fix")
    first.release()
    with InstanceSlot("host:overfit:fault", tmp_path) as again:  # back-to-back runs continue the same series
        assert again.instance_id == "host:overfit:fault"
    second.release()
    other.release()


def test_a_slot_is_held_by_another_process_and_freed_when_it_dies(tmp_path):
    code = ("import sys, time; from pathlib import Path; from lab.telemetry.slots import InstanceSlot; "
            f"s = InstanceSlot('h:drift:fault', Path({str(tmp_path)!r})); print(s.instance_id, flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "h:drift:fault"
        with InstanceSlot("h:drift:fault", tmp_path) as mine:
            assert mine.instance_id == "h:drift:fault:2"
    finally:
        holder.kill()  # no clean-up runs: the kernel drops the lock
        holder.wait()
    deadline = time.time() + 5
    while time.time() < deadline:
        with InstanceSlot("h:drift:fault", tmp_path) as mine:
            if mine.instance_id == "h:drift:fault":
                break
    assert mine.instance_id == "h:drift:fault"


def test_an_unusable_directory_still_gives_a_distinct_instance(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    s = InstanceSlot("h:healthy:fault", blocked)
    assert s.instance_id.startswith("h:healthy:fault:pid")


def test_lab_slots_dir_gives_runs_of_a_private_stack_their_own_slots(tmp_path, monkeypatch):
    # make test's workers each run their own stack: a worker's run must not be pushed to `:2`
    # by another worker's run of the same scenario
    elsewhere = InstanceSlot("host:healthy:fault", tmp_path / "other")
    (tmp_path / "mine").mkdir()
    monkeypatch.setenv("LAB_SLOTS_DIR", str(tmp_path / "mine"))
    with InstanceSlot("host:healthy:fault") as mine:
        assert mine.instance_id == "host:healthy:fault"
        assert list((tmp_path / "mine").glob("*.lock"))
    elsewhere.release()
