/**
 * @module sync/hl7-feed — what the HL7 listener does with each message: route it to its connection
 * by sender (MSH-3/MSH-4), recognise a re-send (MSH-10), parse and map it, apply it through the
 * push ingest, and answer with the acknowledgment — AA only once the change, its events and their
 * deliveries are committed. The rules are in docs/connectors.md ("HL7 v2 feeds": ACK rules).
 *
 * Logs carry ids, codes and the sender's application/facility names, never message content.
 */
import type { BlockList } from 'node:net';
import type { Clock } from '../domain/clock.js';
import { ConflictError, safeErrorCode } from '../domain/errors.js';
import type { Connection } from '../domain/entities.js';
import { newId } from '../domain/ids.js';
import type { Logger } from '../domain/logger.js';
import { silentLogger } from '../domain/logger.js';
import type { QuarantineItem } from '../domain/records.js';
import type { StatusMap } from '../domain/status.js';
import type { Announcement, PushedChange } from '../detection/push-plan.js';
import type { AckCode, AckError } from '../connectors/hl7v2/ack.js';
import { buildAck } from '../connectors/hl7v2/ack.js';
import { isAllowed, parseAllowList } from '../connectors/hl7v2/allow-list.js';
import type { Hl7v2Config } from '../connectors/hl7v2/config.js';
import { parseHl7v2Config, senderConflict, senderKey } from '../connectors/hl7v2/config.js';
import { hl7DateTimeToIso } from '../connectors/hl7v2/hl7-time.js';
import type { MappedMessage } from '../connectors/hl7v2/mapping.js';
import { HL7_SOURCE_FIELDS, mapMessage, MappingError } from '../connectors/hl7v2/mapping.js';
import { encodeText, Hl7Message, Hl7ParseError, peekHeader } from '../connectors/hl7v2/message.js';
import type { MllpMessageContext } from '../connectors/hl7v2/mllp-server.js';
import { connectionStatusMap } from '../connectors/registry.js';
import type { Connections, FeedMessage, PushCommits } from '../store/ports.js';
import { isTransientDbError } from '../store/transient.js';
import type { PushIngest, PushResult } from './push-ingest.js';

/** What the feed needs. */
export interface Hl7FeedDeps {
  store: Connections & PushCommits;
  ingest: PushIngest;
  clock: Clock;
  logger?: Logger;
  /** Largest message, bytes (the listener's limit). Default 1 MiB. */
  maxBytes?: number;
  /** How long the routing table (the hl7v2 connections and their settings) is reused. Default 5 s. */
  routesTtlMs?: number;
}

/** A routable connection with its parsed settings. */
interface Route {
  connection: Connection;
  config: Hl7v2Config;
  allow: BlockList | null;
  /** The connection's effective status map (built once per reload, not per message). */
  statusMap: StatusMap;
}

/** What a message's trigger says about its record when ehrsync has never seen it (push-plan.ts). */
const ANNOUNCES: Readonly<Record<string, Announcement>> = {
  S12: 'created',
  S13: ['datetime', 'duration'],
  S14: 'any',
  S15: ['status'],
  S16: ['status'],
  S17: 'deleted',
  S26: ['status'],
  A04: 'created',
  A28: 'created',
  A08: 'any',
  A31: 'any',
};

/** How far ahead of ehrsync's clock an MSH-7 may be and still order messages (clock skew). */
const FUTURE_TOLERANCE_MS = 5 * 60_000;

/** HL7 table 0357 code for each parse error. */
const PARSE_ERROR_CODES: Readonly<Record<string, string>> = { unsupported_version: '203', too_large: '104', bad_charset: '102' };

/** The listener's message handler over the store and the ingest. */
export class Hl7Feed {
  private routes: Map<string, Route> = new Map();
  /** Sender keys that route nothing (two connections, or two accounts, claim them). */
  private refused: Set<string> = new Set();
  private routesAt = -Infinity;
  private loading: Promise<void> | null = null;
  private readonly log: Logger;

  constructor(private readonly deps: Hl7FeedDeps) {
    this.log = deps.logger ?? silentLogger;
  }

  /** Handles one message and returns its ACK (for MllpServer's `onMessage`). Throws only when the store failed: no ACK, the sender resends. */
  readonly handle = async (payload: Buffer, ctx: MllpMessageContext): Promise<Buffer> => {
    const started = this.deps.clock.now();
    const ack = await this.answer(payload, ctx);
    this.log.info({ mllp_connection: ctx.connectionId, ...ack.fields, ack: ack.code, ms: this.deps.clock.now() - started }, 'hl7 message');
    return encodeText(ack.text, ack.charset);
  };

