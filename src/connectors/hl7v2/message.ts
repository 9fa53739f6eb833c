/**
 * @module connectors/hl7v2/message — pure HL7 v2 (ER7, "pipe-hat") message parser: one message's
 * bytes or text → its header and segments, with field/component/subcomponent/repetition reads that
 * return unescaped text. No I/O, no clock, no logging; error messages name positions and reasons,
 * never message content (which is patient data).
 *
 * What it relies on (HL7 v2.x chapter 2, "Control", as summarised by public references):
 * - Delimiters come from the message itself: MSH-1 is the field separator (the 4th character), MSH-2
 *   the encoding characters in the order component, repetition, escape, subcomponent, and from v2.7
 *   an optional 5th, the truncation character (`#` by convention) — HL7 v2.7 §2.5.5.2, pre-adopted
 *   by some v2.5.1 guides (US ELR), so it is accepted whatever MSH-12 says. Refs:
 *   hexdocs.pm/hl7v2/encoding-specification.html §1, clovertech.infor.com/forums/topic/encoding-characters.
 * - Segments end with CR; real senders also use LF and CRLF, which are accepted the same way.
 * - Escape sequences (§2.7 "Use of escape sequences in text fields"): \F\ \S\ \T\ \R\ \E\ stand for
 *   the delimiters, \P\ (v2.7) for the truncation character, \Xdddd..\ for one or more pairs of hex
 *   digits whose bytes are read in the message's character set, \.br\ for a line break; the others
 *   (\H\ \N\, formatting \.sp\ \.in\ …, character-set switches \C..\ \M..\, local \Z..\) carry
 *   meaning a plain string cannot hold, so they are kept exactly as sent.
 *   Refs: hl7plus.com/Help/Components/escape-your-data.html (the v2.3.1 text),
 *   chat-archive.fhir.org/stream/229447-V2/topic/hexadecimal.20data.html (§2.7.6, hex pairs).
 * - MSH-18 names the character set (HL7 table 0211): empty or `ASCII` is the default; `8859/1` …
 *   `8859/9`, `8859/15` are ISO 8859 parts; `UNICODE UTF-8` is UTF-8.
 *   Ref: hl7.eu/HL7v2x/v28/hl7v28tab0211.htm.
 *
 * Error messages (Hl7ParseError, RangeError) name a field or line and the rule it broke, never a
 * value the sender sent: a sender whose MSH is shifted puts patient data where MSH-2, MSH-12 or
 * MSH-18 are expected, and the message text reaches logs and an ACK's ERR-8.
 */

/** Why a message could not be parsed: a stable code (for the ACK and metrics) and a message without content. */
export class Hl7ParseError extends Error {
  /**
   * `empty` (no bytes, or only line breaks), `too_large` (over `maxBytes`), `no_msh` (does not
   * start with an MSH segment), `bad_encoding_characters` (MSH-1/MSH-2 unusable), `bad_charset`
   * (MSH-18 unknown, or the bytes are not valid in it; with MSH-18 empty, `defaultCharset` applies), `unsupported_version` (MSH-12 not 2.1–2.8),
   * `bad_segment` (a line that is not a segment), `multiple_messages` (a second MSH: a batch or two
   * messages in one frame).
   */
  readonly code: 'no_msh' | 'bad_encoding_characters' | 'unsupported_version' | 'empty' | 'too_large' | 'bad_charset' | 'bad_segment' | 'multiple_messages' | (string & {});
  constructor(code: Hl7ParseError['code'], message: string) {
    super(message);
    this.name = 'Hl7ParseError';
    this.code = code;
  }
}

/** The MSH fields ehrsync needs, as unescaped text ('' when absent). */
export interface Hl7Header {
  /** MSH-3.1 */
  sendingApplication: string;
  /** MSH-4.1 */
  sendingFacility: string;
  /** MSH-5.1 */
  receivingApplication: string;
  /** MSH-6.1 */
  receivingFacility: string;
  /** MSH-7 as sent (HL7 DTM, e.g. 20261206101530-0500) */
  dateTime: string;
  /** MSH-9.1, e.g. SIU */
  messageType: string;
  /** MSH-9.2, e.g. S12 */
  triggerEvent: string;
  /** MSH-9.3, may be '' */
  structure: string;
  /** MSH-10 */
  controlId: string;
  /** MSH-11.1 */
  processingId: string;
  /** MSH-12.1 */
  version: string;
  /** MSH-18 (its first repetition, first component), '' = ASCII */
  charset: string;
}

