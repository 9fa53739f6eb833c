/**
 * @module store/concerns/sync-leases — the SyncLeases port in SQL: leases on connections, so two
 * workers never sync one connection at once.
 */
import type { EpochMs } from '../../domain/clock.js';
import type { Connection } from '../../domain/entities.js';
import type { SyncLeases } from '../ports.js';
import { toConnection } from '../rows.js';
import { all, run } from '../sql/statement.js';
import * as sql from '../statements/sync-leases.js';
import type { SqlContext } from './context.js';

/** Sync leases over SQL. */
export class SqlSyncLeases implements SyncLeases {
  constructor(private readonly ctx: SqlContext) {}

  async claimDueConnections(now: EpochMs, limit: number, leaseUntil: EpochMs, owner: string): Promise<Connection[]> {
    const rows = await this.ctx.db.transaction((tx) => all(tx, sql.claimDueConnections(this.ctx.d, { now, leaseUntil, owner }, limit)));
    // RETURNING gives no order: earliest due first, as the candidates were picked.
    return rows.map(toConnection).sort((a, b) => a.nextSyncAt - b.nextSyncAt || a.id.localeCompare(b.id));
  }

  async claimConnection(id: string, now: EpochMs, leaseUntil: EpochMs, owner: string): Promise<Connection | null> {
    const [r] = await this.ctx.db.transaction((tx) => all(tx, sql.claimConnection(id, { now, leaseUntil, owner })));
    return r ? toConnection(r) : null;
  }

  async releaseConnection(id: string, owner: string): Promise<void> {
    await run(this.ctx.db, sql.releaseConnection(id, owner));
  }
}
