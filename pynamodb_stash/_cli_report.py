"""What the pynamodb-stash command line prints: progress, reports, the schema table, and failures.

Nothing printed here holds a value, a ciphertext, an HMAC or a key: reports count by outcome and key id,
name items by their plain key attributes only, and failures of other libraries are described by their
type and error code, never by their text (which may quote a request or a response).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Optional, Sequence, TextIO

from .operations import Report

# -- errors -----------------------------------------------------------------------------------------------


class CommandError(Exception):
    """A command cannot go on: its message is printed as one line and the exit status is 1."""


class UsageError(SystemExit):
    """A command line that cannot run: exit status 2, before any request. Its message was printed as
    one line; ``str()`` gives it too, for callers of ``main()`` in the same process."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


_CREDENTIALS_REFUSED = {
    "UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException", "SignatureDoesNotMatch",
    "MissingAuthenticationToken", "IncompleteSignature", "AuthFailure",
}
_THROTTLED = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}


def aws_failure(exc: BaseException, where: str) -> str:
    """One line saying why a request to AWS (or DynamoDB Local) failed, from botocore's exception types
    and error codes: which endpoint could not be reached, which credentials are missing, which code the
    service answered. Never the exceptions' own text, which may quote a request or response."""
    from botocore import exceptions as boto

    cause = _aws_cause(exc)
    prefix = f"{type(exc).__name__}: " if cause is not exc else ""
    if isinstance(cause, boto.ConnectTimeoutError):
        return f"{prefix}timed out connecting to {_endpoint(cause, where)}: check --endpoint and --region"
    if isinstance(cause, boto.EndpointConnectionError):
        return (
            f"{prefix}cannot reach {_endpoint(cause, where)}: is the endpoint running and reachable? "
            "(check --endpoint and --region)"
        )
    if isinstance(cause, boto.ReadTimeoutError):
        return f"{prefix}{_endpoint(cause, where)} did not answer in time"
    if isinstance(cause, boto.NoCredentialsError):
        return (
            f"{prefix}no AWS credentials found for {where}: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or configure ~/.aws/credentials (DynamoDB Local accepts any)"
        )
    if isinstance(cause, boto.PartialCredentialsError):
        missing = str(cause.kwargs.get("cred_var", "a variable"))
        provider = str(cause.kwargs.get("provider", "the environment"))
        return f"{prefix}incomplete AWS credentials in {provider}: {missing} is missing"
    if isinstance(cause, boto.NoRegionError):
        return f"{prefix}no AWS region: pass --region or set AWS_DEFAULT_REGION"
    if isinstance(cause, boto.ClientError):
        code = str(cause.response.get("Error", {}).get("Code", "an error"))
        if code in _CREDENTIALS_REFUSED:
            return f"{prefix}{where} refused the AWS credentials ({code}): check them, and --region"
        if code in ("ExpiredTokenException", "ExpiredToken", "RequestExpired"):
            return f"{prefix}the AWS credentials have expired ({code}): refresh them"
        if code == "AccessDeniedException":
            return f"{prefix}access denied by {where} ({code}): the credentials' IAM policy does not allow it"
        if code == "ResourceNotFoundException":
            return f"{prefix}not found at {where} ({code}): check the table name, --region and --endpoint"
        if code in _THROTTLED:
            return f"{prefix}throttled by {where} ({code}): retry, or lower --segments and --max-write-rate"
        return f"{prefix}{where} refused the request: {code}"
    if isinstance(cause, boto.BotoCoreError):
        return f"{prefix}the request to {where} failed: {type(cause).__name__}"
    response_code = getattr(exc, "cause_response_code", None)
    return f"{type(exc).__name__}: the request to {where} failed" + (f": {response_code}" if response_code else "")


def _aws_cause(exc: BaseException) -> BaseException:
    """The botocore exception behind ``exc`` (PynamoDB's ``cause``, or a chained one), else ``exc``."""
    from botocore import exceptions as boto

    seen = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, (boto.BotoCoreError, boto.ClientError)):
            found: BaseException = current
            return found
        seen.add(id(current))
        cause: Optional[BaseException] = getattr(current, "cause", None)
        current = cause or current.__cause__ or current.__context__
    return exc


def _endpoint(cause: Any, where: str) -> str:
    url = getattr(cause, "kwargs", {}).get("endpoint_url")
    return f"the endpoint {url}" if url else where


