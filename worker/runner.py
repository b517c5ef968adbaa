"""Running one claimed job: train, record every iteration, check gradients, flush, finish.

The training loop's only per-iteration work beyond the engine is appending the record to a
list and three comparisons (flush due? time up? interrupted?). Every ``flush_iterations``
iterations or ``flush_seconds`` seconds the buffered records become one chunk, written with
the gradient checks done since and a checkpoint of the state the next iteration starts from,
in one fenced transaction. A resumed attempt starts from that checkpoint, so each iteration
is recorded exactly once however often the job's workers die.

It runs in the job's child process (:mod:`worker.child`), whose flushes go over a pipe to
the worker that writes them; given a :class:`~store.queue.Queue` it runs in-process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from pydantic import ValidationError

from engine import DivergedError, EngineError, GradientCheck, Trainer, gradient_check
from engine.taylor import TaylorCheck, model_taylor_test
from store import datasets, paths
from store.build import build
from store.chunks import Col, chunk_row, extremes, records_block
from store.codec import pack_state, unpack_state
from store.lifecycle import CANCELLED, RELEASED, SUCCEEDED, Finish, LostClaim, Outcome, failed
from store.queue import Claim, Flush
from store.sandboxing import sandbox_mode
from store.settings import Settings
from store.spec import GradientCheckSpec, JobSpec
from worker.sandbox import Sandbox, Spare, StudentError
from worker.student import StudentModel, student_checks

log = logging.getLogger("gradlab.worker")


PRIORITY = {None: 0, "stop": 1, "time": 2, "cancel": 3, "lost": 4}


class Sink(Protocol):
    """Where a run's flushes go: the store's :class:`~store.queue.Queue` itself, or the pipe
    to the worker that writes them (:mod:`worker.child`)."""

    def heartbeat(self, claim: Claim) -> bool: ...

    def flush(self, claim: Claim, flush: Flush, finish: Finish | None = None) -> bool: ...


def memory_limit(settings: Settings) -> dict[str, Any]:
    """The error of a job that asked for more memory than ``GRADLAB_JOB_MEMORY_MB``."""
    return {
        "type": "memory_limit",
        "message": f"The job needed more than the {settings.job_memory_mb} MB of memory a job "
        "may use (GRADLAB_JOB_MEMORY_MB): try fewer rows, features or hidden units.",
    }


def time_limit(settings: Settings) -> dict[str, Any]:
    """The error of an attempt that ran past ``GRADLAB_JOB_TIMEOUT_SECONDS``."""
    return {
        "type": "time_limit",
        "message": f"The job ran longer than the {settings.job_timeout_seconds:g} s an attempt "
        "may take (GRADLAB_JOB_TIMEOUT_SECONDS): try fewer iterations or a smaller model.",
    }


class JobRun:
    """One attempt at one job."""

    def __init__(
        self, queue: Sink, claim: Claim, settings: Settings, spare: Spare | None = None
    ) -> None:
        self.queue, self.claim, self.settings, self.spare = queue, claim, settings, spare
        # Why the loop must stop at the next iteration: "stop" (the worker is shutting
        # down), "time" (the attempt is past its time limit), "cancel" (the user asked) or
        # "lost" (another worker took the job over).
        self.interrupt: str | None = None
        self.best_loss = claim.best_loss
        self.best_iteration = claim.best_iteration
        self.checks_passed = claim.checks_passed
        self.sandbox: Sandbox | None = None  # a student's job: their code's process
        self.sandbox_mode: str | None = None  # ... and the kind of sandbox it ran in
        self.reference_losses: list[float] = []  # ... and the reference loss per record
        self.path: list[tuple[int, Any]] = []  # (iteration, parameters) kept since the flush

    def interrupt_with(self, reason: str) -> None:
        """Ask the loop to stop at its next iteration (thread- and signal-safe)."""
        if PRIORITY[reason] > PRIORITY[self.interrupt]:
            self.interrupt = reason

    def run(self) -> Outcome:
        """Train the job until it ends or this attempt must stop; the attempt's outcome."""
        claim = self.claim
        try:
            self.spec = JobSpec.model_validate(datasets.resolve(claim.spec, claim.data))
            built = build(self.spec)
            state = unpack_state(claim.checkpoint) if claim.checkpoint else None
            trainer = Trainer(
                built.model,
                built.optimizer,
                built.data.X,
                built.data.y,
                iterations=built.iterations,
                l2=built.l2,
                params=built.params,
                state=state,
            )
        except (EngineError, ValidationError, LookupError) as exc:
            error = {"type": "invalid_spec", "message": str(exc)}
            return self._end(failed(error))
        except MemoryError:
            return self._end(failed(memory_limit(self.settings)))
        self.built, self.trainer = built, trainer
        try:
            if self.spec.student is not None:
                refusal = self._start_student()
                if refusal is not None:
                    return self._end(failed(refusal))
            return self._train()
        except LostClaim as exc:
            log.warning("%s; leaving the job to its new owner", exc)
            return Outcome.LOST
        finally:
            if self.sandbox is not None:
                self.sandbox.close()

    def _start_student(self) -> dict[str, Any] | None:
        """Start the student's code in its sandbox and train with it; the job's error when
        it cannot (fail closed: no sandbox, no run)."""
        student, trainer = self.spec.student, self.trainer
        assert student is not None
        mode = sandbox_mode(self.settings)
        if mode.kind is None:
            return {"type": "sandbox_unavailable", "message": f"No sandbox: {mode.reason}."}
        self.sandbox_mode = mode.kind
        model = self.built.model
        try:
            self.sandbox = Sandbox(
                self.settings,
                mode.kind,
                student.code,
                student.function,
                model.param_shapes(),
                trainer.X,
                trainer.y,
                self.built.l2,
                self.spare,
            )
        except StudentError as exc:
            return exc.to_error()
        trainer.model = StudentModel(model, self.sandbox)  # type: ignore[assignment]
        return None

    # --- the loop -------------------------------------------------------------------------

    def _train(self) -> Outcome:
        trainer, options = self.trainer, self.spec.gradient_check
        references = list(dict.fromkeys(options.references))
        every, last = options.every, self.built.iterations - 1
        next_check = self._next_check(trainer.iteration, every, last) if references else -1

        n_flush = self.settings.flush_iterations
        period = self.settings.flush_seconds
        clock = time.monotonic
        records: list[Any] = []
        checks: list[dict[str, Any]] = []
        student = trainer.model if isinstance(trainer.model, StudentModel) else None
        flush_at, deadline = trainer.iteration + n_flush, clock() + period
        size = sum(w.size for w in trainer.params.values())
        keep = paths.every(self.built.iterations, size)
        try:
            for rec in trainer:
                i = rec.iteration
                if i >= flush_at or self.interrupt or clock() >= deadline:
                    if self._flush(records, checks):
                        self.interrupt_with("cancel")
                    if self.interrupt == "lost":
                        raise LostClaim(f"job {self.claim.job_id}: its lease was taken over")
                    if self.interrupt == "cancel":
                        return self._end(CANCELLED)
                    if self.interrupt == "time":
                        return self._end(failed(time_limit(self.settings)))
                    if self.interrupt == "stop":
                        return self._end(RELEASED)
                    records, checks = [], []
                    self.reference_losses = []
                    flush_at, deadline = i + n_flush, clock() + period
                records.append(rec)
                if student is not None:
                    self.reference_losses.append(student.last_reference)
                if paths.kept(i, keep, last):  # the parameters loss i was computed at
                    self.path.append((i, paths.snapshot(trainer.params)))
                if i == next_check:
                    checks += self._check(i, references, options)
                    next_check = self._next_check(i + 1, every, last)
        except DivergedError as exc:
            error = {"type": "diverged", "message": str(exc), "iteration": exc.iteration}
            return self._end(failed(error), records, checks)
        except StudentError as exc:  # never a pass: the job fails with what went wrong
            return self._end(failed(exc.to_error()), records, checks)
        except LostClaim:
            raise
        except MemoryError:  # the temporaries are gone: there is room to record the failure
            if records and records[-1].iteration >= trainer.iteration:
                records.pop()  # out of memory in its gradient check: before its update
            return self._end(failed(memory_limit(self.settings)), records, checks)
        except Exception as exc:  # a bug in the engine: fail this job, keep the worker
            log.exception("job %s failed", self.claim.job_id)
            error = {"type": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
            return self._end(failed(error), records, checks)
        return self._end(SUCCEEDED, records, checks)

    @staticmethod
    def _next_check(i: int, every: int, last: int) -> int:
        """The first iteration ≥ i at which the gradients are checked."""
        if i <= 0:
            return 0
        if i > last:
            return -1
        if every > 0:
            return min(-(-i // every) * every, last)
        return last

    def _check(
        self, i: int, references: Sequence[str], options: GradientCheckSpec
    ) -> list[dict[str, Any]]:
        Xb, yb = self.trainer.batch
        model, params, l2 = self.built.model, self.trainer.params, self.built.l2
        if self.sandbox is not None:  # a student's job: the three verdicts on their code
            results = student_checks(model, self.sandbox, params, Xb, yb, l2, options, seed=i)
            return [self._stored(i, ref, result) for ref, result in results.items()]
        out = []
        for reference in references:
            check: GradientCheck | TaylorCheck
            if reference == "taylor":  # on the model's own gradient, v seeded by iteration
                check = model_taylor_test(model, params, Xb, yb, l2, seed=i)
            else:
                check = gradient_check(
                    model,
                    params,
                    Xb,
                    yb,
                    l2,
                    reference=reference,
                    epsilon=options.epsilon,
                    rtol=options.rtol,
                    atol=options.atol,
                    max_coordinates=options.max_coordinates,
                    seed=i,
                )
            out.append(self._stored(i, reference, check.to_dict()))
        return out

    def _stored(self, i: int, reference: str, figures: dict[str, Any]) -> dict[str, Any]:
        """A check's ``gradient_checks`` row, counted in the job's ``checks_passed``."""
        result = {"iteration": i, **figures}
        if result["passed"] is not None:
            self.checks_passed = bool(result["passed"]) and self.checks_passed is not False
        return {
            "job_id": self.claim.job_id,
            "iteration": i,
            "reference": reference,
            "passed": result["passed"],
            "max_relative_error": result["max_relative_error"],
            "result": result,
        }

    def _flush(
        self, records: list[Any], checks: list[dict[str, Any]], finish: Finish | None = None
    ) -> bool:
        """Write buffered records and checks with the checkpoint they lead to, in one fenced
        transaction; True when the job has been asked to cancel."""
        flush = Flush(checks=checks, checks_passed=self.checks_passed)
        if self.path:
            kept = [p for p in self.path if p[0] <= records[-1].iteration] if records else []
            if kept:
                its, values = zip(*kept, strict=True)
                flush.path = paths.path_row(self.claim.job_id, list(its), list(values))
            self.path = []
        if records:
            block = records_block(records)
            reference = None
            if self.sandbox is not None:
                reference = np.array(self.reference_losses[: len(records)])
            flush.chunk = chunk_row(self.claim.job_id, block, reference)
            lowest = extremes(flush.chunk["extremes"])[0]  # found once, by chunk_row
            if self.best_loss is None or lowest[Col.LOSS] < self.best_loss:
                self.best_loss = float(lowest[Col.LOSS])
                self.best_iteration = int(lowest[Col.ITERATION])
            flush.final_loss, flush.final_accuracy = (
                float(block[-1, Col.LOSS]),
                records[-1].accuracy,
            )
            flush.best_loss, flush.best_iteration = self.best_loss, self.best_iteration
            flush.iterations_done = int(block[-1, Col.ITERATION]) + 1
            flush.state = pack_state(self.trainer.state_dict())
        elif finish is None and not checks:
            return self.queue.heartbeat(self.claim)
        return self.queue.flush(self.claim, flush, finish)

    def _end(
        self,
        finish: Finish,
        records: list[Any] | None = None,
        checks: list[dict[str, Any]] | None = None,
    ) -> Outcome:
        """Flush what is left and end the attempt with ``finish``; its outcome."""
        self._flush(records or [], checks or [], finish)
        return finish.outcome