  private async answer(payload: Buffer, ctx: MllpMessageContext): Promise<{ code: AckCode; text: string; charset: string; fields: Record<string, unknown> }> {
    const now = this.deps.clock.now();
    const sender = peekHeader(payload);
    const reply = (msg: Hl7Message | null, code: AckCode, fields: Record<string, unknown>, error?: AckError) => ({
      code,
      // An unreadable message's answer still names its MSH-10 when it could be read (printable, ≤ 199).
      text: buildAck(msg, code, { now, controlId: newId().slice(0, 20), error, originalControlId: msg === null && sender !== null ? printable(sender.controlId, 199) : undefined }),
      charset: msg?.header.charset ?? '',
      fields,
    });

    // 1. Whose message is it? The sender decides the connection, and so how the message is read.
    const route = sender ? await this.route(sender.application, sender.facility) : null;
    const senderFields = sender ? { sending_application: sender.application.slice(0, 40), sending_facility: sender.facility.slice(0, 40) } : {};
    let msg: Hl7Message;
    try {
      msg = Hl7Message.parse(payload, { maxBytes: this.deps.maxBytes, defaultCharset: route?.config.defaultCharset ?? '' });
    } catch (err) {
      if (!(err instanceof Hl7ParseError)) throw err;
      // Unreadable: rejected, and set aside under its connection when the sender is known and the
      // connection takes its messages (a refused sender must not write to it at all).
      if (route && route.connection.enabled && (!route.allow || isAllowed(route.allow, ctx.remoteAddress))) await this.quarantineUnreadable(route, payload, err, now);
      return reply(null, 'AR', { ...senderFields, connection_id: route?.connection.id, error_code: err.code }, { code: PARSE_ERROR_CODES[err.code] ?? '100', text: `the message cannot be read: ${err.message}` });
    }
    const h = msg.header;
    const messageType = `${printable(h.messageType)}^${printable(h.triggerEvent)}`;
    const fields = { ...senderFields, control_id: printable(h.controlId, 40), type: messageType, connection_id: route?.connection.id };
    if (!route) return reply(msg, 'AR', { ...fields, error_code: 'unknown_sender' }, { code: '204', text: 'no hl7v2 connection of ehrsync takes messages from this sending application/facility (MSH-3/MSH-4)', location: 'MSH-3' });
    if (route.allow && !isAllowed(route.allow, ctx.remoteAddress)) {
      this.log.warn({ ...fields, remote_address: ctx.remoteAddress }, 'hl7 message from an address its connection does not allow');
      return reply(msg, 'AR', { ...fields, error_code: 'address_not_allowed' }, { code: '207', text: 'this sender may not connect from this address (the connection\'s allowFrom)' });
    }
    if (!route.connection.enabled) return reply(msg, 'AR', { ...fields, error_code: 'connection_disabled' }, { code: '207', text: 'the connection of this feed is disabled in ehrsync' });
    if (h.controlId.trim() === '') return reply(msg, 'AE', { ...fields, error_code: 'missing_control_id' }, { code: '101', text: 'MSH-10 (message control ID) is required: it is how a re-sent message is recognised', location: 'MSH-10' });
    // Stored as the re-send key: a control character or an endless id would fail every try (no ACK,
    // the sender stuck resending it), so it is refused, as the standard's 20 (ST 199) characters allow.
    if (!CONTROL_ID.test(h.controlId)) return reply(msg, 'AR', { ...fields, error_code: 'bad_control_id' }, { code: '102', text: 'MSH-10 (message control ID) must be 1 to 199 characters without control characters', location: 'MSH-10' });

    // 2. Map (pure; a re-send maps the same, so its answer carries the same error code).
    const { statusMap } = route;
    let change: PushedChange | null = null;
    const quarantine: QuarantineItem[] = [];
    let mappingCode: string | null = null;
    try {
      change = toChange(mapMessage(msg, { mrnSystem: route.config.mrnSystem, timezone: route.connection.timezone, statusMap }));
    } catch (err) {
      if (!(err instanceof MappingError)) throw err;
      mappingCode = err.code === 'invalid_timezone' ? '207' : '101';
      quarantine.push({ kind: 'message', ehr_id: null, reason: `${messageType} ${err.reason}`.slice(0, 500), raw: shapeOf(msg) });
    }

    // 3. A re-send (a lost ACK, a crash before it): the same answer, nothing new. It is the same
    // sender, MSH-10, type and MSH-7 as written (read as UTC: the identity must not move when the
    // connection's zone is changed or the clock catches up with a future time).
    const senderId = `${printable(h.sendingApplication, 227)}|${printable(h.sendingFacility, 227)}`;
    const asWritten = hl7DateTimeToIso(h.dateTime, 'UTC', 'minute');
    const identity = { messageType, messageTimeMs: asWritten === null ? null : Date.parse(asWritten) };
    const reused = (logged: FeedMessage) => logged.messageType !== identity.messageType || logged.messageTimeMs !== identity.messageTimeMs;
    const answerLogged = (logged: FeedMessage) => {
      if (reused(logged)) {
        // The same MSH-10 on another message: a sender whose counter was reset. Taking it for a
        // re-send would drop a change silently; the interface team must see it.
        this.log.warn({ ...fields, error_code: 'control_id_reused' }, 'hl7 message reuses the MSH-10 of an earlier, different message');
        return reply(msg, 'AE', { ...fields, error_code: 'control_id_reused' }, { code: '205', text: 'MSH-10 was already used by an earlier message of this sender with another type or time; send it with a new control ID', location: 'MSH-10' });
      }
      return reply(msg, logged.ackCode, { ...fields, outcome: 'duplicate' }, logged.ackCode === 'AA' ? undefined : { code: mappingCode ?? '102', text: logged.errorText ?? 'set aside' });
    };
    const seen = await this.deps.store.findFeedMessage(route.connection.id, senderId, h.controlId);
    if (seen) return answerLogged(seen);
    // A type ehrsync does not use changes nothing: acknowledged without a write (a feed may carry
    // many ORU or ADT A01 messages; a re-send of one is answered the same).
    if (change === null && quarantine.length === 0) return reply(msg, 'AA', { ...fields, outcome: 'unsupported' });

    // 4. The time that orders messages: MSH-7 in the connection's zone, to the minute at least
    // (many senders send no seconds). A time in the future (a wrong clock or zone at the sender)
    // would make every real change after it look older and be ignored: such a time does not count.
    const zoned = hl7DateTimeToIso(h.dateTime, route.connection.timezone, 'minute');
    let orderTimeMs = zoned === null ? null : Date.parse(zoned);
    if (orderTimeMs !== null && orderTimeMs > now + FUTURE_TOLERANCE_MS) {
      this.log.warn({ ...fields, error_code: 'message_time_in_future' }, 'hl7 message time (MSH-7) is ahead of ehrsync\'s clock: not used to order messages');
      orderTimeMs = null;
    }

    // 5. Apply: committed with its events and deliveries before the answer.
    let result: PushResult;
    try {
      result = await this.deps.ingest.apply({
        connection: route.connection,
        statusMap,
        change,
        quarantine,
        sourceFields: HL7_SOURCE_FIELDS,
        orderTimeMs,
        message: { sender: senderId, controlId: h.controlId, ...identity, receivedAt: now },
      });
    } catch (err) {
      // The database down (or busy): no ACK, the sender resends. Anything else fails this message
      // every time (a value the database refuses): answered AE so the sender's queue moves on and
      // its team sees it, instead of the feed stalling on it forever.
      if (isTransientDbError(err) || err instanceof ConflictError) throw err;
      this.log.error({ ...fields, error_code: 'not_stored', error: safeErrorCode(err) ?? 'error' }, 'hl7 message could not be stored; answered AE');
      return reply(msg, 'AE', { ...fields, error_code: 'not_stored' }, { code: '207', text: 'the message could not be stored by ehrsync (application internal error); see ehrsync\'s log for this MSH-10' });
    }
    if (result.duplicate) {
      // Another process logged this message first: answer as it was answered.
      const logged = await this.deps.store.findFeedMessage(route.connection.id, senderId, h.controlId);
      if (logged) return answerLogged(logged);
    }
    const out = { ...fields, outcome: result.outcome, events: result.events };
    if (result.ackCode === 'AA') return reply(msg, 'AA', out);
    return reply(msg, 'AE', out, { code: mappingCode ?? '102', text: result.errorText ?? 'set aside' });
  }

