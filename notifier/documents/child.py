"""Extraction in a child process with a time and a memory limit: one hostile or broken file (a decompression bomb,
a parser stuck in a loop, a crash in PDFium's C code) costs one child, never the worker.

The child is `python -m notifier.documents.child`: it reads the document on standard input, sets its limits, runs
`notifier.documents.extract.extract` and writes one JSON object. A child killed by the kernel or by the timeout
becomes a clean `ExtractionError`, and a cancelled call kills its child.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import resource
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any, get_args

from notifier.documents.extract import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_CHARS,
    DEFAULT_MAX_PAGES,
    DEFAULT_MEMORY_BYTES,
    DEFAULT_TIMEOUT,
    ERRORS_BY_REASON,
    CorruptDocument,
    EmptyInput,
    ExtractedText,
    ExtractionError,
    Kind,
    OutOfMemory,
    TimedOut,
    TooLarge,
    extract,
)

# --- in a child process --------------------------------------------------------------------------------------------

_CHILD_MODULE = "notifier.documents.child"
# What a child killed by a signal most likely ran into: SIGXCPU is the CPU-time backstop; SIGKILL (the kernel's
# out-of-memory killer) and SIGABRT (PDFium's allocator, refused memory at the address-space limit) are memory.
_SIGNAL_ERRORS: dict[int, type[ExtractionError]] = {
    signal.SIGXCPU: TimedOut,
    signal.SIGKILL: OutOfMemory,
    signal.SIGABRT: OutOfMemory,
}
_STDERR_TAIL = 500
_CHILD_VARIABLES = re.compile(r"PATH|LANG|LC_\w+|TZ|TMPDIR|VIRTUAL_ENV|PYTHON(?:PATH|HOME|IOENCODING|UTF8)")


async def extract_in_subprocess(
    data: bytes,
    *,
    content_type: str | None = None,
    filename: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
    max_pages: int = DEFAULT_MAX_PAGES,
    max_chars: int = DEFAULT_MAX_CHARS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ExtractedText:
    """`extract` in a fresh child process (`python -m notifier.documents.extract`) limited to `timeout` seconds of
    wall-clock time and `memory_bytes` of address space.

    A child that runs out of time is killed (`TimedOut`); one that runs out of memory, or is killed by the kernel,
    gives `OutOfMemory`; one that crashes gives `CorruptDocument`. Nothing is shared between calls, so a failure
    never affects the next one; a cancelled call kills its child.
    """
    if not data:
        raise EmptyInput("the document has no bytes")
    if len(data) > max_bytes:
        raise TooLarge(f"{len(data)} bytes, more than the limit of {max_bytes}")
    limits = {"memory-bytes": memory_bytes, "cpu-seconds": math.ceil(timeout) + 1, "max-pages": max_pages,
              "max-chars": max_chars, "max-bytes": max_bytes}  # fmt: skip
    args = [arg for name, value in limits.items() for arg in (f"--{name}", str(value))]
    args += ["--content-type", content_type or "", "--filename", filename or ""]
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", _CHILD_MODULE, *args, env=_child_environment(os.environ),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        stdout, stderr = await asyncio.wait_for(child.communicate(data), timeout)
    except TimeoutError:
        raise TimedOut(f"the extraction took more than {timeout:g} s and was stopped") from None
    finally:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it may have ended on its own meanwhile
                child.kill()
            await child.wait()
    return _child_result(child.returncode, stdout, stderr, memory_bytes)


def _child_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """The variables the extraction child gets: what Python and the locale need, and nothing else.

    A document that took over its parser must not find the service's secrets (database and SMTP URLs, keys) in its
    environment.
    """
    return {name: value for name, value in environment.items() if _CHILD_VARIABLES.fullmatch(name)}


def _child_result(returncode: int | None, stdout: bytes, stderr: bytes, memory_bytes: int) -> ExtractedText:
    tail = stderr[-_STDERR_TAIL:].decode("utf-8", errors="replace").strip()
    if returncode is not None and returncode < 0:
        number = -returncode
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        error = _SIGNAL_ERRORS.get(number, CorruptDocument)
        if error is OutOfMemory:
            raise OutOfMemory(f"the extraction was killed ({name}), most likely at its memory limit of "
                              f"{memory_bytes} bytes")  # fmt: skip
        raise error(f"the extraction was killed ({name})")
    if returncode != 0:
        error = OutOfMemory if "MemoryError" in tail else ExtractionError
        raise error(f"the extraction failed (exit status {returncode}): {tail}")
    try:
        answer = json.loads(stdout)
        if "error" in answer:
            raise ERRORS_BY_REASON.get(answer["error"], ExtractionError)(str(answer["message"]))
        kind = answer["kind"]
        if kind not in get_args(Kind):
            raise ValueError(f"unknown kind {kind!r}")
        return ExtractedText.of([str(page) for page in answer["pages"]], kind, truncated=bool(answer["truncated"]))
    except (ValueError, KeyError, TypeError) as e:
        raise ExtractionError(f"the extraction gave an unreadable answer ({e}): {tail}") from e


def _child_main(argv: Sequence[str] | None = None) -> int:
    """The child's side: limits set, document read from stdin, one JSON object written to stdout."""
    parser = argparse.ArgumentParser(prog=f"python -m {_CHILD_MODULE}", description="Extract a document's text "
                                     "(read from standard input) as JSON, within limits.")  # fmt: skip
    for name in ("memory-bytes", "cpu-seconds", "max-pages", "max-chars", "max-bytes"):
        parser.add_argument(f"--{name}", type=int, required=True)
    parser.add_argument("--content-type", default="")
    parser.add_argument("--filename", default="")
    args = parser.parse_args(argv)
    _limit(resource.RLIMIT_CORE, 0)  # an abort at the memory limit must not leave a core file behind
    # The soft CPU limit sends SIGXCPU (a timeout); the hard one, a second later, SIGKILL.
    _limit(resource.RLIMIT_CPU, args.cpu_seconds, args.cpu_seconds + 1)
    _limit(resource.RLIMIT_AS, args.memory_bytes)
    answer: dict[str, Any]
    try:
        result = extract(sys.stdin.buffer.read(), args.content_type or None, filename=args.filename or None,
                         max_pages=args.max_pages, max_chars=args.max_chars, max_bytes=args.max_bytes)  # fmt: skip
        answer = {"kind": result.kind, "pages": result.pages, "truncated": result.truncated}
    except ExtractionError as e:
        answer = {"error": e.reason, "message": str(e)}
    except MemoryError:
        answer = {"error": OutOfMemory.reason, "message": "the extraction ran out of memory"}
    except Exception as e:  # a bug, not the document: reported as a plain failure rather than a traceback
        answer = {"error": ExtractionError.reason, "message": f"{type(e).__name__}: {e}"}
    sys.stdout.write(json.dumps(answer))
    return 0


def _limit(which: int, soft: int, hard: int | None = None) -> None:
    """Lower a resource limit, never above the hard limit this process already has."""
    hard = soft if hard is None else hard
    _current, ceiling = resource.getrlimit(which)
    if ceiling != resource.RLIM_INFINITY:
        soft, hard = min(soft, ceiling), min(hard, ceiling)
    resource.setrlimit(which, (soft, hard))


if __name__ == "__main__":
    sys.exit(_child_main())
