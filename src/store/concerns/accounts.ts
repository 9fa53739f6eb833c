/**
 * @module store/concerns/accounts — the Accounts port in SQL: customer accounts (API clients) and
 * the hashes of their client secrets.
 */
import type { EpochMs } from '../../domain/clock.js';
import type { Account } from '../../domain/entities.js';
import { newId } from '../../domain/ids.js';
import type { Accounts } from '../ports.js';
import { toAccount } from '../rows.js';
import { all, one, run } from '../sql/statement.js';
import * as sql from '../statements/accounts.js';
import type { SqlContext } from './context.js';

/** Accounts over SQL. */
export class SqlAccounts implements Accounts {
  constructor(private readonly ctx: SqlContext) {}

  async createAccount(input: { name: string; clientId: string; clientSecretHash: string; now: EpochMs }): Promise<Account> {
    const id = newId();
    await run(this.ctx.db, sql.insertAccount(id, input));
    return { id, name: input.name, clientId: input.clientId, createdAt: input.now };
  }

  async getAccount(id: string): Promise<Account | null> {
    const r = await one(this.ctx.db, sql.selectAccount(id));
    return r ? toAccount(r) : null;
  }

  async findAccountByClientId(clientId: string): Promise<{ account: Account; clientSecretHash: string } | null> {
    const r = await one(this.ctx.db, sql.selectAccountByClientId(clientId));
    return r ? { account: toAccount(r), clientSecretHash: String(r.client_secret_hash) } : null;
  }

  async listAccounts(): Promise<Account[]> {
    return (await all(this.ctx.db, sql.selectAccounts())).map(toAccount);
  }
}
