/**
 * @module cli/log — the process logger: pino, JSON lines, to stdout or a file. Modules log ids,
 * counts, codes and durations only (domain/logger); nothing here adds payloads or secrets.
 */
import { pino } from 'pino';
import type { Logger } from '../domain/logger.js';

/** A pino logger at `level`, writing JSON lines to `file` (appended, created) or to stdout. */
export function createLogger(level: 'debug' | 'info' | 'warn' | 'error' | 'silent', file?: string): Logger & { flush(): void } {
  const destination = pino.destination(file === undefined ? { dest: 1, sync: false } : { dest: file, mkdir: true, append: true, sync: false });
  const log = pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
  return {
    debug: (f, m) => log.debug(f, m),
    info: (f, m) => log.info(f, m),
    warn: (f, m) => log.warn(f, m),
    error: (f, m) => log.error(f, m),
    flush: () => destination.flushSync(),
  };
}
