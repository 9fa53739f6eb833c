/**
 * @module store/store — builds the Store from its ports' SQL implementations over one client: each
 * concern (src/store/concerns) implements its port, the dialect's delivery queue (src/store/queue)
 * implements the hot path, and the store is their composition.
 */
import type { SqlClient } from './sql/client.js';
import { DIALECTS } from './sql/dialect.js';
import type { SqlContext } from './concerns/context.js';
import type { Store } from './ports.js';
import { SqlStore } from './sql-store.js';
import { PgStore } from './postgres/pg-store.js';
import { SqlEndpoints } from './concerns/endpoints.js';
import { SqlEventLog } from './concerns/event-log.js';

/** The store over a client (not migrated yet: call `migrate()`). */
export function createStore(client: SqlClient): Store {
  const legacy = client.dialect === 'postgres' ? new PgStore(client) : new SqlStore(client);
  const ctx: SqlContext = { db: client, d: DIALECTS[client.dialect], queue: legacy.queueHooks() };
  void ctx;
  return compose<Store>([
    legacy,
    // converted concerns go here, e.g. new SqlAccounts(ctx),
    new SqlEndpoints(ctx),
    new SqlEventLog(ctx),
  ]);
}

/** One object with the methods of every part, bound to it; a later part's method wins. */
function compose<T>(parts: readonly object[]): T {
  const out: Record<string, unknown> = {};
  for (const part of parts) {
    const own = new Set<string>();
    // Most derived first: a subclass's override wins over its base's method.
    for (let proto = Object.getPrototypeOf(part) as object | null; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
      for (const name of Object.getOwnPropertyNames(proto)) {
        const fn = (part as Record<string, unknown>)[name];
        if (name === 'constructor' || own.has(name) || typeof fn !== 'function') continue;
        own.add(name);
        out[name] = (fn as (...args: unknown[]) => unknown).bind(part);
      }
    }
  }
  return out as T;
}
