"""Events: ring buffers (BPF_MAP_TYPE_RINGBUF), perf buffers (BPF_MAP_TYPE_PERF_EVENT_ARRAY)
and user ring buffers. batch.py: EventBatch; poller.py: the poll loop both share; ring.py,
perf.py, user_ring.py: one buffer kind each. tinybpf.buffers re-exports the public names.

Delivery contract, shared by both:

* ``poll()``/``consume()`` call the callbacks on the polling thread and return the number of
  events delivered.
* A callback that raises, or returns a negative number, stops the poll *after* that event.
  Events not yet delivered stay queued (in the ring, or in a pending list when the C side had
  already taken them) for the next ``poll()``/``consume()``: nothing is dropped. The exception
  is re-raised unchanged by the ``poll()``/``consume()`` that ran the callback.
* ``close()`` may be called from a callback or from another thread while a poll runs: the
  poll ends (within ``_SLICE_MS``) and the buffer is freed when it returns.
* Blocking polls release the GIL and wake up at least every ``_SLICE_MS`` milliseconds, so
  Ctrl-C (KeyboardInterrupt) and ``close()`` from another thread take effect promptly.
* A poll ends by its deadline and a consume after as many records as its rings hold, also
  under a producer faster than the callbacks.
* libbpf gets a dup of each map fd, closed with the buffer: closing the object first (and
  the reuse of its fd numbers) cannot make the buffer act on another map.
"""
