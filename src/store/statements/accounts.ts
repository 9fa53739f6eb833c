/**
 * @module store/statements/accounts — the SQL of customer accounts (API clients) and their
 * credentials. Pure: statements only.
 */
import type { EpochMs } from '../../domain/clock.js';
import type { Statement } from '../sql/statement.js';

/** A new account with its client id and the hash of its client secret. */
export const insertAccount = (id: string, a: { name: string; clientId: string; clientSecretHash: string; now: EpochMs }): Statement => ({
  sql: 'INSERT INTO accounts (id, name, client_id, client_secret_hash, created_at) VALUES (:id, :name, :client_id, :client_secret_hash, :now)',
  params: { id, name: a.name, client_id: a.clientId, client_secret_hash: a.clientSecretHash, now: a.now },
});

/** One account by id. */
export const selectAccount = (id: string): Statement => ({ sql: 'SELECT * FROM accounts WHERE id = :id', params: { id } });

/** One account by client id (its row holds the secret hash). */
export const selectAccountByClientId = (clientId: string): Statement => ({
  sql: 'SELECT * FROM accounts WHERE client_id = :client_id',
  params: { client_id: clientId },
});

/** Every account, oldest first. */
export const selectAccounts = (): Statement => ({ sql: 'SELECT * FROM accounts ORDER BY created_at, id', params: {} });
