/**
 * @module store/concerns/connections — the Connections port in SQL: clinic connections' settings,
 * as the API, the CLI and the sync read and change them.
 */
import type { Connection } from '../../domain/entities.js';
import { newId } from '../../domain/ids.js';
import type { ConnectionPatch, Connections, NewConnection } from '../ports.js';
import { toConnection } from '../rows.js';
import { all, one, run } from '../sql/statement.js';
import * as sql from '../statements/connections.js';
import type { SqlContext } from './context.js';

/** Connections over SQL. */
export class SqlConnections implements Connections {
  constructor(private readonly ctx: SqlContext) {}

  async createConnection(input: NewConnection): Promise<Connection> {
    const id = newId();
    await run(this.ctx.db, sql.insertConnection(id, input));
    return (await this.getConnection(id)) as Connection;
  }

  async getConnection(id: string): Promise<Connection | null> {
    const r = await one(this.ctx.db, sql.selectConnection(id));
    return r ? toConnection(r) : null;
  }

  async findConnectionByTokenHash(accessTokenHash: string): Promise<Connection | null> {
    const r = await one(this.ctx.db, sql.selectConnectionByTokenHash(accessTokenHash));
    return r ? toConnection(r) : null;
  }

  async listConnections(accountId?: string): Promise<Connection[]> {
    return (await all(this.ctx.db, sql.selectConnections(accountId))).map(toConnection);
  }

  async updateConnection(id: string, patch: ConnectionPatch): Promise<Connection | null> {
    const update = sql.updateConnection(id, patch);
    if (update) await run(this.ctx.db, update);
    return this.getConnection(id);
  }
}