  /** The connection taking this sender's messages: its own facility's, else its application's for any facility. */
  private async route(application: string, facility: string): Promise<Route | null> {
    const find = (): Route | null => {
      const own = senderKey(application, facility);
      const any = senderKey(application, null);
      // A refused key routes nothing: its messages must not fall through to another connection.
      if (this.refused.has(own)) return null;
      return this.routes.get(own) ?? (this.refused.has(any) ? null : (this.routes.get(any) ?? null));
    };
    const age = this.deps.clock.now() - this.routesAt;
    // Reloaded when stale, and at most once a second on a miss (a connection created just now).
    if (age > (this.deps.routesTtlMs ?? 5000) || (find() === null && age > 1000)) await this.reload();
    return find();
  }

  private async reload(): Promise<void> {
    this.loading ??= (async () => {
      try {
        const usable: Route[] = [];
        for (const connection of await this.deps.store.listConnections()) {
          if (connection.connector !== 'hl7v2') continue;
          try {
            const config = parseHl7v2Config(connection.config);
            usable.push({ connection, config, allow: config.allowFrom ? parseAllowList(config.allowFrom, 'config.allowFrom') : null, statusMap: connectionStatusMap(connection) });
          } catch {
            this.log.warn({ connection_id: connection.id }, 'hl7v2 connection with an unusable config: its messages are refused until it is fixed');
          }
        }
        // Creation refuses these; a race between two creations (or data from before the rule) can
        // still leave them. Two connections for one sender, or senders of two accounts that overlap
        // (a facility of one, every facility of the other): neither gets messages, rather than
        // whichever the listing returns last, or another account's clinic.
        const refused = new Set<string>();
        for (const a of usable) {
          for (const b of usable) {
            if (a === b || senderConflict({ accountId: a.connection.accountId, config: a.config }, { accountId: b.connection.accountId, config: b.config }) === null) continue;
            const ka = senderKey(a.config.sendingApplication, a.config.sendingFacility);
            if (!refused.has(ka)) this.log.warn({ connection_id: a.connection.id, other_connection_id: b.connection.id }, 'hl7v2 connections overlap on one sender; its messages are refused until one is changed');
            refused.add(ka);
          }
        }
        const routes = new Map<string, Route>();
        for (const r of usable) {
          const key = senderKey(r.config.sendingApplication, r.config.sendingFacility);
          if (!refused.has(key)) routes.set(key, r);
        }
        this.routes = routes;
        this.refused = refused;
        this.routesAt = this.deps.clock.now();
      } finally {
        this.loading = null;
      }
    })();
    await this.loading;
  }

