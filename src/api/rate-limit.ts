/**
 * @module api/rate-limit — a token bucket per account, in memory (per process): `rate` requests per
 * second sustained, bursts up to twice that. Pure apart from the map it keeps; time is passed in.
 */

/** Per-key token buckets. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst = ratePerSecond * 2,
  ) {}

  /** Takes one token for `key` at time `now`; false when the bucket is empty. */
  take(key: string, now: number): boolean {
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    const tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.ratePerSecond);
    const ok = tokens >= 1;
    this.buckets.set(key, { tokens: ok ? tokens - 1 : tokens, at: now });
    if (this.buckets.size > 100_000) this.buckets.clear();
    return ok;
  }
}
