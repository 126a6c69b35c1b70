import json
import threading
import time

import pytest

from cityseg.components.push import lock as lock_module
from cityseg.components.push import registry
from cityseg.components.push.lock import LOCK_TAG, AliasLock, LockLostError


def test_alias_lock_admits_one_holder_at_a_time(model_name):
    registry.ensure_registered_model(model_name)
    inside, overlaps, entries = [0], [], []

    start = threading.Barrier(4)

    def worker():
        # Released together, the workers also race to create the tag, which the store refuses to all
        # but one writer: losing that race must mean waiting, not crashing.
        start.wait()
        for _ in range(2):
            with AliasLock(model_name):
                inside[0] += 1
                overlaps.append(inside[0])
                time.sleep(0.3)
                inside[0] -= 1
                entries.append(1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(entries) == 8 and max(overlaps) == 1


def test_expired_lock_is_taken_over_and_a_lost_lock_is_detected(model_name):
    registry.ensure_registered_model(model_name)
    client = lock_module._client()
    stale = {"owner": "crashed-pod", "nonce": "x", "expires": time.time() - 1}
    client.set_registered_model_tag(model_name, LOCK_TAG, json.dumps(stale))
    lock = AliasLock(model_name, timeout_s=20)
    lock.acquire()
    lock.check()
    client.set_registered_model_tag(model_name, LOCK_TAG, json.dumps({**stale, "expires": time.time() + 60}))
    with pytest.raises(LockLostError):
        lock.check()
    lock.release()
    assert registry.get_registered_model(model_name).tags[LOCK_TAG]  # not ours: left alone
