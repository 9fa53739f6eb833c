/** @module connectors/fhir/token-bucket — a per-connection request rate limit: `rate` tokens per second, bursts up to `rate`. */

/** Waits for a token before each request. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly now: () => number,
    private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>,
  ) {
    this.tokens = Math.max(1, rate);
    this.last = now();
  }

  /** Resolves when a request may go out. */
  async take(signal: AbortSignal): Promise<void> {
    for (;;) {
      const t = this.now();
      this.tokens = Math.min(Math.max(1, this.rate), this.tokens + ((t - this.last) / 1000) * this.rate);
      this.last = t;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await this.sleep(Math.ceil(((1 - this.tokens) / this.rate) * 1000), signal);
    }
  }
}
