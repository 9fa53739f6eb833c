/**
 * The shared background loop, driven by an injected sleep and clock: what runs when, what wakes
 * it, how it stops and how it survives a failing pass. No real time passes and nothing asserts a
 * duration; every wait is for an event of the loop (a pass or a sleep starting).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EhrError } from '../../src/domain/errors.js';
import type { Logger } from '../../src/domain/logger.js';
import type { Sleep, WorkLoopOptions } from '../../src/domain/work-loop.js';
import { sleepUnlessWoken, WorkLoop } from '../../src/domain/work-loop.js';
import { FakeClock } from '../helpers/clock.js';

/** One call of the fake sleep: what it asked for, and how it ended. */
interface SleepCall {
  ms: number;
  /** The wake signal was aborted when the sleep began (a wake was pending). */
  wokenAtStart: boolean;
  /** Ended by a wake, not by the test. */
  woken: boolean;
  /** Ends the sleep as if its time had passed. */
  elapse(): void;
  ended: Promise<void>;
}

/** A sleep that only ends when the test says so or when the loop is woken. */
function fakeSleep() {
  const calls: SleepCall[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const sleep: Sleep = (ms, wake) => {
    let end!: () => void;
    const ended = new Promise<void>((resolve) => (end = resolve));
    const call: SleepCall = { ms, wokenAtStart: wake.aborted, woken: false, elapse: () => end(), ended };
    if (wake.aborted) {
      call.woken = true;
      end();
    } else {
      wake.addEventListener('abort', () => {
        call.woken = true;
        end();
      }, { once: true });
    }
    calls.push(call);
    for (const w of waiters.filter((x) => calls.length >= x.n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
    return ended;
  };
  /** Resolves with the n-th sleep (1-based) once the loop has started it. */
  const nth = async (n: number): Promise<SleepCall> => {
    if (calls.length < n) await new Promise<void>((resolve) => waiters.push({ n, resolve }));
    return calls[n - 1] as SleepCall;
  };
  return { sleep, calls, nth };
}

function capturingLogger() {
  const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, message: string) => lines.push({ level, fields, message });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Lets every pending promise callback and I/O callback run (no timer involved). */
const settle = () => new Promise<void>((r) => setImmediate(r));

function loopWith(over: Partial<WorkLoopOptions> & Pick<WorkLoopOptions, 'pass'>, sleep: Sleep): WorkLoop {
  return new WorkLoop({ name: 'test loop', idleMs: 1000, clock: new FakeClock(0), sleep, ...over });
}

describe('work loop', () => {
  it('start runs a pass at once, then sleeps the poll interval (the requested ms)', async () => {
    const s = fakeSleep();
    let passes = 0;
    const loop = loopWith({ idleMs: 750, pass: async () => (passes++, false) }, s.sleep);
    loop.start();
    const first = await s.nth(1);
    assert.equal(passes, 1);
    assert.equal(first.ms, 750);
    assert.equal(first.wokenAtStart, false);
    first.elapse();
    const second = await s.nth(2);
    assert.equal(passes, 2, 'the sleep ending ran the next pass');
    assert.equal(second.ms, 750);
    await loop.stop();
  });

  it('the pass gets the clock\'s time at its start', async () => {
    const s = fakeSleep();
    const clock = new FakeClock(5_000);
    const seen: number[] = [];
    const loop = loopWith({ clock, pass: async (now) => (seen.push(now), false) }, s.sleep);
    loop.start();
    (await s.nth(1)).elapse();
    clock.advance(1_000);
    await s.nth(2);
    await loop.stop();
    assert.deepEqual(seen, [5_000, 6_000]);
  });

  it('a pass reporting more work runs again without sleeping', async () => {
    const s = fakeSleep();
    let passes = 0;
    const loop = loopWith({ pass: async () => ++passes < 3 }, s.sleep);
    loop.start();
    await s.nth(1);
    assert.equal(passes, 3, 'two passes with more work, then one without, before the first sleep');
    assert.equal(s.calls.length, 1);
    await loop.stop();
  });

  it('wake ends a sleep early and the next sleep is a full one again', async () => {
    const s = fakeSleep();
    let passes = 0;
    const loop = loopWith({ pass: async () => (passes++, false) }, s.sleep);
    loop.start();
    const first = await s.nth(1);
    loop.wake();
    await first.ended;
    assert.equal(first.woken, true);
    const second = await s.nth(2);
    assert.equal(passes, 2, 'woken, it ran a pass');
    assert.equal(second.wokenAtStart, false, 'the wake was used up by the sleep it ended');
    assert.equal(second.woken, false);
    await loop.stop();
  });

  it('a wake during a pass skips the next sleep (what woke it may have come too late for that pass)', async () => {
    const s = fakeSleep();
    let passes = 0;
    const loop = loopWith({
      pass: async () => {
        if (++passes === 1) loop.wake();
        return false;
      },
    }, s.sleep);
    loop.start();
    const first = await s.nth(1);
    assert.equal(first.wokenAtStart, true);
    const second = await s.nth(2);
    assert.equal(passes, 2);
    assert.equal(second.wokenAtStart, false);
    await loop.stop();
  });

  it('stop waits for the pass in progress and then stops: no further pass, no sleep', async () => {
    const s = fakeSleep();
    const inPass = deferred();
    const release = deferred();
    let passes = 0;
    const loop = loopWith({
      pass: async () => {
        passes++;
        inPass.resolve();
        await release.promise;
        return true; // more work: only stopping ends the loop here
      },
    }, s.sleep);
    loop.start();
    await inPass.promise;
    let stopped = false;
    const stopping = loop.stop().then(() => (stopped = true));
    await settle();
    assert.equal(stopped, false, 'stop is still waiting for the pass');
    assert.equal(loop.isRunning, false);
    release.resolve();
    await stopping;
    assert.equal(passes, 1);
    assert.equal(s.calls.length, 0);
  });

  it('stop ends a sleep at once', async () => {
    const s = fakeSleep();
    const loop = loopWith({ pass: async () => false }, s.sleep);
    loop.start();
    const first = await s.nth(1);
    await loop.stop();
    assert.equal(first.woken, true);
    assert.equal(s.calls.length, 1);
  });

  it('a pass that throws is logged with its error code only, and the loop goes on', async () => {
    const s = fakeSleep();
    const { logger, lines } = capturingLogger();
    let passes = 0;
    const loop = loopWith({
      logger,
      pass: async () => {
        if (++passes === 1) throw new EhrError('ehr_timeout', 'patient Jane Doe, MRN 12345');
        return false;
      },
    }, s.sleep);
    loop.start();
    const first = await s.nth(1);
    assert.equal(first.ms, 1000, 'a failed pass sleeps the poll interval');
    first.elapse();
    await s.nth(2);
    assert.equal(passes, 2, 'the loop went on');
    await loop.stop();
    assert.deepEqual(lines, [{ level: 'error', fields: { error_code: 'ehr_timeout' }, message: 'test loop pass failed' }]);
    assert.ok(!JSON.stringify(lines).includes('Jane'), 'never the message: it may quote a payload');
  });

  it('onError replaces the default line; one that throws does not end the loop', async () => {
    const s = fakeSleep();
    const seen: unknown[] = [];
    let passes = 0;
    const loop = loopWith({
      onError: (err) => {
        seen.push(err);
        throw new Error('the reporter failed too');
      },
      pass: async () => {
        if (++passes === 1) throw new Error('boom');
        return false;
      },
    }, s.sleep);
    loop.start();
    (await s.nth(1)).elapse();
    await s.nth(2);
    await loop.stop();
    assert.equal(seen.length, 1);
    assert.equal((seen[0] as Error).message, 'boom');
  });

  it('start twice is a no-op: one loop, one pass per round', async () => {
    const s = fakeSleep();
    let passes = 0;
    const loop = loopWith({ pass: async () => (passes++, false) }, s.sleep);
    loop.start();
    loop.start();
    await s.nth(1);
    await settle();
    assert.equal(passes, 1);
    assert.equal(s.calls.length, 1);
    await loop.stop();
  });

  it('started again before stop() resolved: the runs never overlap, and both stops resolve', async () => {
    const s = fakeSleep();
    let inPass = 0;
    let overlapped = false;
    const gate = deferred();
    let passes = 0;
    const loop = loopWith({
      pass: async () => {
        passes++;
        if (++inPass > 1) overlapped = true;
        if (passes === 1) await gate.promise;
        inPass--;
        return false;
      },
    }, s.sleep);
    loop.start();
    await settle();
    const stopped = loop.stop(); // the first pass is still running
    loop.start();
    gate.resolve();
    await stopped;
    const next = await s.nth(1);
    assert.equal(passes, 2, 'the new run made its own pass, after the first one ended');
    assert.equal(overlapped, false);
    assert.equal(next.wokenAtStart, false, 'the stop before the restart does not cut the new run\'s first sleep');
    await loop.stop();
    assert.equal(loop.isRunning, false);
  });

  it('can start again after stopping', async () => {
    const s = fakeSleep();
    let passes = 0;
    const loop = loopWith({ pass: async () => (passes++, false) }, s.sleep);
    loop.start();
    await s.nth(1);
    await loop.stop();
    loop.start();
    assert.equal(loop.isRunning, true);
    await s.nth(2);
    assert.ok(passes >= 2);
    await loop.stop();
  });

  it('fixedRate keeps the phase of the starts (like setInterval): a pass that overran skips the starts it missed', async () => {
    const s = fakeSleep();
    const clock = new FakeClock(0);
    const took = [300, 5_200];
    const loop = loopWith({ clock, idleMs: 1_000, fixedRate: true, pass: async () => (clock.advance(took.shift() ?? 0), false) }, s.sleep);
    loop.start();
    const first = await s.nth(1);
    assert.equal(first.ms, 700);
    first.elapse();
    const second = await s.nth(2);
    assert.equal(second.ms, 800, 'started at 1,000, ran to 6,200: the next start is 7,000, not at once');
    second.elapse();
    assert.equal((await s.nth(3)).ms, 1_000);
    await loop.stop();
  });

  it('the real sleep returns at once when the wake signal is (or gets) aborted', async () => {
    const woken = new AbortController();
    woken.abort();
    await sleepUnlessWoken(3_600_000, woken.signal);
    const later = new AbortController();
    const sleeping = sleepUnlessWoken(3_600_000, later.signal, false);
    later.abort();
    await sleeping;
  });
});
