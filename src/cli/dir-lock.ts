/**
 * @module cli/dir-lock — one process per data directory: a lock file holding the owner's pid,
 * taken over when that process is gone (a crash or kill -9 leaves it behind). Removed when the
 * process exits.
 */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../domain/errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `<dir>/<name>.lock` for this process, or throws a ConfigError naming the process that
 * holds it and the `flag` that picks another directory.
 */
export function lockDataDir(dir: string, name: string, flag: string): void {
  const file = join(dir, `${name}.lock`);
  for (let tries = 0; tries < 2; tries++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      process.once('exit', () => {
        try {
          if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
        } catch {
          // already gone
        }
      });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new ConfigError(`another ehrsync ${name} (pid ${pid}) is running on ${dir}: stop it first, or give this one its own ${flag} DIR.`);
      }
      unlinkSync(file); // left by a process that is gone
    }
  }
  throw new ConfigError(`could not take the lock ${file}: remove it if no ehrsync ${name} is running.`);
}
