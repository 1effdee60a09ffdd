"""Inference on many chunks at once: single-threaded ONNX Runtime sessions, one per
core, while the next chunk is read and finished ones are written."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor, wait

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from storecast.database.pgbinary import Column
from storecast.training.data import Frame
from storecast.training.export import onnx_inputs, run_session
from storecast.training.spec import ModelSpec

#: Chunks scored at once, each by a single-threaded ONNX Runtime inference.
SCORING_THREADS = max(1, os.cpu_count() or 1)


def predict(session: ort.InferenceSession, spec: ModelSpec, frame: Frame) -> npt.NDArray[np.float64]:
    """Run one model on a chunk: the positive-class probability or the (clipped) prediction."""
    feed = onnx_inputs(frame.features, list(spec.features.numeric), list(spec.features.categorical))
    return spec.finalise(run_session(session, spec.task, feed))


def inference_session(onnx: bytes) -> ort.InferenceSession:
    """A single-threaded ONNX Runtime session for batch scoring.

    Scoring runs :data:`SCORING_THREADS` single-threaded inferences at once, one chunk
    each, rather than one inference spread over every core: chunks need no
    coordination, so no core waits on another, and the reading and writing threads
    take CPU from one inference without stalling the others.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])


def pipelined(
    frames: Generator[Frame],
    columns_for: Callable[[Frame], list[Column]],
    write: Callable[[list[Column]], int],
) -> int:
    """Score chunks on :data:`SCORING_THREADS` threads while the next is read and the
    finished ones are written; returns the rows.

    At most ``SCORING_THREADS + 2`` chunks are in memory at once. Writes happen one at
    a time (they share the writing connection), in whatever order chunks finish.
    """
    total = 0
    with ThreadPoolExecutor(SCORING_THREADS + 2, thread_name_prefix="storecast-score") as pool:
        reading: Future[Frame | None] = pool.submit(next, frames, None)
        scoring: deque[Future[list[Column]]] = deque()
        writing: Future[int] | None = None

        def write_next() -> None:
            nonlocal writing
            columns = scoring.popleft().result()
            if writing is not None:
                writing.result()
            writing = pool.submit(write, columns)

        try:
            while (frame := reading.result()) is not None:
                reading = pool.submit(next, frames, None)
                scoring.append(pool.submit(columns_for, frame))
                total += len(frame)
                if len(scoring) == SCORING_THREADS:
                    write_next()
            while scoring:
                write_next()
            if writing is not None:
                writing.result()
        finally:
            # After a failure: let a read in progress finish, then close the COPY it was reading.
            if not reading.cancel():
                wait([reading])
            frames.close()
    return total
