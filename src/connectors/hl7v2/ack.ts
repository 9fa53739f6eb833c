/**
 * @module connectors/hl7v2/ack — pure builder of the HL7 v2 original-mode acknowledgment (ACK)
 * ehrsync answers each received message with: AA accepted, AE error (the sender should fix and
 * resend), AR rejected (unsupported or unreadable). No I/O, no clock (the time is passed in).
 *
 * What it relies on:
 * - MSA-1 acknowledgment code, MSA-2 the original's MSH-10 (HL7 v2 chapter 2, MSA segment).
 * - ERR in its v2.5 form: ERR-2 error location (ERL: segment ID ^ segment sequence ^ field position
 *   ^ field repetition ^ component ^ subcomponent), ERR-3 HL7 error code (CWE, table 0357), ERR-4
 *   severity (table 0516: E error), ERR-8 user message (TX).
 *   Ref: integrationsoup.com/hl7-reference/segments/err (v2.5.1 field table).
 *   Before v2.5 ERR had only ERR-1 (segment ID ^ sequence ^ field position ^ code, the code's
 *   components demoted to subcomponents) and the text went in MSA-3; for those versions both are
 *   filled too, so an older receiver sees the reason. Ref: the v2.3 chapter 2 text, §2.24.3.
 * - Table 0357 codes and names: hl7.org/fhir/2018Sep/v2/0357 (and integrationsoup.com/hl7-reference/tables/0357).
 *
 * The error text goes to the sender's interface log: callers must put only locations and reasons
 * in it, never values from the message (patient data). It is escaped and clipped here. This
 * module's own errors (RangeError) quote no argument either.
 */
import { parseHl7DateTime } from './hl7-time.js';
import type { Hl7Delimiters, Hl7Message } from './message.js';
import { DEFAULT_DELIMITERS, escapeValue } from './message.js';

/** MSA-1: AA accepted, AE application error, AR application reject. */
export type AckCode = 'AA' | 'AE' | 'AR';

/** HL7 table 0357 (message error condition codes) as of v2.9, code → name for ERR-3.2. */
export const HL7_ERROR_CODES: Readonly<Record<string, string>> = Object.freeze({
  '0': 'Message accepted',
  '100': 'Segment sequence error',
  '101': 'Required field missing',
  '102': 'Data type error',
  '103': 'Table value not found',
  '104': 'Value too long',
  '198': 'Non-Conformant Cardinality',
  '199': 'Other HL7 Error',
  '200': 'Unsupported message type',
  '201': 'Unsupported event code',
  '202': 'Unsupported processing id',
  '203': 'Unsupported version id',
  '204': 'Unknown key identifier',
  '205': 'Duplicate key identifier',
  '206': 'Application record locked',
  '207': 'Application internal error',
});

/** What went wrong, for an AE or AR. */
export interface AckError {
  /** HL7 table 0357 code, e.g. '101' required field missing, '200' unsupported message type, '207' application internal error. */
  code: string;
  /** Why, for the sender's interface team: a location and a reason, never a value from the message. */
  text: string;
  /** Where, in HL7 notation: `PID`, `PID-3`, `PID-3.1`, `PID-3.1.2`, with optional `[n]` after the segment (its sequence) or the field (its repetition): `OBX[2]-5[1].1`. */
  location?: string;
}

/** Options of `buildAck`. */
export interface AckOptions {
  /** The ACK's MSH-7: epoch ms, an ISO-8601 date string, or an HL7 DTM string (used as is). Passed in: the builder reads no clock. */
  now: string | number;
  /** The ACK's own MSH-10 (not the original's, which goes in MSA-2). */
  controlId: string;
  /**
   * MSA-2 when `original` is null: the MSH-10 read from a message that could not be parsed as a
   * whole (`peekHeader`), so its sender can still match the answer. Ignored when `original` is given.
   */
  originalControlId?: string;
  /** Why the message was not accepted; used for AE and AR (ignored for AA). Default for AE/AR without one: 207. */
  error?: AckError;
  /** Our MSH-3; default: the original's MSH-5 (the application it was sent to). */
  sendingApplication?: string;
  /** Our MSH-4; default: the original's MSH-6. */
  sendingFacility?: string;
}

