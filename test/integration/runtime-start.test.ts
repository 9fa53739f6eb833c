/**
 * Starting ehrsync when a port is taken: the start fails with EADDRINUSE and nothing has run — no
 * sync read the EHR, no lease is left behind — because the background roles start only once every
 * listener is bound. Real ports on 127.0.0.1, a real SQLite file.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { it } from 'node:test';
import { resolveConfig } from '../../src/cli/config.js';
import { startRuntime } from '../../src/cli/runtime.js';
import { MemoryConnector } from '../../src/connectors/memory.js';
import { silentLogger } from '../../src/domain/logger.js';
import { SecretBox } from '../../src/domain/secrets.js';
import { openStore } from '../../src/store/open.js';
import { tempDir } from '../helpers/temp.js';

it('a start that cannot bind its API port runs no sync first and leaves no lease', async (t) => {
  const dir = tempDir(t);
  const database = join(dir, 'ehrsync.db');
  const setup = await openStore(database);
  const account = await setup.createAccount({ name: 'Acme', clientId: 'ci_x', clientSecretHash: 'h', now: Date.now() });
  const connection = await setup.createConnection({ accountId: account.id, connector: 'memory', now: Date.now() - 60_000 });
  await setup.close();

  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => busy.close(() => resolve())));
  const port = (busy.address() as AddressInfo).port;

  const ehr = new MemoryConnector();
  const config = resolveConfig({ database, port, roles: 'api,sync,delivery', encryptionKey: SecretBox.generateKey() });
  await assert.rejects(startRuntime({ config, logger: silentLogger, createConnector: () => ehr, syncPollMs: 10 }), (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE');
  // Give a sync that had started (the old order) every chance to reach the EHR.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(ehr.calls.readSchedule, 0, 'the EHR was not read');
  const after = await openStore(database);
  t.after(() => after.close());
  const stored = await after.getConnection(connection.id);
  assert.equal(stored?.lastSyncAt ?? null, null, 'no sync ran');
  assert.deepEqual((await after.listSyncRuns(connection.id, 10)).length, 0, 'no sync run was even started');
});