/** The delimiters a message declared in MSH-1 and MSH-2. */
export interface Hl7Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
  /** The v2.7 truncation character, '' when MSH-2 has only four characters. */
  truncation: string;
}

/** The usual delimiters, `|^~\&`. */
export const DEFAULT_DELIMITERS: Readonly<Hl7Delimiters> = Object.freeze({ field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&', truncation: '' });

/** The size limit `parse` applies when the caller names none: far above any SIU or ADT message. */
export const DEFAULT_MAX_BYTES = 1024 * 1024;

/** Options of `Hl7Message.parse`. */
export interface Hl7ParseOptions {
  /** Refuse a message over this many bytes (UTF-8 bytes for a string); default DEFAULT_MAX_BYTES. */
  maxBytes?: number;
  /**
   * The character set of a message whose MSH-18 is empty, for a connection whose sender uses one
   * without saying so — e.g. `8859/1` (or `WINDOWS-1252`) for an EHR that sends Latin-1 bytes with
   * an empty MSH-18, which would otherwise fail as `bad_charset` and be answered AR (and senders do
   * not resend after AR). A table 0211 name (`ASCII`, `UNICODE UTF-8`, `8859/1` … `8859/9`,
   * `8859/15`) or `WINDOWS-1252`; an unknown name is a RangeError. Default '' = strict UTF-8
   * (invalid bytes are `bad_charset`). Only bytes are decoded: a string input ignores it. A
   * non-empty MSH-18 always wins, and `header.charset` stays '' (as sent), so an ACK echoes an
   * empty MSH-18 too.
   */
  defaultCharset?: string;
}

/** HL7 versions this parser accepts: 2.1 to 2.8 with any minor release (2.3.1, 2.5.1, 2.8.2 …). */
const SUPPORTED_VERSION = /^2\.[1-8](\.\d{1,2})?$/;
/** A segment name: three uppercase letters or digits, the first a letter (Z-segments included). */
const SEGMENT_NAME = /^[A-Z][A-Z0-9]{2}$/;

/** Whether a character set name (MSH-18, or `defaultCharset`) means UTF-8: '', `ASCII` (a subset) and the UTF-8 names. */
function isUtf8Name(name: string): boolean {
  return name === '' || name === 'ASCII' || name === 'UNICODE UTF-8' || name === 'UTF-8' || name === 'ISO IR6';
}

/**
 * A single-byte character set name → its TextDecoder label, or null. `8859/1` … `8859/9`, `8859/15`
 * (table 0211) are ISO 8859 parts; `WINDOWS-1252` / `CP1252` (not in table 0211, accepted because
 * Windows EHRs that "send Latin-1" often send it) is Windows code page 1252. Note that WHATWG maps
 * the `iso-8859-1` label to windows-1252, so part 1 is `latin1` here and read with Node's own
 * (true ISO 8859-1) decoder.
 */
function singleByteLabel(name: string): string | null {
  if (name === '8859/1') return 'latin1';
  if (name === 'WINDOWS-1252' || name === 'CP1252') return 'windows-1252';
  const part = /^8859\/([2-9]|15)$/.exec(name);
  return part ? `iso-8859-${part[1]}` : null;
}

/**
 * Windows-1252 bytes 0x80–0x9F (WHATWG's mapping: the five bytes it leaves undefined stay C1
 * controls); the rest is ISO 8859-1. Spelled out because Node 20's TextDecoder('windows-1252')
 * decodes as ISO 8859-1.
 */
const CP1252_80_9F = '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178';

/** The decoder of a `singleByteLabel` (U+FFFD for a byte the charset leaves undefined). */
function singleByteDecoder(label: string): (bytes: Buffer) => string {
  if (label === 'latin1') return (bytes) => bytes.toString('latin1');
  if (label === 'windows-1252') {
    return (bytes) => {
      let out = '';
      for (const b of bytes) out += b >= 0x80 && b <= 0x9f ? CP1252_80_9F.charAt(b - 0x80) : String.fromCharCode(b);
      return out;
    };
  }
  const decoder = new TextDecoder(label);
  return (bytes) => decoder.decode(bytes);
}

/** A character set name → how to decode bytes in it, or null when it is not one this parser reads. */
function decoderFor(charset: string): ((bytes: Buffer) => string) | null {
  const name = charset.trim().toUpperCase();
  if (isUtf8Name(name)) {
    // ASCII is a subset of UTF-8; senders that leave MSH-18 empty yet send non-ASCII mostly send
    // UTF-8, so both are read as UTF-8, strictly (invalid bytes are an error, not U+FFFD). A
    // connection whose sender does otherwise names its charset in `defaultCharset`.
    return (bytes) => {
      try {
        return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
      } catch {
        throw new Hl7ParseError('bad_charset', 'the message is not valid UTF-8, the character set its MSH-18 names or implies (empty MSH-18 means UTF-8 unless the connection sets defaultCharset)');
      }
    };
  }
  const label = singleByteLabel(name);
  return label === null ? null : singleByteDecoder(label);
}

const isDelimiterChar = (ch: string): boolean => {
  const c = ch.charCodeAt(0);
  // Printable ASCII, not a space, not a letter or digit: anything else would be read as data.
  return c > 0x20 && c < 0x7f && !/[A-Za-z0-9]/.test(ch);
};

/**
 * Reads MSH-1 and MSH-2 from the start of the MSH line. Throws `bad_encoding_characters` when they
 * cannot be delimiters: each must be a printable ASCII punctuation character, all distinct.
 */
function readDelimiters(mshLine: string): Hl7Delimiters {
  const field = mshLine.charAt(3);
  if (field === '' || !isDelimiterChar(field)) {
    throw new Hl7ParseError('bad_encoding_characters', 'MSH-1 (the field separator) must be one printable punctuation character');
  }
  const end = mshLine.indexOf(field, 4);
  const enc = end < 0 ? mshLine.slice(4) : mshLine.slice(4, end);
  if (enc.length !== 4 && enc.length !== 5) {
    throw new Hl7ParseError('bad_encoding_characters', `MSH-2 must have 4 encoding characters (5 with the v2.7 truncation character), not ${enc.length}`);
  }
  const chars = [field, ...enc];
  if (!chars.every(isDelimiterChar) || new Set(chars).size !== chars.length) {
    throw new Hl7ParseError('bad_encoding_characters', 'MSH-1 and MSH-2 must be distinct printable punctuation characters');
  }
  return { field, component: enc.charAt(0), repetition: enc.charAt(1), escape: enc.charAt(2), subcomponent: enc.charAt(3), truncation: enc.charAt(4) };
}

/**
 * Replaces escape sequences in one primitive value (already split on every delimiter, so no
 * sequence can span values). `hex` decodes the bytes of a \X..\ sequence in the message's charset.
 */
export function unescapeValue(value: string, d: Hl7Delimiters, hex: (bytes: Buffer) => string = (b) => b.toString('latin1')): string {
  const e = d.escape;
  if (value.indexOf(e) < 0) return value;
  let out = '';
  let i = 0;
  while (i < value.length) {
    const start = value.indexOf(e, i);
    if (start < 0) break;
    const end = value.indexOf(e, start + 1);
    if (end < 0) break; // an unterminated sequence is kept as sent
    out += value.slice(i, start);
    const body = value.slice(start + 1, end);
    out += decodeSequence(body, d, hex) ?? value.slice(start, end + 1);
    i = end + 1;
  }
  return out + value.slice(i);
}

function decodeSequence(body: string, d: Hl7Delimiters, hex: (bytes: Buffer) => string): string | null {
  switch (body) {
    case 'F': return d.field;
    case 'S': return d.component;
    case 'T': return d.subcomponent;
    case 'R': return d.repetition;
    case 'E': return d.escape;
    case 'P': return d.truncation === '' ? null : d.truncation;
    case '.br': return '\n';
  }
  if (body.length >= 3 && body.charAt(0) === 'X' && /^(?:[0-9A-Fa-f]{2})+$/.test(body.slice(1))) {
    return hex(Buffer.from(body.slice(1), 'hex'));
  }
  return null;
}

/**
 * Escapes text for one primitive value: the inverse of `unescapeValue` for the delimiters, and
 * every C0 control character as a hex escape (CR as \X0D\, the MLLP block bytes 0x0B and 0x1C as
 * \X0B\ \X1C\ — left raw, they would end the frame inside the message).
 */
export function escapeValue(text: string, d: Hl7Delimiters = DEFAULT_DELIMITERS): string {
  let out = '';
  for (const ch of text) {
    if (ch === d.escape) out += `${d.escape}E${d.escape}`;
    else if (ch === d.field) out += `${d.escape}F${d.escape}`;
    else if (ch === d.component) out += `${d.escape}S${d.escape}`;
    else if (ch === d.subcomponent) out += `${d.escape}T${d.escape}`;
    else if (ch === d.repetition) out += `${d.escape}R${d.escape}`;
    else if (d.truncation !== '' && ch === d.truncation) out += `${d.escape}P${d.escape}`;
    else if (ch.charCodeAt(0) < 0x20 && ch !== '\t') out += `${d.escape}X${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}${d.escape}`;
    else out += ch;
  }
  return out;
}

/** One segment: its name and its fields as sent (escaped); reads split and unescape on demand. */
export class Hl7Segment {
  /** The segment ID, e.g. `PID`, `ZSC`. */
  readonly name: string;
  /** fields[n] is field n as sent (index 0 is the name); for MSH, [1] is MSH-1 and [2] MSH-2. */
  readonly #fields: readonly string[];
  readonly #d: Hl7Delimiters;
  readonly #hex: (bytes: Buffer) => string;

  /** @internal Built by `Hl7Message.parse`. */
  constructor(name: string, fields: readonly string[], delimiters: Hl7Delimiters, hex: (bytes: Buffer) => string) {
    this.name = name;
    this.#fields = fields;
    this.#d = delimiters;
    this.#hex = hex;
  }

  /**
   * Unescaped text of field n, component c, subcomponent s, repetition r (all 1-based, each
   * defaulting to 1, so `get(5)` is PID-5.1 of the first repetition, as HAPI's Terser reads
   * `PID-5`); '' when absent. MSH-1 is the field separator, MSH-2 the encoding characters (both
   * returned as sent). HL7's explicit null `""` is returned as the two characters `""`: see
   * `isNull`.
   */
  get(field: number, component = 1, subcomponent = 1, repetition = 1): string {
    const raw = this.#primitive(field, component, subcomponent, repetition);
    if (raw === undefined) return '';
    if (this.name === 'MSH' && (field === 1 || field === 2)) return raw;
    return unescapeValue(raw, this.#d, this.#hex);
  }

  /** How many repetitions field n has (0 when empty). */
  repetitions(field: number): number {
    const raw = this.raw(field);
    if (raw === '') return 0;
    if (this.name === 'MSH' && (field === 1 || field === 2)) return 1;
    return raw.split(this.#d.repetition).length;
  }

  /** Field n exactly as sent (still escaped, every repetition and component), '' when absent. */
  raw(field: number): string {
    if (!Number.isInteger(field) || field < 1) return '';
    return this.#fields[field] ?? '';
  }

  /** How many fields the segment has as sent (trailing empty fields included), not counting the name. */
  get fieldCount(): number {
    return this.#fields.length - 1;
  }

  /**
   * Whether the value is HL7's explicit null `""` — "delete what you have" in an update (e.g. an
   * A08 clearing a phone number), unlike an empty value, which means "not sent".
   */
  isNull(field: number, component = 1, subcomponent = 1, repetition = 1): boolean {
    return this.#primitive(field, component, subcomponent, repetition) === '""';
  }

  /**
   * Whether the sender marked the value truncated (v2.7 §2.5.5.2): it ends with the truncation
   * character declared in MSH-2 (a `\P\` escape is a literal one, not a mark). `get` keeps the
   * mark, as sent; false when MSH-2 declares no truncation character.
   */
  isTruncated(field: number, component = 1, subcomponent = 1, repetition = 1): boolean {
    const t = this.#d.truncation;
    if (t === '' || (this.name === 'MSH' && (field === 1 || field === 2))) return false;
    return this.#primitive(field, component, subcomponent, repetition)?.endsWith(t) ?? false;
  }

  /** The still-escaped primitive value at a position, or undefined when the position is absent. */
  #primitive(field: number, component: number, subcomponent: number, repetition: number): string | undefined {
    if (![field, component, subcomponent, repetition].every((n) => Number.isInteger(n) && n >= 1)) return undefined;
    const raw = this.#fields[field];
    if (raw === undefined) return undefined;
    if (this.name === 'MSH' && (field === 1 || field === 2)) {
      return component === 1 && subcomponent === 1 && repetition === 1 ? raw : undefined;
    }
    const rep = raw.split(this.#d.repetition)[repetition - 1];
    if (rep === undefined) return undefined;
    const comp = rep.split(this.#d.component)[component - 1];
    if (comp === undefined) return undefined;
    return comp.split(this.#d.subcomponent)[subcomponent - 1];
  }
}

/** One parsed HL7 v2 message. */
export class Hl7Message {
  /** MSH fields, unescaped. */
  readonly header: Hl7Header;
  /** Every segment in order, MSH first; Z-segments included like any other. */
  readonly segments: readonly Hl7Segment[];
  /** The delimiters from MSH-1/MSH-2 (an ACK answers with the same). */
  readonly delimiters: Readonly<Hl7Delimiters>;

  private constructor(segments: Hl7Segment[], delimiters: Hl7Delimiters) {
    this.segments = Object.freeze(segments);
    this.delimiters = Object.freeze({ ...delimiters });
    const msh = segments[0] as Hl7Segment;
    this.header = Object.freeze({
      sendingApplication: msh.get(3),
      sendingFacility: msh.get(4),
      receivingApplication: msh.get(5),
      receivingFacility: msh.get(6),
      dateTime: msh.get(7),
      messageType: msh.get(9, 1),
      triggerEvent: msh.get(9, 2),
      structure: msh.get(9, 3),
      controlId: msh.get(10),
      processingId: msh.get(11),
      version: msh.get(12),
      charset: msh.get(18),
    });
  }

  /**
   * Parses one message (segments separated by \r; also accept \n and \r\n). Bytes are decoded per
   * MSH-18 (ASCII/UTF-8 default `UNICODE UTF-8`; `8859/1` → latin1), or per `options.defaultCharset`
   * when MSH-18 is empty; a string is taken as already decoded. Throws Hl7ParseError for the
   * message, RangeError for bad options.
   */
  static parse(raw: Buffer | string, options: Hl7ParseOptions = {}): Hl7Message {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    // A NaN or negative limit would silently disable the guard (every comparison false).
    if (!(maxBytes > 0)) throw new RangeError('maxBytes must be a positive number');
    const defaultCharset = options.defaultCharset ?? '';
    // Configuration, not message content: an unknown name is the caller's error, refused whatever the message.
    if (decoderFor(defaultCharset) === null) throw new RangeError('defaultCharset must be a character set this parser reads: ASCII, UNICODE UTF-8, 8859/1 to 8859/9, 8859/15 or WINDOWS-1252');
    const size = typeof raw === 'string' ? Buffer.byteLength(raw, 'utf8') : raw.length;
    if (size === 0) throw new Hl7ParseError('empty', 'the message is empty');
    if (size > maxBytes) throw new Hl7ParseError('too_large', `the message has ${size} bytes, over the limit of ${maxBytes}`);

    let text: string;
    let hex: (bytes: Buffer) => string;
    if (typeof raw === 'string') {
      text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
      // A \X..\ sequence names bytes; in an already decoded string, read them as UTF-8 (ASCII and
      // UTF-8 being the default character set).
      hex = utf8OrLatin1;
    } else {
      ({ text, hex } = decodeBytes(raw, defaultCharset));
    }
    return Hl7Message.#parseText(text, hex);
  }

  /** The first segment with this name, if any. */
  segment(name: string): Hl7Segment | undefined {
    return this.segments.find((s) => s.name === name);
  }

  /** Every segment with this name, in order. */
  all(name: string): Hl7Segment[] {
    return this.segments.filter((s) => s.name === name);
  }

  static #parseText(text: string, hex: (bytes: Buffer) => string): Hl7Message {
    const lines = text.split(/\r\n|\r|\n/);
    const first = lines.findIndex((l) => l.trim() !== '');
    if (first < 0) throw new Hl7ParseError('empty', 'the message has no segments');
    const msh = lines[first] as string;
    if (!msh.startsWith('MSH')) throw new Hl7ParseError('no_msh', 'the message does not start with an MSH segment');
    const d = readDelimiters(msh);

    const segments: Hl7Segment[] = [];
    for (let i = first; i < lines.length; i++) {
      const line = lines[i] as string;
      if (line.trim() === '') continue; // blank lines (CRLF CRLF, a trailing newline) separate nothing
      const name = line.slice(0, 3);
      if (!SEGMENT_NAME.test(name) || (line.length > 3 && line.charAt(3) !== d.field)) {
        throw new Hl7ParseError('bad_segment', `line ${i + 1} is not a segment (a segment starts with three uppercase letters or digits and the field separator)`);
      }
      if (name === 'MSH' && segments.length > 0) {
        throw new Hl7ParseError('multiple_messages', `line ${i + 1} starts a second message (MSH): send one message per frame`);
      }
      let fields: string[];
      if (name === 'MSH') {
        // MSH-1 is the separator itself and MSH-2 is not split: the first split piece after the
        // name is MSH-2, so MSH-n is piece n-1 and the separator is spliced in as field 1.
        const pieces = line.split(d.field);
        fields = [name, d.field, ...pieces.slice(1)];
      } else {
        fields = line.split(d.field);
      }
      segments.push(new Hl7Segment(name, fields, d, hex));
    }

    const message = new Hl7Message(segments, d);
    const version = message.header.version;
    if (!SUPPORTED_VERSION.test(version)) {
      // Never quote MSH-12: in a shifted MSH it holds patient data.
      throw new Hl7ParseError('unsupported_version', version === '' ? 'MSH-12 (version) is empty' : 'MSH-12 (version) is not 2.1 to 2.8 (e.g. 2.3.1, 2.5.1)');
    }
    return message;
  }
}

function utf8OrLatin1(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return bytes.toString('latin1');
  }
}

/**
 * What routing and an answer need from a message before it is parsed (MSH-3.1, MSH-4.1, MSH-10):
 * the sender says which connection the message is for, and so which settings (e.g.
 * `defaultCharset`) parse it; the control ID lets even an unreadable message's rejection name it.
 * Null when there is no readable MSH line. Only ASCII matters here: the line is read as latin1.
 */
export function peekHeader(bytes: Buffer): { application: string; facility: string; controlId: string } | null {
  const text = bytes.subarray(0, 4096).toString('latin1');
  const start = text.indexOf('MSH');
  if (start < 0 || text.slice(0, start).trim() !== '') return null;
  const line = text.slice(start).split(/[\r\n]/)[0] ?? '';
  let d: Hl7Delimiters;
  try {
    d = readDelimiters(line);
  } catch {
    return null;
  }
  const fields = line.split(d.field);
  const first = (f: string | undefined) => unescapeValue((f ?? '').split(d.repetition)[0]?.split(d.component)[0] ?? '', d).trim();
  return { application: first(fields[2]), facility: first(fields[3]), controlId: first(fields[9]) };
}

/**
 * Decodes a message's bytes per its MSH-18 (`defaultCharset` when it is empty). The delimiters and MSH-18 are ASCII in every
 * supported charset, so the MSH line is first read as latin1 (one char per byte) to find MSH-18.
 */
function decodeBytes(bytes: Buffer, defaultCharset: string): { text: string; hex: (bytes: Buffer) => string } {
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0; // UTF-8 byte order mark
  // The first line that is not blank must be MSH (as in the string path, which skips blank lines).
  let first = bom;
  while (first < bytes.length && (bytes[first] === 0x0d || bytes[first] === 0x0a || bytes[first] === 0x20 || bytes[first] === 0x09)) first++;
  if (first >= bytes.length) throw new Hl7ParseError('empty', 'the message has no segments');
  let start = first;
  while (start > bom && bytes[start - 1] !== 0x0d && bytes[start - 1] !== 0x0a) start--;
  const body = bytes.subarray(start);
  if (body.subarray(0, 3).toString('latin1') !== 'MSH') throw new Hl7ParseError('no_msh', 'the message does not start with an MSH segment');

  let lineEnd = body.findIndex((b) => b === 0x0d || b === 0x0a);
  if (lineEnd < 0) lineEnd = body.length;
  const mshLine = body.subarray(0, lineEnd).toString('latin1');
  const d = readDelimiters(mshLine);
  // MSH-18 is field 18: piece 17 once MSH-1 (the separator itself) is accounted for. Its first
  // repetition, first component names the character set of the whole message.
  const msh18 = (mshLine.split(d.field)[17] ?? '').split(d.repetition)[0]?.split(d.component)[0] ?? '';
  const charset = unescapeValue(msh18, d);
  const decode = decoderFor(charset.trim() === '' ? defaultCharset : charset);
  // Never quote MSH-18: in a shifted MSH it holds patient data.
  if (!decode) throw new Hl7ParseError('bad_charset', 'MSH-18 (character set) is not one of ASCII, UNICODE UTF-8, 8859/1 to 8859/9, 8859/15, WINDOWS-1252');
  return { text: decode(body), hex: (b) => decodeHex(decode, b) };
}

/** A \X..\ sequence's bytes in the message's charset; bytes invalid there fall back to latin1. */
function decodeHex(decode: (bytes: Buffer) => string, bytes: Buffer): string {
  try {
    return decode(bytes);
  } catch {
    return bytes.toString('latin1');
  }
}

/** Inverse tables of the single-byte character sets, built on first use: character → byte. */
const ENCODE_TABLES = new Map<string, ReadonlyMap<string, number>>();

/**
 * The inverse of a single-byte decoder, built by decoding each byte 0x00–0xFF with the decoder
 * `parse` uses (TextDecoder for the ISO 8859 parts), so encoding and decoding agree by construction. Bytes the charset leaves undefined (U+FFFD) are skipped.
 */
function encodeTable(label: string): ReadonlyMap<string, number> {
  let table = ENCODE_TABLES.get(label);
  if (table === undefined) {
    const decode = singleByteDecoder(label);
    const map = new Map<string, number>();
    for (let b = 0; b <= 0xff; b++) {
      const ch = decode(Buffer.from([b]));
      if (ch !== '\ufffd' && !map.has(ch)) map.set(ch, b);
    }
    table = map;
    ENCODE_TABLES.set(label, table);
  }
  return table;
}

/**
 * Encodes a message's text (e.g. an ACK) for the wire in the character set its MSH-18 names:
 * UTF-8 for '', `ASCII` and `UNICODE UTF-8`; one byte per character for the ISO 8859 parts (and
 * WINDOWS-1252), through the inverse of the table `parse` decodes with. A character the charset
 * cannot hold becomes `?` (an ACK carries only codes, locations and reasons, which are ASCII, so
 * this touches only names echoed from configuration). An unknown charset is encoded as ASCII,
 * with `?` likewise.
 */
export function encodeText(text: string, charset: string): Buffer {
  const name = charset.trim().toUpperCase();
  if (isUtf8Name(name)) return Buffer.from(text, 'utf8');
  const label = singleByteLabel(name);
  const table = label === null ? null : encodeTable(label);
  const out: number[] = [];
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    out.push(table === null ? (c <= 0x7f ? c : 0x3f) : table.get(ch) ?? 0x3f);
  }
  return Buffer.from(out);
}
