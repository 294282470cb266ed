#!/usr/bin/env python3
"""Run the embedded CPU tritonserver on a model repository until Ctrl-C / SIGTERM."""

import argparse
import logging
import signal
import sys
from pathlib import Path

from triton_clip.server import DEFAULT_HOME, TritonOptions, TritonProcess, install


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for readiness")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    install(DEFAULT_HOME)
    opts = TritonOptions(args.model_repository.resolve(), args.host, args.http_port, args.grpc_port, args.metrics_port)
    server = TritonProcess(opts)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    try:
        server.wait_ready(args.timeout)
        logging.info(
            "tritonserver ready: http %s:%d grpc %s:%d (pid %d)",
            args.host,
            args.http_port,
            args.host,
            args.grpc_port,
            server.pid,
        )
        return server.proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
