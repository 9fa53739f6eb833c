/** The SQLite client: its single-writer gate (concurrent async transactions never interleave) and the files it creates. */
import assert from 'node:assert/strict';
import { chmodSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SqliteClient } from '../../src/store/sqlite/sqlite-client.js';
import { tempDir } from '../helpers/temp.js';

it('statements outside a transaction wait for it, so a rollback never takes them along', async (t) => {
  const db = new SqliteClient(join(tempDir(t), 'gate.db'));
  t.after(() => db.close());
  await db.run('CREATE TABLE t (v TEXT)');
  const failing = db
    .transaction(async (tx) => {
      await tx.run("INSERT INTO t VALUES ('in-rolled-back-tx')");
      await sleep(20);
      throw new Error('boom');
    })
    .catch((e: Error) => e.message);
  const outside = db.run("INSERT INTO t VALUES ('outside')");
  assert.equal(await failing, 'boom');
  await outside;
  assert.deepEqual(await db.all('SELECT v FROM t'), [{ v: 'outside' }]);
});

it('many concurrent transactions run one at a time and all commit', async (t) => {
  const db = new SqliteClient(join(tempDir(t), 'gate.db'));
  t.after(() => db.close());
  await db.run('CREATE TABLE c (n INTEGER)');
  await db.run('INSERT INTO c VALUES (0)');
  await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      db.transaction(async (tx) => {
        const [row] = await tx.all<{ n: number }>('SELECT n FROM c');
        if (i % 7 === 0) await sleep(1);
        await tx.run('UPDATE c SET n = ?', [(row?.n ?? 0) + 1]);
      }),
    ),
  );
  assert.deepEqual(await db.all('SELECT n FROM c'), [{ n: 50 }]);
});

it('a relaxed transaction runs at synchronous=NORMAL and leaves the connection at FULL for durable work', async (t) => {
  const db = new SqliteClient(join(tempDir(t), 'sync.db'));
  t.after(() => db.close());
  const level = async (run: (sql: string) => Promise<{ synchronous: number }[]>): Promise<number | undefined> => (await run('PRAGMA synchronous'))[0]?.synchronous;
  // SQLite: 1 = NORMAL, 2 = FULL.
  assert.equal(await level((sql) => db.all(sql)), 2, 'durable by default');
  for (let i = 0; i < 2; i++) {
    assert.equal(await db.transaction((tx) => level((sql) => tx.all(sql)), { durable: false }), 1, `relaxed transaction ${i + 1}`);
    assert.equal(await db.transaction((tx) => level((sql) => tx.all(sql))), 2, 'durable transaction after it');
    assert.equal(await level((sql) => db.all(sql)), 2, 'statement after it');
  }
  await db.transaction(() => Promise.reject(new Error('boom')), { durable: false }).catch(() => {});
  assert.equal(await level((sql) => db.all(sql)), 2, 'restored after a relaxed transaction that failed');
});

it('a new database, its directory and its WAL files are readable by their owner only; an existing file keeps its mode', { skip: process.platform === 'win32' ? 'POSIX file modes' : false }, async (t) => {
  const dir = join(tempDir(t), 'new-dir');
  const db = new SqliteClient(join(dir, 'phi.db'));
  t.after(() => db.close());
  await db.run('CREATE TABLE t (v TEXT)');
  await db.run("INSERT INTO t VALUES ('x')");
  for (const p of [dir, join(dir, 'phi.db'), join(dir, 'phi.db-wal'), join(dir, 'phi.db-shm')]) {
    assert.equal(statSync(p).mode & 0o077, 0, `${p} has no group or other permissions (mode ${(statSync(p).mode & 0o777).toString(8)})`);
  }
  const existing = join(tempDir(t), 'existing.db');
  writeFileSync(existing, '');
  chmodSync(existing, 0o640);
  const other = new SqliteClient(existing);
  t.after(() => other.close());
  assert.equal(statSync(existing).mode & 0o777, 0o640, "the operator's choice stands");
});
