/** The Store contract on PostgreSQL: a fresh schema per test. Skips, saying why, when no server answers. */
import { test } from 'node:test';
import { openStore } from '../../src/store/open.js';
import { storeContract } from '../contract/store-contract.js';
import { freshSchemaUrl, postgresUnavailable } from '../helpers/postgres.js';

const unavailable = await postgresUnavailable();
if (unavailable) {
  // A skipped test, not a skipped suite, so the run's summary counts it as skipped.
  test('Store contract: PostgreSQL', { skip: unavailable }, () => {});
} else {
  storeContract('PostgreSQL', async (t) => {
    const store = await openStore(await freshSchemaUrl(t));
    t.after(() => store.close());
    return store;
  });
}