/** The version an ACK declares when the original has no usable MSH. */
export const FALLBACK_ACK_VERSION = '2.5';
/** ERR-8 and MSA-3 are clipped to this many characters (TX fields; MSA-3 is 80 in v2.3). */
const MAX_TEXT = 200;

/**
 * Builds an `ACK` (MSH-9 `ACK^<trigger>^ACK`; `ACK^<trigger>` before v2.3.1, which had no MSH-9.3
 * message structure) answering `original`: MSA-2 echoes its MSH-10,
 * sending and receiving application/facility are swapped, version, processing ID, character set
 * and encoding characters are the original's. AE and AR carry an ERR segment. For a message so
 * broken it has no usable MSH, pass `original` null: the ACK says version 2.5 and its MSA-2 is
 * `originalControlId` (empty when not given). Segments end with CR (the last one too). Throws RangeError for a malformed `now` or
 * `location` (both come from code, never from the message).
 */
export function buildAck(original: Hl7Message | null, code: AckCode, opts: AckOptions): string {
  const d: Hl7Delimiters = original ? original.delimiters : DEFAULT_DELIMITERS;
  const esc = (s: string) => escapeValue(s, d);
  const msh = original?.segments[0];
  const raw = (n: number) => msh?.raw(n) ?? '';
  const encodingChars = `${d.component}${d.repetition}${d.escape}${d.subcomponent}${d.truncation}`;
  const version = original ? raw(12) : FALLBACK_ACK_VERSION;
  const versionId = original?.header.version ?? FALLBACK_ACK_VERSION;

  const mshFields = [
    encodingChars,
    opts.sendingApplication !== undefined ? esc(opts.sendingApplication) : raw(5), // MSH-3
    opts.sendingFacility !== undefined ? esc(opts.sendingFacility) : raw(6), // MSH-4
    raw(3), // MSH-5: the original's sender
    raw(4), // MSH-6
    hl7DateTime(opts.now), // MSH-7
    '', // MSH-8 security
    messageType(esc(original?.header.triggerEvent ?? ''), versionId, d), // MSH-9
    esc(opts.controlId), // MSH-10
    original ? raw(11) || 'P' : 'P', // MSH-11: answer in the same processing mode
    version, // MSH-12
  ];
  // MSH-18: the ACK is in the original's character set (the listener encodes it accordingly,
  // see encodeMessage); MSH-13..17 stay empty.
  const charset = raw(18);
  if (charset !== '') mshFields.push('', '', '', '', '', charset);

  const old = isBefore25(versionId);
  const error = code === 'AA' ? undefined : opts.error ?? { code: '207', text: HL7_ERROR_CODES['207'] as string };
  const text = error ? clipText(error.text) : '';
  const msa = ['MSA', code, original ? raw(10) : esc(opts.originalControlId ?? '')];
  if (old && text !== '') msa.push(esc(text)); // MSA-3 text message, the pre-2.5 place for the reason

  const segments = [`MSH${d.field}${mshFields.join(d.field)}`, msa.join(d.field)];
  if (error) segments.push(errSegment(error, text, old, d));
  return segments.map((s) => `${s}\r`).join('');
}

/** The ERR segment: v2.5 fields, plus ERR-1 for receivers older than 2.5. */
function errSegment(error: AckError, text: string, old: boolean, d: Hl7Delimiters): string {
  const esc = (s: string) => escapeValue(s, d);
  const loc = error.location !== undefined ? parseLocation(error.location) : null;
  const name = HL7_ERROR_CODES[error.code] ?? '';
  const cwe = [esc(error.code), esc(name), 'HL70357'].join(d.component);
  const fields: string[] = ['ERR'];
  // ERR-1 (ELD, pre-2.5): segment ^ sequence ^ field ^ code, the code's CE components as subcomponents.
  fields[1] = old
    ? [loc?.segment ?? '', loc ? String(loc.sequence) : '', loc?.field ? String(loc.field) : '', [esc(error.code), esc(name), 'HL70357'].join(d.subcomponent)].join(d.component)
    : '';
  // ERR-2 (ERL): segment ^ sequence ^ field ^ repetition ^ component ^ subcomponent.
  fields[2] = loc
    ? trimTrailing([loc.segment, String(loc.sequence), num(loc.field), loc.field ? num(loc.repetition ?? 1) : '', num(loc.component), num(loc.subcomponent)], d.component)
    : '';
  fields[3] = cwe;
  fields[4] = 'E';
  fields[5] = '';
  fields[6] = '';
  fields[7] = '';
  fields[8] = esc(text);
  return fields.join(d.field);
}

