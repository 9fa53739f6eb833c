/**
 * @module api/context — what the API needs from the rest of ehrsync, and the authentication of
 * requests: Cobalt's `client_id` + `client_secret` headers for an account, plus `access_token` for
 * one clinic connection; a bearer admin token for account management.
 */
import type { FastifyRequest } from 'fastify';
import type { Clock } from '../domain/clock.js';
import { EhrsyncError, NotFoundError, UnauthorizedError } from '../domain/errors.js';
import type { Logger } from '../domain/logger.js';
import type { Metrics } from '../domain/metrics.js';
import type { SecretBox } from '../domain/secrets.js';
import { hashSecret, safeEqual, verifySecret } from '../domain/secrets.js';
import type { Account, Connection } from '../domain/entities.js';
import type { Store } from '../store/ports.js';
import type { SyncOutcome } from '../sync/sync-engine.js';
import type { EndpointUrlPolicy, Resolve } from '../domain/network-policy.js';

/** The API's dependencies. */
export interface ApiDeps {
  store: Store;
  secretBox: SecretBox;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  endpointUrlPolicy: EndpointUrlPolicy;
  /** Resolves endpoint hosts (tests inject a fake DNS). */
  resolve?: Resolve;
  /** `Authorization: Bearer <token>` for account management; management over HTTP is off when unset. */
  adminToken?: string;
  /** Runs a sync now; null when the connection is already syncing. Absent when this process has no sync role. */
  syncNow?: (connectionId: string) => Promise<SyncOutcome | null>;
  /** Requests per second per account (token bucket, burst = 2×). Default 50. */
  rateLimitPerSecond?: number;
  /** Request body limit in bytes. Default 1 MiB. */
  bodyLimit?: number;
  /** Tells the operation runner a write was accepted (it also polls). */
  wakeOperations?: () => void;
  /** Says whether the process is ready (store reachable, roles started). */
  ready?: () => Promise<boolean>;
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Authenticates the account from `client_id` + `client_secret` (constant-time; no hint which one was wrong). */
export async function authenticateAccount(deps: ApiDeps, req: FastifyRequest): Promise<Account> {
  const clientId = header(req, 'client_id') ?? header(req, 'client-id');
  const clientSecret = header(req, 'client_secret') ?? header(req, 'client-secret');
  if (!clientId || !clientSecret) throw new UnauthorizedError('Missing credentials: send the client_id and client_secret headers.');
  const found = await deps.store.findAccountByClientId(clientId);
  // Hash even when the id is unknown, so timing does not reveal which ids exist.
  const ok = verifySecret(clientSecret, found?.clientSecretHash ?? hashSecret('no-such-account'));
  if (!found || !ok) throw new UnauthorizedError('Invalid client_id or client_secret.');
  return found.account;
}

/** Authenticates the account and the clinic connection of `access_token`, which must belong to that account. */
export async function authenticateConnection(deps: ApiDeps, req: FastifyRequest): Promise<{ account: Account; connection: Connection }> {
  const account = await authenticateAccount(deps, req);
  const token = header(req, 'access_token') ?? header(req, 'access-token');
  if (!token) throw new UnauthorizedError('Missing access_token header: it selects the clinic connection.');
  const connection = await deps.store.findConnectionByTokenHash(hashSecret(token));
  if (!connection || connection.accountId !== account.id) throw new UnauthorizedError('Invalid access_token.');
  return { account, connection };
}

/** Checks the admin bearer token. */
export function authenticateAdmin(deps: ApiDeps, req: FastifyRequest): void {
  if (!deps.adminToken) throw new EhrsyncError('forbidden', 'Account management over HTTP is disabled: set EHRSYNC_ADMIN_TOKEN, or use `npx ehrsync accounts create`.');
  const auth = header(req, 'authorization') ?? '';
  const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
  if (!safeEqual(token, deps.adminToken)) throw new UnauthorizedError('Invalid admin token: send Authorization: Bearer <EHRSYNC_ADMIN_TOKEN>.');
}

/** Loads a connection by id for an account; another account's connection is simply not found. */
export async function ownConnection(deps: ApiDeps, account: Account, id: string): Promise<Connection> {
  const c = await deps.store.getConnection(id);
  if (!c || c.accountId !== account.id) throw new NotFoundError(`No connection ${JSON.stringify(id)}.`);
  return c;
}
