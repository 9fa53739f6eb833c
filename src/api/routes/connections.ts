/**
 * @module api/routes/connections — clinic connections of an account (beyond Cobalt, whose Link flow
 * makes them): create one (its access token is shown once), list, read, change, and account
 * management for operators with the admin token.
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { endpointUrlProblem } from '../../domain/network-policy.js';
import { isoUtc } from '../../domain/clock.js';
import { BadRequestError } from '../../domain/errors.js';
import type { StatusMap } from '../../domain/status.js';
import type { Connection } from '../../domain/entities.js';
import type { ApiDeps } from '../context.js';
import { authenticateAccount, authenticateAdmin, ownConnection } from '../context.js';
import { connectionView, StringEnum, Strict } from '../schemas.js';
import { checkConnectionInput, checkSenderFree, CONNECTOR_KINDS, createAccount, createConnection, sealConfig } from '../../app/services.js';

const Settings = {
  reference_id: Type.Optional(Type.Union([Type.String({ maxLength: 256 }), Type.Null()], { description: 'access_token_reference_id echoed in events.' })),
  timezone: Type.Optional(Type.String({ maxLength: 64, description: 'IANA zone of the clinic, e.g. America/New_York.' })),
  window_past_days: Type.Optional(Type.Integer({ minimum: 0, maximum: 730 })),
  window_future_days: Type.Optional(Type.Integer({ minimum: 0, maximum: 730 })),
  sync_interval_seconds: Type.Optional(Type.Number({ minimum: 1, maximum: 86_400 })),
  status_map: Type.Optional(Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()], { description: 'Raw EHR status code → normalized status, laid over the defaults.' })),
  replay_baseline: Type.Optional(Type.Boolean()),
  config: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Connector settings (auth, identifier systems, ...); secret values are stored encrypted.' })),
};

const CreateBody = Strict({
  connector: StringEnum(CONNECTOR_KINDS),
  base_url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'The EHR\'s FHIR base URL (fhir, demo); not for hl7v2, whose EHR pushes to the HL7 listener.' })),
  ...Settings,
});

const PatchBody = Strict({ ...Settings, enabled: Type.Optional(Type.Boolean()) });

const IdParams = Strict({ id: Type.String({ minLength: 1, maxLength: 64 }) });

type SettingsBody = {
  reference_id?: string | null;
  timezone?: string;
  window_past_days?: number;
  window_future_days?: number;
  sync_interval_seconds?: number;
  status_map?: StatusMap | null;
  replay_baseline?: boolean;
  config?: Record<string, unknown>;
  enabled?: boolean;
};

/**
 * The EHR addresses a tenant sets through the API (`base_url`, `config.baseUrl`,
 * `config.auth.tokenUrl`) follow the rules of webhook URLs — https, and no private, loopback or
 * link-local address unless development mode or the host is allow-listed (`endpointAllowHosts`):
 * the server fetches them with the tenant's credentials, and what they answer can surface in error
 * messages and the quarantine. An operator connects an on-premises EHR with the CLI
 * (`connections create`), which trusts what it is given, or allow-lists its host.
 */
async function checkEhrAddresses(deps: ApiDeps, urls: Record<string, unknown>): Promise<void> {
  for (const [field, url] of Object.entries(urls)) {
    if (typeof url !== 'string') continue; // absent, or of the wrong type: the config check names it
    const problem = await endpointUrlProblem(url, deps.endpointUrlPolicy, deps.resolve, field);
    if (problem) throw new BadRequestError(problem);
  }
}

/** The addresses inside a connector config (before or after merging a patch). */
function configAddresses(config: Record<string, unknown> | undefined): Record<string, unknown> {
  const auth = config?.auth;
  return { 'config.baseUrl': config?.baseUrl, 'config.auth.tokenUrl': typeof auth === 'object' && auth !== null ? (auth as Record<string, unknown>).tokenUrl : undefined };
}

