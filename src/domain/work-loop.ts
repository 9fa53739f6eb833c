/**
 * @module domain/work-loop — the one polling loop behind every background role (sync scheduler,
 * operation runner, delivery dispatcher, retention): run a pass, run again at once when the pass
 * says more work is ready, otherwise sleep the poll interval or until woken; a pass that throws is
 * logged (its error code only) and the loop goes on. Time and sleeping are injected, so tests drive
 * the loop without real time.
 */
import type { Clock, EpochMs } from './clock.js';
import { systemClock } from './clock.js';
import { describeError } from './errors.js';
import type { Logger } from './logger.js';
import { silentLogger } from './logger.js';

/** The reason a wake aborts the sleep with: one value, not a new exception per wake. */
const WOKEN = Object.freeze({ woken: true });

/** Waits `ms`, or less when `wake` aborts (at once when it already has). Never rejects. */
export type Sleep = (ms: number, wake: AbortSignal) => Promise<void>;

/**
 * The real sleep: a timer, cut short by `wake`. With `keepAlive` false the timer does not hold the
 * process open (a loop whose only work is waiting must not keep a finished process alive).
 */
export function sleepUnlessWoken(ms: number, wake: AbortSignal, keepAlive = true): Promise<void> {
  return new Promise((resolve) => {
    if (wake.aborted) return resolve();
    const timer = setTimeout(done, ms);
    if (!keepAlive) timer.unref();
    function done(): void {
      clearTimeout(timer);
      wake.removeEventListener('abort', done);
      resolve();
    }
    wake.addEventListener('abort', done, { once: true });
  });
}

const sleepUnref: Sleep = (ms, wake) => sleepUnlessWoken(ms, wake, false);

/** How a WorkLoop runs. Only `name`, `pass` and `idleMs` are required. */
export interface WorkLoopOptions {
  /** What the loop does, in log lines: `<name> pass failed`. */
  name: string;
  /**
   * One pass; `now` is the clock's time at its start. Resolves true when more work is likely ready
   * right away (e.g. it leased a full batch): the loop then runs again without sleeping.
   */
  pass: (now: EpochMs) => Promise<boolean>;
  /** The poll interval: how long the loop sleeps after a pass that found no more work. */
  idleMs: number;
  /**
   * Measure `idleMs` from the start of the previous pass instead of its end, like `setInterval`:
   * passes start on the same phase, and one that took longer than `idleMs` skips the starts it
   * missed (never two at a time).
   * Default false.
   */
  fixedRate?: boolean;
  /** Default: the system clock. */
  clock?: Clock;
  /** Default: sleepUnlessWoken (a timer). */
  sleep?: Sleep;
  /** Whether the default sleep's timer keeps the process alive. Default true. */
  keepAlive?: boolean;
  logger?: Logger;
  /** Reports a pass that threw, instead of the default `error` line with the error code. */
  onError?: (err: unknown) => void;
}

/**
 * A background loop. `start()` runs passes until `stop()`; `wake()` ends the current sleep (or
 * skips the next one, when a pass is running: what woke it may have come too late for that pass).
 */
export class WorkLoop {
  private readonly options: WorkLoopOptions;
  private readonly clock: Clock;
  private readonly sleep: Sleep;
  private running = false;
  /** Bumped by every start(): a run of an earlier start() stops even when the loop was started again meanwhile. */
  private generation = 0;
  private done: Promise<void> | null = null;
  /** Aborted by wake(); replaced after the sleep it cut short (or skipped). */
  private wakeSignal = new AbortController();

  constructor(options: WorkLoopOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.sleep = options.sleep ?? (options.keepAlive === false ? sleepUnref : sleepUnlessWoken);
  }

  /** True from start() until stop() is called. */
  get isRunning(): boolean {
    return this.running;
  }

  /** Starts the loop: its first pass runs at once. A no-op while running. */
  start(): void {
    if (this.running) return;
    this.running = true;
    // A wake left by the last stop() would skip this run's first sleep.
    if (this.wakeSignal.signal.aborted) this.wakeSignal = new AbortController();
    const previous = this.done;
    const generation = ++this.generation;
    // Started again before an earlier stop() finished: this run begins after that run's pass, never beside it.
    this.done = (previous ?? Promise.resolve()).then(() => this.run(generation));
  }

  /** Makes the loop run a pass now instead of finishing its sleep. Cheap: callers may wake it often. */
  wake(): void {
    // abort() builds a DOMException with a stack as its default reason even when the signal is
    // already aborted; callers wake on every commit, so skip that work when nothing changes.
    if (!this.wakeSignal.signal.aborted) this.wakeSignal.abort(WOKEN);
  }

  /** Stops the loop: no pass starts any more; resolves when the pass in progress (if any) has finished. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    const done = this.done;
    await done;
    // Only this stop's run: a start() meanwhile has a run of its own.
    if (this.done === done) this.done = null;
  }

  private async run(generation: number): Promise<void> {
    const { pass, idleMs } = this.options;
    const current = (): boolean => this.running && this.generation === generation;
    while (current()) {
      const startedAt = this.clock.now();
      let more = false;
      try {
        more = await pass(startedAt);
      } catch (err) {
        this.report(err);
      }
      if (!current()) break;
      // A pass reporting more work runs again at once. A wake that arrived meanwhile stays pending
      // and skips the next sleep, as it would have had the pass found nothing.
      if (more) continue;
      // Fixed rate keeps the phase of the passes' starts, like setInterval: a pass that overran skips
      // the starts it missed instead of being followed by the next at once.
      const ms = this.options.fixedRate ? idleMs - (Math.max(0, this.clock.now() - startedAt) % idleMs) : idleMs;
      await this.sleep(ms, this.wakeSignal.signal);
      if (this.wakeSignal.signal.aborted) this.wakeSignal = new AbortController();
    }
  }

  private report(err: unknown): void {
    try {
      if (this.options.onError) this.options.onError(err);
      // The code only: a message can quote a payload or a connection string.
      else (this.options.logger ?? silentLogger).error({ error_code: describeError(err).code }, `${this.options.name} pass failed`);
    } catch {
      // A reporter that throws must not end the loop.
    }
  }
}
