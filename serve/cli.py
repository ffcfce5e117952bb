"""`avsync serve`: run the websocket server on an exported model directory.

The only place the server's logging is configured: one JSON object per line on stderr, so
logs can be shipped and queried without parsing prose.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

# numpy's OpenBLAS on one thread, set before numpy loads it: the server's matrix products are
# small (a stream's sync offset search, 100 x 100 steps) and its cores belong to onnxruntime
# and the event loop; OpenBLAS's own threads spun on every product: 21 % less server CPU per
# stream second at 24 sessions without them (the numbers are the same either way).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from avsync.serve.config import ServerConfig  # noqa: E402

from avsync.runtime.precision import add_precision_argument  # noqa: E402

if TYPE_CHECKING:
    from avsync.runtime import StreamConfig


class JsonFormatter(logging.Formatter):
    """A log record → one JSON line; a message that already is JSON is merged in."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": round(record.created, 3), "level": record.levelname.lower(),
            "logger": record.name}
        message = record.getMessage()
        try:
            parsed = json.loads(message)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            entry.update(parsed)
        else:
            entry["message"] = message
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.Formatter.converter = time.gmtime


def build_parser() -> argparse.ArgumentParser:
    defaults = ServerConfig()
    parser = argparse.ArgumentParser(
        prog="avsync serve",
        description="Serve streaming audio-visual speech recognition, active-speaker detection "
                    "and AV sync over websockets (protocol v1, docs/protocol.md): "
                    "ws://HOST:PORT/v1/stream, GET /healthz, GET /metrics, GET / (browser page).",
        epilog="examples:\n"
               "  avsync serve --model models/avsync-tiny-grid --port 8765\n"
               "  avsync serve --model models/avsync-tiny-grid --precision int8 --threads 2\n"
               "  avsync serve --model models/avsync-tiny-grid --host 0.0.0.0 --token s3cret \\\n"
               "      --allowed-origins https://example.org --max-sessions 16\n"
               "  avsync stream clip.mp4 --url ws://127.0.0.1:8765/v1/stream   # a client\n\n"
               "SIGTERM drains: new sessions get HTTP 503, open ones get their finals and "
               "'done', then the process exits.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True,
                        help="exported model directory (avsync export)")
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port, help="0 = any free port")
    parser.add_argument("--max-sessions", type=int, default=defaults.max_sessions)
    parser.add_argument("--max-message-bytes", type=int, default=defaults.max_message_bytes)
    parser.add_argument("--idle-timeout", type=float, default=defaults.idle_timeout_s,
                        help="seconds without a message before a session is ended")
    parser.add_argument("--max-session", type=float, default=defaults.max_session_s,
                        help="longest session in seconds")
    parser.add_argument("--token", default=None,
                        help="require this token (Authorization: Bearer or ?token=)")
    parser.add_argument("--allowed-origins", "--allowed-origin", dest="allowed_origins",
                        action="append", default=[], metavar="ORIGINS",
                        help="web origins whose pages may open sessions (comma-separated or "
                             "repeated; '*' = any). Always allowed: clients without an Origin "
                             "header and the server's own page")
    parser.add_argument("--start-timeout", type=float, default=defaults.start_timeout_s,
                        help="seconds from the upgrade to `start` before the socket is closed")
    parser.add_argument("--threads", type=int, default=defaults.inference_threads,
                        help="inference threads (batches running at once)")
    parser.add_argument("--onnx-threads", type=int, default=1,
                        help="onnxruntime intra-op threads per graph and batch")
    add_precision_argument(parser)
    parser.add_argument("--trailing-blank-ms", type=int, default=None,
                        help="silence that ends a segment (default: the runtime's endpointing)")
    parser.add_argument("--max-segment-ms", type=int, default=None,
                        help="longest segment before a final is forced (default: the runtime's)")
    parser.add_argument("--no-second-pass", action="store_true",
                        help="finals from the streaming pass alone (default: each segment is "
                             "re-read whole at its end, far more accurate, one model run more)")
    parser.add_argument("--lips-from", type=float, default=None, metavar="P",
                        help="re-read a segment from the audio alone when its lips' mean "
                             "P(speaking) is below P: lips that are not the voice's (a dub, a "
                             "listener) never cost words (default: the runtime's, 0.05; 0: "
                             "always read the lips)")
    parser.add_argument("--media-threads", type=int, default=defaults.media_threads)
    parser.add_argument("--batch-max", type=int, default=defaults.batch_max)
    parser.add_argument("--batch-wait-ms", type=float, default=defaults.batch_wait_ms)
    parser.add_argument("--drain-timeout", type=float, default=defaults.drain_timeout_s)
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    return parser


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    values = dict(
        host=args.host, port=args.port, max_sessions=args.max_sessions,
        max_message_bytes=args.max_message_bytes, idle_timeout_s=args.idle_timeout,
        max_session_s=args.max_session, token=args.token,
        allowed_origins=tuple(o.strip() for arg in args.allowed_origins
                              for o in arg.split(",") if o.strip()),
        start_timeout_s=args.start_timeout,
        inference_threads=args.threads, media_threads=args.media_threads,
        batch_max=args.batch_max, batch_wait_ms=args.batch_wait_ms,
        drain_timeout_s=args.drain_timeout)
    assert set(values) <= {f.name for f in fields(ServerConfig)}
    return ServerConfig(**values)


def engine_config_from_args(args: argparse.Namespace) -> StreamConfig:
    from avsync.runtime import EndpointConfig, RecognizerConfig, StreamConfig

    given = {"trailing_blank_ms": args.trailing_blank_ms, "max_segment_ms": args.max_segment_ms}
    endpoint = EndpointConfig(**{k: v for k, v in given.items() if v is not None})
    recognizer = RecognizerConfig(endpoint=endpoint, second_pass=not args.no_second_pass)
    if args.lips_from is not None:
        recognizer = replace(recognizer, lips_from=args.lips_from or None)
    return StreamConfig(recognizer=recognizer)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    configure_logging(args.log_level)
    from avsync.serve.engine import load_engine
    from avsync.serve.server import run_server

    engine = load_engine(args.model, threads=args.onnx_threads, precision=args.precision,
                         config=engine_config_from_args(args))
    asyncio.run(run_server(engine, config))
    return 0
