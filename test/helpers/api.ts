/** An API over a real SQLite file, with one account and one connection, for route tests. */
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { buildApi } from '../../src/api/app.js';
import type { ApiDeps } from '../../src/api/context.js';
import { createAccount, createConnection } from '../../src/app/services.js';
import { silentLogger } from '../../src/domain/logger.js';
import { Metrics } from '../../src/domain/metrics.js';
import { SecretBox } from '../../src/domain/secrets.js';
import { openStore } from '../../src/store/open.js';
import { FakeClock } from './clock.js';
import { tempDir } from './temp.js';

export const API_NOW = Date.parse('2026-11-02T15:00:00.000Z');

/** Headers of an account (and optionally its connection). */
export interface Creds {
  client_id: string;
  client_secret: string;
  access_token: string;
}

/** Builds the API with a fresh store, two accounts (the second to prove tenant isolation). */
export async function apiWorld(t: TestContext, over: Partial<ApiDeps> = {}) {
  const store = await openStore(join(tempDir(t), 'api.db'));
  const clock = new FakeClock(API_NOW);
  const secretBox = new SecretBox(SecretBox.generateKey());
  const metrics = new Metrics();
  const deps: ApiDeps = {
    store,
    clock,
    secretBox,
    metrics,
    logger: silentLogger,
    endpointUrlPolicy: { allowInsecure: false, allowHosts: [] },
    // A fake DNS: *.example resolves to a public documentation-free address; internal.example to a private one.
    resolve: async (host) => (host.startsWith('internal.') ? ['10.1.2.3'] : ['93.184.215.14']),
    adminToken: 'admin-token-for-tests',
    rateLimitPerSecond: 10_000,
    ...over,
  };
  const app = await buildApi(deps);
  t.after(async () => {
    await app.close();
    await store.close();
  });
  const make = async (name: string): Promise<Creds & { accountId: string; connectionId: string }> => {
    const { account, clientSecret } = await createAccount(store, name, API_NOW);
    const { connection, accessToken } = await createConnection(store, secretBox, { accountId: account.id, connector: 'demo', baseUrl: 'http://127.0.0.1:1/fhir', referenceId: `${name}_clinic`, timezone: 'America/New_York' }, API_NOW);
    return { client_id: account.clientId, client_secret: clientSecret, access_token: accessToken, accountId: account.id, connectionId: connection.id };
  };
  const alice = await make('alice');
  const bob = await make('bob');
  return { app, store, clock, deps, secretBox, metrics, alice, bob };
}

/** What `apiWorld` returns. */
export type ApiWorld = Awaited<ReturnType<typeof apiWorld>>;

/** One request to the API with these credentials as headers; the status and the parsed JSON body. */
export async function call(w: Pick<ApiWorld, 'app'>, creds: Partial<Creds> | null, method: string, url: string, body?: unknown) {
  const headers: Record<string, string> = { ...(creds ?? {}) } as Record<string, string>;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await w.app.inject({ method: method as 'GET', url, headers, payload: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.statusCode, body: r.json() as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
}