# -- progress -------------------------------------------------------------------------------------------


class Progress:
    """Progress of a scan on ``stream`` (stderr), driven by a clock rather than by pages: a line every
    ``interval`` seconds (a line redrawn in place every half second on a terminal), whatever the page
    size or the time one item takes. With the table's approximate item count, it shows an estimate of
    the time left. On a terminal it ends its line before the summary is printed.

    Use as a context manager, and pass :meth:`update` as the operation's ``progress`` callback.
    """

    def __init__(self, stream: TextIO, *, expected: Optional[int], interval: float = 2.0) -> None:
        self._stream = stream
        self._terminal = bool(getattr(stream, "isatty", lambda: False)())
        self._interval = min(interval, 0.5) if self._terminal else interval
        self._expected = expected if expected else None
        self._report: Optional[Report] = None
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pynamodb-stash progress", daemon=True)
        self._width = 0

    def update(self, report: Report) -> None:
        self._report = report

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        if self._terminal and self._width:
            self._stream.write("\n")  # the summary starts on a line of its own
            self._stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            line = self.line(self._report, time.monotonic() - self._started)
            if self._terminal:
                self._stream.write("\r" + line.ljust(self._width))
                self._width = max(self._width, len(line))
            else:
                self._stream.write(f"... {line}\n")
            self._stream.flush()

    def line(self, report: Optional[Report], elapsed: float) -> str:
        """``scanned 1200 of ~40000 (3%): rewritten 1100, failed 0; 250 items/s, about 2 min 36 s left``."""
        scanned = report.scanned if report is not None else 0
        expected = self._expected
        text = f"scanned {scanned}" + (f" of ~{expected} ({100 * scanned // expected}%)" if expected else "")
        if report is not None:
            counts = []
            if report.operation != "verify":
                counts.append(f"{'would rewrite' if report.dry_run else 'rewritten'} {report.rewritten}")
            counts.append(f"failed {sum(report.failures.values())}")
            text += ": " + ", ".join(counts)
        rate = scanned / elapsed if elapsed > 0 else 0.0
        text += f"; {rate:.0f} items/s"
        if expected and rate > 0:
            if scanned < expected:
                text += f", about {_duration((expected - scanned) / rate)} left"
            else:
                text += ", more items than the table's approximate count: nearly done"
        return text


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


# -- reports ----------------------------------------------------------------------------------------------


def print_report(report: Report, out: TextIO, *, keyring_ids: Optional[Sequence[str]]) -> None:
    """The summary, values by key id, the failed items by primary key, and a note when no stored value
    is under a key of the keyring (``keyring_ids``; None when it cannot be told, as per tenant)."""
    print(report.summary(), file=out)
    if report.key_ids:
        print("values by key id: " + ", ".join(f"{key}: {n}" for key, n in sorted(report.key_ids.items())), file=out)
    if report.failed_items:
        total = sum(report.failures.values())
        shown = len(report.failed_items)
        print(f"failed items ({total}" + (f", the first {shown}" if shown < total else "") + "):", file=out)
        for item in report.failed_items:
            print(f"  {item.key}: {item.code}", file=out)
    note = foreign_keys_note(report, keyring_ids)
    if note:
        print(note, file=out)


def foreign_keys_note(report: Report, keyring_ids: Optional[Sequence[str]]) -> Optional[str]:
    """When values were scanned and none names a key of the keyring: the keyring is another one. Key ids
    are not secret; they are what tells two keyrings apart."""
    if keyring_ids is None or not report.stored_key_ids or set(report.stored_key_ids) & set(keyring_ids):
        return None
    return (
        "no stored value is under a key of this keyring (key ids found: "
        f"{', '.join(sorted(report.stored_key_ids))}; keyring holds: {', '.join(keyring_ids)}): "
        "is it the keyring these items were written with?"
    )


def print_table(rows: List[Dict[str, str]], out: TextIO) -> None:
    """Rows of strings as aligned columns, headed by their keys."""
    columns = list(rows[0]) if rows else []
    widths = [max(len(column), *(len(row[column]) for row in rows)) for column in columns]
    for values in [dict(zip(columns, columns)), *rows]:
        print("  ".join(values[column].ljust(width) for column, width in zip(columns, widths)).rstrip(), file=out)