/** MSH-9: `ACK^<trigger>^ACK`, or `ACK^<trigger>` for versions before 2.3.1 (MSH-9.3 came in 2.3.1). */
function messageType(trigger: string, version: string, d: Hl7Delimiters): string {
  if (versionBefore(version, 3, 1)) return trimTrailing(['ACK', trigger], d.component);
  return ['ACK', trigger, 'ACK'].join(d.component);
}

const num = (n: number | undefined): string => (n === undefined ? '' : String(n));

function trimTrailing(parts: string[], sep: string): string {
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts.join(sep);
}

/** A location in HL7 notation, parsed. */
interface Location {
  segment: string;
  sequence: number;
  field?: number;
  repetition?: number;
  component?: number;
  subcomponent?: number;
}

const LOCATION = /^([A-Z][A-Z0-9]{2})(?:\[(\d+)\])?(?:-(\d+)(?:\[(\d+)\])?(?:\.(\d+)(?:\.(\d+))?)?)?$/;

function parseLocation(location: string): Location {
  const m = LOCATION.exec(location.trim());
  // The location is not quoted: whatever a caller built it from, an error message carries no values.
  if (!m) throw new RangeError('error location is not HL7 notation like PID-3.1 or OBX[2]-5[1].1');
  const n = (s: string | undefined) => (s === undefined ? undefined : Number(s));
  return { segment: m[1] as string, sequence: n(m[2]) ?? 1, field: n(m[3]), repetition: n(m[4]), component: n(m[5]), subcomponent: n(m[6]) };
}

/** Whether a version `2.minor[.patch]` is before 2.`minor`.`patch`; false for anything else (the 2.5 fallback included). */
function versionBefore(version: string, minor: number, patch = 0): boolean {
  const m = /^2\.(\d+)(?:\.(\d+))?/.exec(version);
  if (m === null) return false;
  const [mi, pa] = [Number(m[1]), Number(m[2] ?? 0)];
  return mi < minor || (mi === minor && pa < patch);
}

function isBefore25(version: string): boolean {
  return versionBefore(version, 5);
}

/**
 * One line, no control characters, at most MAX_TEXT characters (code points, so a surrogate pair
 * is never split); a clipped text ends with ASCII `...` (the ACK may be in an ASCII charset).
 */
function clipText(text: string): string {
  // eslint-disable-next-line no-control-regex
  const line = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  const points = [...line];
  return points.length > MAX_TEXT ? `${points.slice(0, MAX_TEXT - 3).join('')}...` : line;
}

/**
 * MSH-7 of the ACK. A valid HL7 DTM string (per hl7-time's parseHl7DateTime) is used as is; epoch ms or an ISO-8601 string becomes
 * `YYYYMMDDHHMMSS+0000` (UTC, explicit offset, so no reader guesses the zone).
 */
export function hl7DateTime(now: string | number): string {
  // One DTM grammar for the whole connector (hl7-time.ts); used as is, so no surrounding spaces.
  if (typeof now === 'string' && now === now.trim() && parseHl7DateTime(now) !== null) return now;
  const ms = typeof now === 'number' ? now : Date.parse(now);
  if (!Number.isFinite(ms)) throw new RangeError('now must be epoch milliseconds, an ISO-8601 date or an HL7 DTM string');
  const iso = new Date(ms).toISOString(); // 2026-12-06T15:15:30.000Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}+0000`;
}
