/** `ehrsync connections` on a real SQLite file, as an operator runs it: create an hl7v2 feed, disable it, enable it; a wrong id is refused by name. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { it } from 'node:test';
import { promisify } from 'node:util';
import { tempDir } from '../helpers/temp.js';

const run = promisify(execFile);

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/ehrsync.js', ...args], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

it('connections disable / enable: the state is stored and listed; an unknown id exits 2 naming the flag', async (t) => {
  const db = join(tempDir(t), 'ehrsync.db');
  const account = JSON.parse((await cli('accounts', 'create', '--name', 'Acme', '--database', db, '--json')).stdout) as { client_id: string };
  const created = await cli('connections', 'create', '--client-id', account.client_id, '--connector', 'hl7v2', '--sending-application', 'EPIC', '--timezone', 'America/Chicago', '--database', db, '--json');
  assert.equal(created.code, 0, created.stderr);
  const id = (JSON.parse(created.stdout) as { connection_id: string }).connection_id;
  const state = async () => (JSON.parse((await cli('connections', 'list', '--database', db, '--json')).stdout) as { connections: { id: string; enabled: boolean }[] }).connections.find((c) => c.id === id)?.enabled;
  assert.equal(await state(), true);
  assert.equal((await cli('connections', 'disable', '--connection', id, '--database', db)).code, 0);
  assert.equal(await state(), false);
  assert.equal((await cli('connections', 'enable', '--connection', id, '--database', db)).code, 0);
  assert.equal(await state(), true);
  const wrong = await cli('connections', 'disable', '--connection', 'nope', '--database', db);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /--connection nope: no such connection/);
  const noZone = await cli('connections', 'create', '--client-id', account.client_id, '--connector', 'hl7v2', '--sending-application', 'ATHENA', '--database', db);
  assert.equal(noZone.code, 2);
  assert.match(noZone.stderr, /timezone is required for an hl7v2 connection/);
});
