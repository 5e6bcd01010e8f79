"""A lean AMQP 0-9-1 load generator for ``bench/amqp_bench.py``.

* :mod:`amqp_load.wire`     a minimal asyncio client: handshake and RPCs through pamqp, then
                            precomputed publish frames and a length-walking frame parser that
                            counts deliveries and publisher confirms without decoding them;
* :mod:`amqp_load.workers`  the publisher, consumer and pika processes;
* :mod:`amqp_load.sysstat`  CPU accounting (/proc) and the machine description.
"""