  /** Sets an unreadable message aside under its connection (its shape only: segment names, never values). */
  private async quarantineUnreadable(route: Route, payload: Buffer, err: Hl7ParseError, now: number): Promise<void> {
    await this.deps.ingest.apply({
      connection: route.connection,
      statusMap: {},
      change: null,
      quarantine: [{ kind: 'message', ehr_id: null, reason: `unreadable message (${err.code}): ${err.message}`.slice(0, 500), raw: `${payload.length} bytes` }],
      // An unreadable message has no MSH-10 to recognise a re-send by: each copy is logged apart.
      orderTimeMs: null,
      message: { sender: 'unreadable', controlId: newId(), messageType: 'unreadable', messageTimeMs: null, receivedAt: now },
    });
  }
}

/** The mapped message as the connector-neutral change the planner takes. */
function toChange(m: MappedMessage): PushedChange | null {
  switch (m.kind) {
    case 'appointment':
      return { kind: 'appointment', announces: m.deleted ? 'deleted' : (ANNOUNCES[m.trigger] ?? 'any'), appointment: m.appointment, patient: m.patient };
    case 'patient':
      return { kind: 'patient', announces: ANNOUNCES[m.trigger] ?? 'any', patient: m.patient };
    case 'merge': {
      // MRG-1 identifiers of the survivor key's type are EHR ids; the others may be MRNs — or the
      // EHR id of a record that was keyed by its MRN (mapping.ts, `merged`).
      const keyType = m.survivorKey?.type ?? null;
      return {
        kind: 'merge',
        survivor: m.survivor,
        merged: { ehrIds: m.merged.map((i) => i.value), mrns: m.merged.filter((i) => i.type !== keyType).map((i) => i.value) },
      };
    }
    case 'unsupported':
      return null;
  }
}

/** A message's shape for the quarantine: its type and segment names, never a value. */
function shapeOf(msg: Hl7Message): string {
  return `${printable(msg.header.messageType)}^${printable(msg.header.triggerEvent)} ${msg.segments.map((s) => s.name).join(' ')}`.slice(0, 500);
}

/** What MSH-10 may be to serve as a re-send key. */
// eslint-disable-next-line no-control-regex -- control characters are what is refused
const CONTROL_ID = /^[^\u0000-\u001f\u007f]{1,199}$/;

/** A header value fit for the log and the database: trimmed, control characters dropped, clipped (MSH-9 parts to 8). */
function printable(value: string, max = 8): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is dropped
  return value.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, max);
}
