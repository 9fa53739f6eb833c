/** Temporary directories and SQLite files for tests, removed when the test ends. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/** A fresh directory, removed after the test (kept when KEEP_TEST_FILES=1, to inspect a failure). */
export function tempDir(t: Pick<TestContext, 'after'>, prefix = 'ehrsync-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => {
    if (process.env.KEEP_TEST_FILES !== '1') rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}
