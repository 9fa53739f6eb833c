/**
 * @module store/concerns/endpoints — the Endpoints port in SQL: an account's webhook endpoints,
 * disabling (which skips their pending deliveries, kept and recoverable) and health figures.
 */
import type { EpochMs } from '../../domain/clock.js';
import type { EndpointHealth } from '../../domain/delivery.js';
import type { Endpoint } from '../../domain/entities.js';
import { newId } from '../../domain/ids.js';
import type { EndpointPatch, Endpoints, NewEndpoint } from '../ports.js';
import { toEndpoint } from '../rows.js';
import { all, one, run } from '../sql/statement.js';
import * as sql from '../statements/endpoints.js';
import type { SqlContext } from './context.js';
import { disableIn, skipPending } from './outbox.js';

/** Endpoints over SQL. */
export class SqlEndpoints implements Endpoints {
  constructor(private readonly ctx: SqlContext) {}

  async createEndpoint(input: NewEndpoint): Promise<Endpoint> {
    const id = newId();
    await run(this.ctx.db, sql.insertEndpoint(id, input));
    return (await this.getEndpoint(id)) as Endpoint;
  }

  async getEndpoint(id: string): Promise<Endpoint | null> {
    const r = await one(this.ctx.db, sql.selectEndpoint(id));
    return r ? toEndpoint(r) : null;
  }

  async listEndpoints(accountId: string): Promise<Endpoint[]> {
    return (await all(this.ctx.db, sql.selectAccountEndpoints(accountId))).map(toEndpoint);
  }

  async updateEndpoint(id: string, patch: EndpointPatch): Promise<Endpoint | null> {
    const update = sql.updateEndpoint(id, patch);
    if (!update) return this.getEndpoint(id);
    // A URL, secret or subscription change, or enabling, can make held-back deliveries leasable.
    await this.ctx.queue.freeing(async (tx) => {
      await run(tx, update);
      if (patch.enabled === false) {
        // Callers pass disabledAt with their clock; a bare `enabled: false` still gets a time.
        if (patch.disabledAt === undefined) await run(tx, sql.stampDisabledAt(id, Date.now()));
        await skipPending(tx, id, 'endpoint disabled');
      } else if (patch.enabled === true && patch.disabledAt === undefined) {
        await run(tx, sql.clearDisabledAt(id));
      }
    });
    return this.getEndpoint(id);
  }

  async deleteEndpoint(id: string): Promise<boolean> {
    // Pending deliveries to a deleted endpoint can never be made; they are kept, marked skipped.
    return this.ctx.db.transaction(async (tx) => {
      await skipPending(tx, id, 'endpoint deleted');
      return (await run(tx, sql.deleteEndpoint(id))) > 0;
    });
  }

  async disableEndpoint(id: string, reason: string, now: EpochMs): Promise<Endpoint | null> {
    await this.ctx.db.transaction((tx) => disableIn(tx, id, reason, now));
    return this.getEndpoint(id);
  }

  async enableEndpoint(id: string): Promise<Endpoint | null> {
    await this.ctx.queue.freeing((tx) => run(tx, sql.enableEndpoint(id)));
    return this.getEndpoint(id);
  }

  async getEndpointHealth(id: string, since: EpochMs): Promise<EndpointHealth | null> {
    const e = await this.getEndpoint(id);
    if (!e) return null;
    const a = await one<{ n: number; ok: number | null }>(this.ctx.db, sql.attemptCounts(id, since));
    const counts = new Map((await all<{ status: string; n: number }>(this.ctx.db, sql.deliveryCountsByStatus(id))).map((r) => [r.status, Number(r.n)]));
    const attempts = Number(a?.n ?? 0);
    const succeeded = Number(a?.ok ?? 0);
    return {
      endpointId: id,
      enabled: e.enabled,
      disabledReason: e.disabledReason,
      disabledAt: e.disabledAt,
      attempts,
      succeeded,
      successRate: attempts === 0 ? null : succeeded / attempts,
      lastSuccessAt: e.lastSuccessAt,
      lastFailureAt: e.lastFailureAt,
      consecutiveFailures: e.consecutiveFailures,
      failingSince: e.failingSince,
      pending: counts.get('pending') ?? 0,
      failed: counts.get('failed') ?? 0,
      skipped: counts.get('skipped') ?? 0,
    };
  }
}
