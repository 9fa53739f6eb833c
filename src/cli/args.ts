/** @module cli/args — parsing of command-line values shared by commands, with errors that name the flag and the fix. */
import { BadRequestError } from '../domain/errors.js';

/** A TCP port from `--<name>`; 0 means any free port. */
export function parsePort(name: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65_535) throw new BadRequestError(`--${name} must be a port number from 0 to 65535 (0 = any free port); got ${JSON.stringify(v)}.`);
  return n;
}
