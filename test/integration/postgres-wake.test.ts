/** PostgreSQL: one process's commit wakes another process's dispatcher (NOTIFY), and the listener survives its connection being killed. */
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import pg from 'pg';
import { openStore } from '../../src/store/open.js';
import { PgClient } from '../../src/store/postgres/pg-client.js';
import { freshSchemaUrl, POSTGRES_URL, postgresUnavailable } from '../helpers/postgres.js';
import { untilTrue } from '../helpers/wait.js';

const unavailable = await postgresUnavailable();

const until = (what: string, fn: () => boolean | Promise<boolean>): Promise<void> => untilTrue(what, fn, 30_000, 50);

test('a NOTIFY sent by one store wakes the listeners of another store on the same schema, also after the listener connection is killed', { skip: unavailable ?? false }, async (t) => {
  const url = await freshSchemaUrl(t);
  const a = await openStore(url);
  const b = await openStore(url);
  t.after(async () => {
    await a.close();
    await b.close();
  });
  let woke = 0;
  b.onDeliveriesDue(() => woke++);
  const schema = new URL(url).searchParams.get('schema') ?? 'public';
  // What a's commits send, through a client of a's own on the same schema.
  const plain = new URL(url);
  plain.searchParams.delete('schema');
  const sender = new PgClient(plain.toString(), { schema });
  t.after(() => sender.close());
  const listenSql = `LISTEN ehrsync_deliveries_due_${createHash('sha256').update(schema).digest('hex').slice(0, 16)}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  t.after(() => admin.end());
  const listening = async (): Promise<boolean> =>
    (await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = $1", [listenSql])).rows[0].n > 0;
  await until('the listener', listening);
  const before = woke;
  // What every commit that creates deliveries sends; it reaches b only through PostgreSQL.
  await sender.notify('ehrsync_deliveries_due', 'other');
  await until('a wake in b', () => woke > before);

  // A server restart, as the listener sees it: its connection is terminated.
  await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1", [listenSql]);
  const killed = woke;
  // After reconnecting, the listener wakes once by itself (notifications sent meanwhile are lost).
  await until('the wake that follows a reconnect', () => woke > killed);
  await until('the listener to reconnect', listening);
  const again = woke;
  await sender.notify('ehrsync_deliveries_due', 'other');
  await until('a wake after reconnecting', () => woke > again);
});
