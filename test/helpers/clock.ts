/** A clock tests move by hand. */
import type { Clock } from '../../src/domain/clock.js';

/** A manual clock starting at `start`. */
export class FakeClock implements Clock {
  constructor(private ms: number) {}
  now(): number {
    return this.ms;
  }
  /** Moves time forward. */
  advance(ms: number): void {
    this.ms += ms;
  }
  set(ms: number): void {
    this.ms = ms;
  }
}
