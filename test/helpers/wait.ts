/** Polling waits for tests: they wait for a condition, never assert how long it took. */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every `everyMs` until it returns a value other than undefined, and returns it; throws naming `what` after `limitMs`. */
export async function untilValue<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, limitMs: number, everyMs: number): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Polls `fn` every `everyMs` until it is true; throws naming `what` after `limitMs`. */
export async function untilTrue(what: string, fn: () => boolean | Promise<boolean>, limitMs: number, everyMs: number): Promise<void> {
  await untilValue(what, async () => ((await fn()) ? true : undefined), limitMs, everyMs);
}
