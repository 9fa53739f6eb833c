/**
 * @module connectors/hl7v2/config — an `hl7v2` connection's settings: which sender's messages are
 * its own (MSH-3/MSH-4), where they may come from, and how they are read. Validation names the bad
 * field (`config.<field>`) and the fix. Documented in docs/connectors.md, "HL7 v2 feeds".
 */
import { BadRequestError, ConfigError } from '../../domain/errors.js';
import type { StatusMap } from '../../domain/status.js';
import { parseAllowList } from './allow-list.js';
import { Hl7Message } from './message.js';

/** Validated settings of one HL7 v2 feed. */
export interface Hl7v2Config {
  /** MSH-3.1 of the sender's messages (the sending application), matched case-insensitively. */
  sendingApplication: string;
  /** MSH-4.1 (the sending facility), matched case-insensitively; null: any facility of that application. */
  sendingFacility: string | null;
  /** Source addresses (IPs, CIDR ranges) the sender may connect from; null: any the listener accepts. */
  allowFrom: string[] | null;
  /** What marks the MRN among PID-3's identifiers (assigning authority or type code); null: typed `MR`, else the first. */
  mrnSystem: string | null;
  /** Raw SCH-25 code → normalized status, over the default map and HL7 table 0278. */
  statusMap: StatusMap | null;
  /** Character set of messages with an empty MSH-18 (e.g. `8859/1`); null: UTF-8. */
  defaultCharset: string | null;
}

const KEYS = ['sendingApplication', 'sendingFacility', 'allowFrom', 'mrnSystem', 'statusMap', 'defaultCharset'];

function fail(field: string, fix: string): never {
  throw new BadRequestError(`config.${field} ${fix}`);
}

function optString(o: Record<string, unknown>, key: string): string | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || v.trim() === '' || v.length > 227) fail(key, 'must be a non-empty string of at most 227 characters (HD namespace ID).');
  return v.trim();
}

/** Validates an hl7v2 connection's config; throws BadRequestError naming the field. */
export function parseHl7v2Config(raw: Record<string, unknown>): Hl7v2Config {
  for (const k of Object.keys(raw)) {
    // baseUrl is what other kinds require; an hl7v2 feed has none (it is pushed to us).
    if (k === 'baseUrl' && (raw.baseUrl === undefined || raw.baseUrl === null)) continue;
    if (!KEYS.includes(k)) fail(k, `is not a setting of an hl7v2 connection (known: ${KEYS.join(', ')}).`);
  }
  for (const key of ['sendingApplication', 'sendingFacility']) {
    const v = raw[key];
    // Routing compares MSH-3.1/MSH-4.1: a value with delimiters is a whole field pasted ("EPIC^1.2.3^ISO") and would match nothing.
    // eslint-disable-next-line no-control-regex -- control characters are what is refused
    if (typeof v === 'string' && /[|^~\\&\u0000-\u001f]/.test(v)) fail(key, 'must not contain the HL7 delimiters | ^ ~ \\ & or control characters: give the first component as the messages send it, e.g. "EPIC".');
  }
  // `*` is how routing spells "any facility": as a name it would take every facility unnoticed.
  if (typeof raw.sendingFacility === 'string' && raw.sendingFacility.trim() === '*') fail('sendingFacility', 'must be a facility name; omit it to take every facility of the application.');
  if (typeof raw.sendingApplication === 'string' && raw.sendingApplication.trim() === '*') fail('sendingApplication', 'must be the application name its messages send in MSH-3.');
  const sendingApplication = optString(raw, 'sendingApplication') ?? fail('sendingApplication', 'is required: the MSH-3 the interface engine sends, e.g. "EPIC" (--sending-application).');
  let allowFrom: string[] | null = null;
  if (raw.allowFrom !== undefined && raw.allowFrom !== null) {
    if (!Array.isArray(raw.allowFrom) || raw.allowFrom.some((e) => typeof e !== 'string')) fail('allowFrom', 'must be a list of IP addresses or CIDR ranges, e.g. ["10.1.0.0/16"].');
    try {
      parseAllowList(raw.allowFrom as string[], 'config.allowFrom');
    } catch (e) {
      if (e instanceof ConfigError) throw new BadRequestError(e.message);
      throw e;
    }
    allowFrom = raw.allowFrom as string[];
  }
  let statusMap: StatusMap | null = null;
  if (raw.statusMap !== undefined && raw.statusMap !== null) {
    if (typeof raw.statusMap !== 'object' || Array.isArray(raw.statusMap) || Object.values(raw.statusMap).some((v) => typeof v !== 'string')) {
      fail('statusMap', 'must map SCH-25 codes to statuses, e.g. {"Arrived": "checked-in"}.');
    }
    statusMap = raw.statusMap as StatusMap;
  }
  const defaultCharset = optString(raw, 'defaultCharset');
  if (defaultCharset !== null) {
    try {
      Hl7Message.parse('MSH|^~\\&|A|B|C|D|20260101||ADT^A08|1|P|2.5\r', { defaultCharset });
    } catch {
      fail('defaultCharset', 'must be an HL7 table 0211 name: ASCII, UNICODE UTF-8, 8859/1 … 8859/9, 8859/15, or WINDOWS-1252.');
    }
  }
  return { sendingApplication, sendingFacility: optString(raw, 'sendingFacility'), allowFrom, mrnSystem: optString(raw, 'mrnSystem'), statusMap, defaultCharset };
}

/** The routing key of a sender: application and facility, upper case (`EPIC|CLINIC1`; `EPIC|*` for any facility). */
export function senderKey(application: string, facility: string | null): string {
  return `${application.trim().toUpperCase()}|${facility === null ? '*' : facility.trim().toUpperCase()}`;
}

/**
 * Two senders overlap when one message could route to either: the same application, and the same
 * facility or either taking any. Compared as routing compares them, by their routing keys.
 */
function sendersOverlap(a: Pick<Hl7v2Config, 'sendingApplication' | 'sendingFacility'>, b: Pick<Hl7v2Config, 'sendingApplication' | 'sendingFacility'>): boolean {
  const [appA, facA] = senderKey(a.sendingApplication, a.sendingFacility).split('|') as [string, string];
  const [appB, facB] = senderKey(b.sendingApplication, b.sendingFacility).split('|') as [string, string];
  return appA === appB && (facA === '*' || facB === '*' || facA === facB);
}

/** An hl7v2 connection's sender, with the account it belongs to. */
export interface SenderClaim {
  accountId: string;
  config: Pick<Hl7v2Config, 'sendingApplication' | 'sendingFacility'>;
}

/**
 * Why two hl7v2 connections cannot both take their senders, or null when they can: `same_sender`
 * (one account, the same MSH-3/MSH-4), `other_account` (two accounts whose senders overlap — a
 * facility of one and every facility of the other would hand that clinic's messages to the wrong
 * account). Within one account, one facility and every facility of the same application coexist
 * (the one naming the facility wins). Creation refuses a conflict; the listener routes neither side.
 */
export function senderConflict(a: SenderClaim, b: SenderClaim): 'same_sender' | 'other_account' | null {
  if (!sendersOverlap(a.config, b.config)) return null;
  if (a.accountId !== b.accountId) return 'other_account';
  return senderKey(a.config.sendingApplication, a.config.sendingFacility) === senderKey(b.config.sendingApplication, b.config.sendingFacility) ? 'same_sender' : null;
}
