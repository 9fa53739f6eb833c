/**
 * @module domain/logger — the logging interface every module takes (pino satisfies it). Rule: log
 * ids, counts, codes and durations; never payloads, patient fields, URLs with credentials or secrets.
 */

/** Structured log call: a context object of safe fields, then a message. */
export type LogFn = (fields: Record<string, unknown>, message: string) => void;

/** The logger modules depend on. */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

const noop: LogFn = () => {};

/** A logger that drops everything (tests, library use). */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
