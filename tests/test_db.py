"""The embedded database's connection is handed out first come, first served: a request is
not starved by delivery threads that give the connection back and take it again at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from exchange.db import Database, FirstComeFirstServed, build_engine
from tests.servers import wait_until


def test_the_lock_is_granted_in_the_order_it_was_asked_for() -> None:
    lock = FirstComeFirstServed()
    assert lock.acquire(timeout=1)
    order: list[int] = []
    waiting = 0
    counted = threading.Lock()

    def ask(number: int) -> None:
        nonlocal waiting
        with counted:
            waiting += 1
        assert lock.acquire(timeout=30)
        order.append(number)
        lock.release()

    threads = []
    for number in range(8):
        thread = threading.Thread(target=ask, args=(number,))
        thread.start()
        threads.append(thread)
        # The next asks only once this one is queued.
        wait_until(lambda n=number: len(lock._waiting) == n + 1, what="queued", deadline_s=10)
    lock.release()
    for thread in threads:
        thread.join()
    assert order == list(range(8))
    assert lock.acquire(timeout=0)  # free again


def test_a_wait_that_times_out_leaves_the_queue_as_it_was() -> None:
    lock = FirstComeFirstServed()
    assert lock.acquire(timeout=1)
    assert lock.acquire(timeout=0.01) is False
    assert not lock._waiting
    lock.release()
    assert lock.acquire(timeout=0)


def test_a_request_gets_the_connection_while_a_busy_thread_keeps_taking_it(
    tmp_path: Path,
) -> None:
    """One SQLite connection; a thread that takes it, gives it back and takes it again as
    fast as it can; another thread that asks once gets it before the busy one has had it
    more than twice more."""
    engine = build_engine(f"sqlite:///{tmp_path / 'fair.db'}")
    taken = 0
    stop = threading.Event()

    def busy() -> None:
        nonlocal taken
        while not stop.is_set():
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                taken += 1

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        wait_until(lambda: taken > 100, what="the busy thread running", deadline_s=10)
        asked_at = taken
        with engine.connect() as connection:
            granted_at = taken
            connection.execute(text("SELECT 1"))
    finally:
        stop.set()
        worker.join()
        engine.dispose()
    assert granted_at - asked_at <= 2


def test_readers_do_not_wait_for_the_writer_and_cannot_write(tmp_path: Path) -> None:
    """While a transaction holds the one write connection, a reader connection answers at
    once (WAL) with what was committed before, not what is under way; and it writes
    nothing."""
    database = Database(f"sqlite:///{tmp_path / 'readers.db'}")
    try:
        with database.session() as session:
            session.execute(text("CREATE TABLE note (body TEXT)"))
            session.execute(text("INSERT INTO note VALUES ('committed')"))
        with database.session() as writing:
            writing.execute(text("INSERT INTO note VALUES ('under way')"))
            # The write connection is held (the pool's only one): a read still answers.
            with database.reading() as reading:
                seen = list(reading.execute(text("SELECT body FROM note")).scalars())
            assert seen == ["committed"]
        with database.reading() as reading:
            assert len(list(reading.execute(text("SELECT body FROM note")))) == 2
            with pytest.raises(OperationalError, match="readonly"):
                reading.execute(text("INSERT INTO note VALUES ('from a reader')"))
    finally:
        database.dispose()
