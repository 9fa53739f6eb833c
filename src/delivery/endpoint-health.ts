/** @module delivery/endpoint-health — what an endpoint's health figures mean (pure: the figures and time passed in). */
import type { EpochMs } from '../domain/clock.js';
import type { EndpointHealth } from '../domain/delivery.js';
import { DEFAULT_DISABLE_AFTER_DAYS } from './retry-policy.js';

/** An endpoint's state in one word. */
export type HealthState = 'healthy' | 'failing' | 'disabled' | 'unused';

/** Health figures with their reading: the state and, for a failing endpoint, when it will be disabled if nothing succeeds. */
export interface HealthSummary extends EndpointHealth {
  state: HealthState;
  /** When a `durable` endpoint failing since `failingSince` is disabled; null when not failing. */
  disablesAt: EpochMs | null;
}

/** Reads health figures: disabled wins; then failing (last attempt failed); unused without any attempt; else healthy. */
export function summarizeHealth(h: EndpointHealth, policy: 'cobalt' | 'durable', disableAfterDays = DEFAULT_DISABLE_AFTER_DAYS): HealthSummary {
  const failing = h.consecutiveFailures > 0 && h.failingSince !== null;
  const state: HealthState = !h.enabled ? 'disabled' : failing ? 'failing' : h.lastSuccessAt === null && h.lastFailureAt === null ? 'unused' : 'healthy';
  const disablesAt = state === 'failing' && policy === 'durable' && h.failingSince !== null ? h.failingSince + disableAfterDays * 86_400_000 : null;
  return { ...h, state, disablesAt };
}