/** Registers the connection and admin routes. */
export function connectionRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.post('/v1/connections', { schema: { tags: ['connections'], summary: 'Connect a clinic\'s EHR; returns the access_token once', body: CreateBody } }, async (req, reply) => {
    const account = await authenticateAccount(deps, req);
    const b = req.body as SettingsBody & { connector: string; base_url?: string };
    await checkEhrAddresses(deps, { base_url: b.base_url, ...configAddresses(b.config) });
    const { connection, accessToken } = await createConnection(
      deps.store,
      deps.secretBox,
      {
        accountId: account.id,
        connector: b.connector,
        baseUrl: b.base_url,
        config: b.config,
        referenceId: b.reference_id,
        timezone: b.timezone,
        windowPastDays: b.window_past_days,
        windowFutureDays: b.window_future_days,
        syncIntervalSeconds: b.sync_interval_seconds,
        statusMap: b.status_map,
        replayBaseline: b.replay_baseline,
      },
      deps.clock.now(),
    );
    void reply.status(201);
    return { success: true, access_token: accessToken, connection: connectionView(connection) };
  });

  app.get('/v1/connections', { schema: { tags: ['connections'], summary: 'The account\'s connections' } }, async (req) => {
    const account = await authenticateAccount(deps, req);
    return { success: true, connections: (await deps.store.listConnections(account.id)).map(connectionView) };
  });

  app.get('/v1/connections/:id', { schema: { tags: ['connections'], summary: 'One connection', params: IdParams } }, async (req) => {
    const account = await authenticateAccount(deps, req);
    return { success: true, connection: connectionView(await ownConnection(deps, account, (req.params as { id: string }).id)) };
  });

  app.patch('/v1/connections/:id', { schema: { tags: ['connections'], summary: 'Change a connection\'s settings, enable or disable its sync', params: IdParams, body: PatchBody } }, async (req) => {
    const account = await authenticateAccount(deps, req);
    const current = await ownConnection(deps, account, (req.params as { id: string }).id);
    const b = req.body as SettingsBody;
    await checkEhrAddresses(deps, configAddresses(b.config));
    const config = b.config === undefined ? undefined : sealConfig({ ...current.config, ...b.config }, deps.secretBox);
    checkConnectionInput({
      connector: current.connector,
      config: config ?? current.config,
      timezone: b.timezone,
      windowPastDays: b.window_past_days,
      windowFutureDays: b.window_future_days,
      syncIntervalSeconds: b.sync_interval_seconds,
    });
    if (current.connector === 'hl7v2' && config !== undefined) await checkSenderFree(deps.store, current.accountId, config, current.id);
    const updated = (await deps.store.updateConnection(current.id, {
      referenceId: b.reference_id,
      timezone: b.timezone,
      windowPastDays: b.window_past_days,
      windowFutureDays: b.window_future_days,
      syncIntervalMs: b.sync_interval_seconds === undefined ? undefined : Math.round(b.sync_interval_seconds * 1000),
      statusMap: b.status_map,
      replayBaseline: b.replay_baseline,
      enabled: b.enabled,
      config,
    })) as Connection;
    return { success: true, connection: connectionView(updated) };
  });

  app.post(
    '/v1/admin/accounts',
    { schema: { tags: ['admin'], summary: 'Create an account (admin token); the client_secret is shown once', body: Strict({ name: Type.String({ minLength: 1, maxLength: 200 }) }) } },
    async (req, reply) => {
      authenticateAdmin(deps, req);
      const { account, clientSecret } = await createAccount(deps.store, (req.body as { name: string }).name, deps.clock.now());
      void reply.status(201);
      return { success: true, client_id: account.clientId, client_secret: clientSecret, account: { id: account.id, name: account.name, created_at: isoUtc(account.createdAt) } };
    },
  );

  app.get('/v1/admin/accounts', { schema: { tags: ['admin'], summary: 'List accounts (admin token)' } }, async (req) => {
    authenticateAdmin(deps, req);
    const accounts = await deps.store.listAccounts();
    return { success: true, accounts: accounts.map((a) => ({ id: a.id, name: a.name, client_id: a.clientId, created_at: isoUtc(a.createdAt) })) };
  });
}
